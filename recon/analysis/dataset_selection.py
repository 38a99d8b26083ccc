"""The paper's selection applied to one dataset: cut flow, N-1, blinding and backgrounds.

:func:`select_events` is the pure core of ``na64 select``: event columns (and, for
simulated datasets, the truth ``process`` and ``pileup_pdg``) in, everything the command
writes out as arrays and plain values, with the blinding already applied
(:mod:`recon.analysis.blinding`). Criteria and tables: :mod:`recon.analysis.selection`;
background methods: :mod:`recon.analysis.backgrounds` (Banerjee et al., PRL 118 (2017)
011802, Table I and the sideband extrapolation).

Method 1 reads the simulation truth and therefore counts simulated box events even
while blind: it is the simulation's prediction, the paper's Table I (see
docs/analysis-selection.md). Every other output obeys the blinding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from recon.analysis.backgrounds import (
    SidebandConfig,
    SidebandEstimate,
    combine_sidebands,
    extrapolate_sideband,
    mc_background_table,
)
from recon.analysis.blinding import blind, box_mask, hides_box
from recon.analysis.selection import (
    CUTFLOW_DTYPE,
    PAPER_CUTS,
    PRESELECTION_CUTS,
    SelectionConfig,
    cutflow,
    n_minus_one,
    paper_selection,
)

__all__ = ["SelectionOutputs", "select_events"]


@dataclass(frozen=True)
class SelectionOutputs:
    """Everything ``na64 select`` writes, as arrays and plain values (blinding applied)."""

    blinded: bool
    cutflow: np.ndarray
    n_minus_one: np.ndarray
    selected: dict[str, np.ndarray]  # (i)-(iv), box removed while blind
    plane_before: dict[str, np.ndarray]  # e_ecal_GeV, e_hcal_GeV, weight
    plane_after: dict[str, np.ndarray]
    sideband_samples: dict[str, dict[str, np.ndarray]]  # A, C: shape-sample x, weight
    sidebands: tuple[SidebandEstimate, ...]
    background_mc: np.ndarray | None
    summary: dict[str, Any]


def select_events(
    columns: dict[str, np.ndarray],
    truth: dict[str, np.ndarray] | None,
    *,
    selection_config: SelectionConfig,
    sideband_config: SidebandConfig,
    dataset_eot: float,
    target_eot: float,
    blinded: bool,
) -> SelectionOutputs:
    """The pure core: event columns (and truth rows in the same order) in, outputs out."""
    full = paper_selection(columns, selection_config)
    in_box = box_mask(columns, full)
    background_mc = None
    if truth is not None:  # the simulation's prediction (Table I), see the module docstring
        background_mc = mc_background_table(
            full.all(*PRESELECTION_CUTS) & in_box,
            truth["process"],
            truth["pileup_pdg"],
            columns["weight"],
            dataset_eot=dataset_eot,
            target_eot=target_eot,
        )
    visible = blind(columns, in_box, blinded=blinded)
    selection = paper_selection(visible, selection_config)
    weights = np.asarray(visible["weight"], dtype=float)
    flow = cutflow(selection, weights, PAPER_CUTS)
    n1 = n_minus_one(selection, weights, PAPER_CUTS)
    if blinded:
        flow = flow[[not hides_box(PAPER_CUTS[:k]) for k in range(len(flow))]]
        n1 = n1[[not hides_box(_n1_cuts(cut)) for cut in n1["cut"]]]
        n1["eff_step"] = np.nan  # the efficiency of a left-out cut needs the box
    n1 = _labelled(
        ("(i)-(iv)", n_minus_one(selection, weights, PRESELECTION_CUTS)),
        ("(i)-(iv)+box", n1),
    )
    preselected = selection.all(*PRESELECTION_CUTS)
    shape_sample = selection.all(*sideband_config.shape_cuts)
    estimates, samples = _sidebands(
        visible, selection, preselected, shape_sample, selection_config, sideband_config
    )
    scale = target_eot / dataset_eot
    summary = {
        "blinded": blinded,
        "dataset_eot": dataset_eot,
        "target_eot": target_eot,
        "scale_to_target": scale,
        "selected_events": int(preselected.sum()),
        "observed_in_box": None if blinded else _observed(selection, weights),
        "method_mc": None if background_mc is None else _mc_summary(background_mc),
        "method_sidebands": {
            "dataset": combine_sidebands(estimates),
            "target": combine_sidebands(estimates, scale),
            "per_sideband": [_estimate_summary(e) for e in estimates],
        },
    }
    return SelectionOutputs(
        blinded=blinded,
        cutflow=flow,
        n_minus_one=n1,
        selected={k: np.asarray(v)[preselected] for k, v in visible.items()},
        plane_before=_plane(visible, np.ones(weights.size, bool)),
        plane_after=_plane(visible, preselected),
        sideband_samples=samples,
        sidebands=estimates,
        background_mc=background_mc,
        summary=summary,
    )


def _labelled(*tables: tuple[str, np.ndarray]) -> np.ndarray:
    """N-1 tables of several cut sets in one, with a leading ``cut_set`` column."""
    dtype = np.dtype([("cut_set", "U16"), *CUTFLOW_DTYPE.descr])
    rows = [(label, *row) for label, table in tables for row in table.tolist()]
    return np.array(rows, dtype=dtype)


def _n1_cuts(left_out: str) -> tuple[str, ...]:
    if left_out == "initial":
        return ()
    return tuple(c for c in PAPER_CUTS if c != left_out) if left_out != "all" else PAPER_CUTS


def _plane(columns: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {
        k: np.asarray(columns[k], dtype=float)[mask] for k in ("e_ecal_GeV", "e_hcal_GeV", "weight")
    }


def _observed(selection, weights: np.ndarray) -> dict[str, float]:
    mask = selection.all(*PAPER_CUTS)
    return {"n": int(mask.sum()), "sum_w": float(weights[mask].sum())}


def _sidebands(
    columns, selection, preselected, shape_sample, cuts: SelectionConfig, config: SidebandConfig
):
    e_ecal = np.asarray(columns["e_ecal_GeV"], dtype=float)
    e_hcal = np.asarray(columns["e_hcal_GeV"], dtype=float)
    weights = np.asarray(columns["weight"], dtype=float)
    low_ecal, quiet_hcal = selection.all("ecal_box"), selection.all("hcal_box")
    geometry = {
        "A": (low_ecal & ~quiet_hcal, e_hcal, cuts.hcal_max_GeV, config.a_fit_max_GeV),
        "C": (~low_ecal & quiet_hcal, e_ecal, cuts.ecal_max_GeV, config.c_fit_max_GeV),
    }
    estimates, samples = [], {}
    for name, (region, x, edge, fit_max) in geometry.items():
        shape = region & shape_sample
        chosen = region & preselected
        samples[name] = {
            "x": x[shape],
            "weight": weights[shape],
            "x_selected": x[chosen],
            "edge": np.float64(edge),
            "fit_max": np.float64(fit_max),
        }
        estimates.append(
            extrapolate_sideband(
                name,
                x[shape],
                weights[shape],
                x[chosen],
                weights[chosen],
                edge=edge,
                fit_max=fit_max,
                box_low=0.0,
                families=config.fits,
                n_bins=config.bins,
                min_fit_events=config.min_fit_events,
            )
        )
    return tuple(estimates), samples


def _estimate_summary(e: SidebandEstimate) -> dict[str, Any]:
    return {
        "sideband": e.sideband,
        "n_selected_in_window": e.n_selected,
        "n_selected_err": e.n_selected_err,
        "available": e.available,
        "reason": e.reason or None,
        "fits": [{**asdict(f), "estimate": e.value(f), "stat": e.stat_error(f)} for f in e.fits],
    }


def _mc_summary(table: np.ndarray) -> dict[str, Any]:
    total = table[table["source"] == "total"][0]
    return {
        "dataset": {
            "central": total["sum_w"],
            "stat": total["sum_w_err"],
            "upper_68": total["upper_68"],
            "upper_90": total["upper_90"],
        },
        "target": {
            "central": total["expected"],
            "stat": total["expected_err"],
            "upper_68": total["expected_upper_68"],
            "upper_90": total["expected_upper_90"],
        },
        "n_box": int(total["n_box"]),
        "note": "simulation truth: the prediction is not subject to the blinding",
    }
