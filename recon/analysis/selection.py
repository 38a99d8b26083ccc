"""The paper's event selection: named cuts, cut flow and N-1 tables.

Banerjee et al. (NA64), PRL 118, 011802 (2017): "quite moderate" criteria

(i)   ``track_angle``: the incoming track has a small angle to the beam axis,
      ``theta_in_mrad < theta_in_max_mrad`` (large angles come from upstream e-
      interactions; no cut on the momentum);
(ii)  ``srd_tag``: the SRD saw synchrotron radiation of a beam electron in time
      with the trigger (the ``srd_tag`` column of ``na64 classify``, thresholds in
      the ``srd`` configuration);
(iii) ``shower_shape``: the ECAL shower's lateral and longitudinal shape is that
      of an electron, ``ecal_shape_chi2 <= shower_chi2_max`` (the combined
      chi2/ndf of the calorimetry stage);
(iv)  ``v2_veto``: no activity in the veto V2, ``v2_GeV < v2_max_GeV``;

then the signal box ``ecal_box``: E_ECAL < 50 GeV and ``hcal_box``: E_HCAL < 1 GeV
(first two HCAL modules), the thresholds of :class:`recon.classify.ClassifyConfig`.
Energies in GeV, angles in mrad.

A missing measurement fails the cut that needs it (no track: (i); no shower shape,
e.g. an ECAL without energy: (iii)); a V2 without pulse (NaN) is no activity.

:class:`PackedSelection` keeps the named boolean masks as bits of one integer per
event, after coffea's ``PackedSelection``; :func:`cutflow` and :func:`n_minus_one`
give counts, weighted sums and their errors ``sqrt(sum w^2)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from recon.classify import ClassifyConfig

__all__ = [
    "BOX_CUTS",
    "CUTFLOW_DTYPE",
    "PAPER_CUTS",
    "PRESELECTION_CUTS",
    "PackedSelection",
    "SelectionConfig",
    "cutflow",
    "n_minus_one",
    "paper_selection",
]

PRESELECTION_CUTS = ("track_angle", "srd_tag", "shower_shape", "v2_veto")  # (i)-(iv)
BOX_CUTS = ("ecal_box", "hcal_box")
PAPER_CUTS = PRESELECTION_CUTS + BOX_CUTS

CUTFLOW_DTYPE = np.dtype(
    [
        ("cut", "U32"),  # the row's cut (cut flow) or the cut left out (N-1)
        ("n", "i8"),  # events passing
        ("sum_w", "f8"),  # weighted events passing
        ("sum_w_err", "f8"),  # sqrt(sum w^2)
        ("eff_step", "f8"),  # cut flow: sum_w / previous row; N-1: all cuts / this row
        ("eff_cumulative", "f8"),  # sum_w / sum_w of all events
    ]
)


class PackedSelection:
    """Named boolean masks over the same events, packed as bits (at most 64)."""

    _MAX = 64

    def __init__(self, n_events: int) -> None:
        self._bits = np.zeros(n_events, dtype=np.uint64)
        self._names: list[str] = []

    def __len__(self) -> int:
        return self._bits.size

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._names)

    def add(self, name: str, mask: np.ndarray) -> None:
        """Add the cut ``name``; ``mask`` is True for events that pass."""
        mask = np.asarray(mask, dtype=bool)
        if name in self._names:
            raise ValueError(f"cut {name!r} already added")
        if mask.shape != self._bits.shape:
            raise ValueError(f"cut {name!r}: {mask.shape} masks for {self._bits.size} events")
        if len(self._names) == self._MAX:
            raise ValueError(f"at most {self._MAX} cuts")
        self._bits |= mask.astype(np.uint64) << np.uint64(len(self._names))
        self._names.append(name)

    def require(self, **passes: bool) -> np.ndarray:
        """Events where each named cut passes (``name=True``) or fails (``name=False``)."""
        mask = np.uint64(0)
        want = np.uint64(0)
        for name, value in passes.items():
            bit = self._bit(name)
            mask |= bit
            if value:
                want |= bit
        return (self._bits & mask) == want

    def all(self, *names: str) -> np.ndarray:
        """Events passing every named cut (all events for no names)."""
        return self.require(**dict.fromkeys(names, True))

    def _bit(self, name: str) -> np.uint64:
        try:
            return np.uint64(1) << np.uint64(self._names.index(name))
        except ValueError:
            raise KeyError(f"no cut {name!r}; have {self._names}") from None


@dataclass(frozen=True)
class SelectionConfig:
    """Thresholds of the paper's selection (mrad, chi2/ndf, GeV) and of the signal box."""

    theta_in_max_mrad: float = 0.35
    shower_chi2_max: float = 5.0
    v2_max_GeV: float = 0.0005
    ecal_max_GeV: float = 50.0
    hcal_max_GeV: float = 1.0

    def __post_init__(self) -> None:
        for name in ("theta_in_max_mrad", "shower_chi2_max", "ecal_max_GeV", "hcal_max_GeV"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if self.v2_max_GeV < 0:
            raise ValueError("v2_max_GeV must be non-negative")

    @classmethod
    def with_box_of(cls, classify: ClassifyConfig, **cuts: float) -> SelectionConfig:
        """The cuts (i), (iii), (iv) given, the box of the classification."""
        return cls(
            ecal_max_GeV=classify.signal_box_ecal_max_GeV,
            hcal_max_GeV=classify.hcal_zero_GeV,
            **cuts,
        )


def paper_selection(columns: Mapping[str, np.ndarray], config: SelectionConfig) -> PackedSelection:
    """The cuts of :data:`PAPER_CUTS`, in that order, on the event columns of ``na64 classify``."""
    theta = np.asarray(columns["theta_in_mrad"], dtype=float)
    chi2 = np.asarray(columns["ecal_shape_chi2"], dtype=float)
    v2 = np.asarray(columns["v2_GeV"], dtype=float)
    e_ecal = np.nan_to_num(np.asarray(columns["e_ecal_GeV"], dtype=float))
    e_hcal = np.nan_to_num(np.asarray(columns["e_hcal_GeV"], dtype=float))
    selection = PackedSelection(theta.size)
    selection.add("track_angle", np.abs(theta) < config.theta_in_max_mrad)  # NaN fails
    selection.add("srd_tag", np.asarray(columns["srd_tag"], dtype=bool))
    selection.add("shower_shape", chi2 <= config.shower_chi2_max)  # NaN fails
    selection.add("v2_veto", ~(v2 >= config.v2_max_GeV))  # NaN (no pulse) passes
    selection.add("ecal_box", e_ecal < config.ecal_max_GeV)
    selection.add("hcal_box", e_hcal < config.hcal_max_GeV)
    return selection


def _row(cut: str, mask: np.ndarray, weights: np.ndarray) -> tuple[str, int, float, float]:
    w = weights[mask]
    return cut, int(mask.sum()), float(w.sum()), float(np.sqrt(np.sum(w * w)))


def _ratio(num: float, den: float) -> float:
    return num / den if den != 0 else float("nan")


def cutflow(
    selection: PackedSelection, weights: np.ndarray, names: Sequence[str] = PAPER_CUTS
) -> np.ndarray:
    """Cumulative cut flow: a row ``initial`` (all events), then one row per cut in order."""
    weights = np.asarray(weights, dtype=float)
    rows = [_row("initial", selection.all(), weights)]
    rows += [_row(name, selection.all(*names[: k + 1]), weights) for k, name in enumerate(names)]
    table = np.zeros(len(rows), dtype=CUTFLOW_DTYPE)
    for i, (cut, n, sum_w, err) in enumerate(rows):
        previous = rows[max(i - 1, 0)][2]
        table[i] = (cut, n, sum_w, err, _ratio(sum_w, previous), _ratio(sum_w, rows[0][2]))
    return table


def n_minus_one(
    selection: PackedSelection, weights: np.ndarray, names: Sequence[str] = PAPER_CUTS
) -> np.ndarray:
    """N-1 table: ``initial``, one row per cut with every other cut applied, then ``all``.

    A cut's row counts the events passing all the other cuts; its ``eff_step`` is the
    efficiency of the cut left out on them (``all`` / row).
    """
    weights = np.asarray(weights, dtype=float)
    initial = _row("initial", selection.all(), weights)
    final = _row("all", selection.all(*names), weights)
    rows = [initial]
    rows += [_row(name, selection.all(*(c for c in names if c != name)), weights) for name in names]
    rows.append(final)
    table = np.zeros(len(rows), dtype=CUTFLOW_DTYPE)
    for i, (cut, n, sum_w, err) in enumerate(rows):
        table[i] = (cut, n, sum_w, err, _ratio(final[2], sum_w), _ratio(sum_w, initial[2]))
    return table
