"""Signal efficiency of the A' search from simulated A' events, broken down as in the paper.

The expected signal is ``N_A' = n_EOT n_A'(eps, m, x_min E0 < E_A' < E0) eff(m)``
(Banerjee et al., PRL 118 (2017) 011802, eq. 2), so the efficiency is defined for A'
emitted with energy inside that window: the fraction of them that the trigger records
and the selection keeps. Its factors, each relative to the previous step, follow the
paper's breakdown (geometrical acceptance 0.97, analysis cuts ~0.8, V2 0.96, HCAL 0.94,
pile-up ~7%):

* ``acceptance``: triggered, written and with a reconstructed track, per A' generated in
  the window (the simulation summary's histogram of generated A' energies);
* ``analysis``: criteria (i)-(iii), incoming-track angle, SRD tag and shower shape;
* ``v2``: criterion (iv), no activity in V2;
* ``hcal``: E_HCAL below the zero-energy threshold;
* ``ecal``: E_ECAL below the signal-box edge.

Pile-up is not a separate cut here: a second beam particle costs signal through the V2
and HCAL vetoes, so :func:`efficiency_breakdown` reports separately the efficiency of
events with and without a pile-up particle in the truth (``pileup_loss``).

Counts are of simulated events (each A' event has weight 1); errors are binomial
(Clopper-Pearson 68% intervals, :func:`scipy.stats.beta`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from recon.analysis.selection import PackedSelection

__all__ = [
    "EFFICIENCY_STEPS",
    "EfficiencyStep",
    "SignalWindow",
    "clopper_pearson",
    "efficiency_breakdown",
    "generated_in_window",
]

#: The factors of the efficiency, in order, and the selection cuts each one adds.
EFFICIENCY_STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("analysis", ("track_angle", "srd_tag", "shower_shape")),
    ("v2", ("v2_veto",)),
    ("hcal", ("hcal_box",)),
    ("ecal", ("ecal_box",)),
)


@dataclass(frozen=True)
class SignalWindow:
    """The A' energy window of the yield: ``x_min E0 < E_A' < E0`` (GeV)."""

    beam_energy_GeV: float = 100.0
    x_min: float = 0.5

    def contains(self, e_aprime_GeV: NDArray) -> NDArray:
        e = np.asarray(e_aprime_GeV, float)
        return (e > self.x_min * self.beam_energy_GeV) & (e < self.beam_energy_GeV)


@dataclass(frozen=True)
class EfficiencyStep:
    """One factor of the efficiency: ``passed / total`` with its 68% interval."""

    name: str
    passed: float
    total: float
    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float | str]:
        return {"name": self.name, "passed": self.passed, "total": self.total,
                "value": self.value, "low": self.low, "high": self.high}


def clopper_pearson(passed: float, total: float, cl: float = 0.6827) -> tuple[float, float]:
    """Central Clopper-Pearson interval of a binomial fraction (Clopper & Pearson 1934).

    >>> lo, hi = clopper_pearson(10, 10)
    >>> round(lo, 3), hi
    (0.832, 1.0)
    """
    if total <= 0:
        return 0.0, 1.0
    alpha = 1.0 - cl
    low = stats.beta.ppf(alpha / 2, passed, total - passed + 1) if passed > 0 else 0.0
    high = stats.beta.ppf(1 - alpha / 2, passed + 1, total - passed) if passed < total else 1.0
    return float(low), float(high)


def _step(name: str, passed: float, total: float) -> EfficiencyStep:
    low, high = clopper_pearson(passed, total)
    value = passed / total if total > 0 else float("nan")
    return EfficiencyStep(name, float(passed), float(total), value, low, high)


def generated_in_window(histogram: Mapping[str, list[float]], window: SignalWindow) -> float:
    """A' generated with energy in the window, from a histogram ``{"edges_GeV", "counts"}``.

    Bins partly inside the window count in proportion of their overlap (the window edges
    should fall on bin edges; the simulation uses 0.5 GeV bins).
    """
    edges = np.asarray(histogram["edges_GeV"], float)
    counts = np.asarray(histogram["counts"], float)
    lo, hi = window.x_min * window.beam_energy_GeV, window.beam_energy_GeV
    overlap = np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0.0, None)
    return float(np.sum(counts * overlap / np.diff(edges)))


def efficiency_breakdown(
    selection: PackedSelection,
    *,
    e_aprime_GeV: NDArray,
    track_ok: NDArray,
    pileup: NDArray,
    n_generated_in_window: float,
    window: SignalWindow,
) -> dict[str, object]:
    """The efficiency factors and their product for one A' mass.

    ``selection`` holds the paper's cuts of the written (triggered) A' events;
    ``e_aprime_GeV``, ``track_ok`` and ``pileup`` (a second beam particle in the truth) are
    per written event; ``n_generated_in_window`` is the number of A' the simulation
    generated in the window for those events (see :func:`generated_in_window`).
    """
    in_window = window.contains(e_aprime_GeV)
    accepted = in_window & np.asarray(track_ok, bool)
    steps = [_step("acceptance", accepted.sum(), n_generated_in_window)]
    passed = accepted
    for name, cuts in EFFICIENCY_STEPS:
        keep = passed & selection.all(*cuts)
        steps.append(_step(name, keep.sum(), passed.sum()))
        passed = keep
    total = _step("total", passed.sum(), n_generated_in_window)
    pileup = np.asarray(pileup, bool)
    with_pu = _step("with_pileup", (passed & pileup).sum(), (accepted & pileup).sum())
    without_pu = _step("without_pileup", (passed & ~pileup).sum(), (accepted & ~pileup).sum())
    return {
        "steps": [s.as_dict() for s in steps],
        "efficiency": total.value,
        "efficiency_low": total.low,
        "efficiency_high": total.high,
        "n_generated_in_window": n_generated_in_window,
        "n_selected": int(passed.sum()),
        "pileup_fraction": float(pileup[accepted].mean()) if accepted.any() else 0.0,
        "pileup_loss": 1.0 - with_pu.value / without_pu.value
        if with_pu.total > 0 and without_pu.value > 0 else 0.0,
    }
