"""Blinding of the signal box (E_ECAL < 50 GeV, E_HCAL < 1 GeV).

NA64, PRL 118, 011802 (2017): "Events from a signal box ... were excluded from the
analysis of the data until the validity of the background estimate in this region
was established." The rule here is one function, :func:`blind`, applied to the
event columns before any table, plot or file of the selection is made: while blind,
the rows inside the box are removed. Opening the box takes an explicit flag
(``na64 select --unblind``, config ``analysis.unblind: true``), which
:func:`blinding_state` logs as a WARNING; every output records ``blinded``.

An event is in the box if the selection's box cuts say so (thresholds of the
``classify`` configuration) or if ``na64 classify`` labelled it ``in_signal_box``:
either is enough to hide it. Table rows that require every box cut count, once
blind, nothing but an empty set; :func:`hides_box` names them so they are left out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import numpy as np

from recon.analysis.selection import BOX_CUTS, PackedSelection

__all__ = ["blind", "blinding_state", "box_mask", "hides_box"]

log = logging.getLogger("na64.blinding")


def blinding_state(unblind: bool) -> bool:
    """``blinded`` for an output; an explicit unblinding is logged as a WARNING."""
    if unblind:
        log.warning("UNBLINDED: the signal box is open; outputs show the events inside it")
        return False
    log.info("blind analysis: events inside the signal box are removed from every output")
    return True


def box_mask(columns: Mapping[str, np.ndarray], selection: PackedSelection) -> np.ndarray:
    """Events inside the signal box: by the selection's box cuts or by the classify label."""
    in_box = selection.all(*BOX_CUTS)
    if "in_signal_box" in columns:
        in_box = in_box | np.asarray(columns["in_signal_box"], dtype=bool)
    return in_box


def blind(
    columns: Mapping[str, np.ndarray], in_box: np.ndarray, *, blinded: bool
) -> dict[str, np.ndarray]:
    """The event columns without the box events while ``blinded``; all of them otherwise."""
    in_box = np.asarray(in_box, dtype=bool)
    if not blinded:
        return dict(columns)
    keep = ~in_box
    return {name: np.asarray(values)[keep] for name, values in columns.items()}


def hides_box(cuts: Iterable[str]) -> bool:
    """True for a table row that requires all box cuts (empty by construction once blind)."""
    return set(BOX_CUTS) <= set(cuts)
