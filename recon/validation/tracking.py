"""Tracking validation against simulation truth: efficiency, momentum resolution, impact point.

Pure functions (numpy arrays in, JSON-ready figures out) and plots;
:func:`validate_tracking` assembles the figures of issue 5's acceptance.
Truth comes from the simulation's truth tables only (columns ``pdg``,
``process``, ``p_true_GeV`` (the beam particle's momentum, GeV),
``track_x_mm``/``track_y_mm`` (n, 4) true crossings of MM1, MM2, GEM3, GEM4,
NaN outside a station's active area, ``pileup_dt_ns`` (NaN if none),
``pileup_pdg`` (0 if none), ``pileup_track_x_mm``/``_y_mm``); ``sim`` is never
imported. Injected tracker offsets come from a geometry condition (the one the
simulation ran with), see :func:`alignment_closure`.

Definitions (units: GeV, mm, ns; relative quantities are fractions):

* **efficiency**: fraction of the eligible events with ``track_ok``; error
  the standard deviation of the Beta posterior of a uniform prior,
  ``sqrt((k+1)(n-k+1) / ((n+2)^2 (n+3)))``, never zero.
* **momentum residual** ``r = p_track / p_true - 1``. **Resolution**: the
  68 % half-width ``(q84 - q16) / 2`` of ``r`` (robust against the
  bremsstrahlung tail; equal to sigma for a Gaussian); **bias**: the median
  of ``r``. Errors of both from a bootstrap (200 resamples, fixed seed). The
  r.m.s. of ``r`` within +-5 half-widths and the fraction outside are given
  too.
* **pull** ``(p_track - p_true) / p_track_err``: median and 68 % half-width.
* **impact point**: ``x_ecal_mm - x_ecal_shower_mm`` (and y), track at the
  ECAL front face minus the calorimeter's shower centre, for electron showers
  above ``impact_min_ecal_GeV``: median, 68 % half-width, r.m.s. within
  +-5 half-widths. The shower centre sits at the shower's depth, so along the
  ~21 mrad bent track at 100 GeV the x residual has an offset of
  ``-theta_x * depth``; ``impact_depth_mm`` is that offset over the mean
  track slope.
* **single-electron events**: truth ``pdg == 11`` and no pile-up particle
  (``pileup_pdg == 0``), by default also all 8 true crossings inside the
  stations (``in_acceptance``); efficiency without the acceptance requirement
  is reported as well.
* **pile-up classes** (events with a pile-up particle): ``in_time``
  ``|dt| <= 25 ns`` and ``out_of_time`` otherwise, each split by whether the
  pile-up particle crossed at least 3 stations in x (``tracked``).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recon.plotting import pyplot

__all__ = [
    "CALO_COLUMNS",
    "TRACK_COLUMNS",
    "TRUTH_COLUMNS",
    "TrackAcceptance",
    "alignment_closure",
    "core_width",
    "efficiency",
    "impact_residuals",
    "join_events",
    "pileup_classes",
    "pileup_figures",
    "plot_impact",
    "plot_momentum",
    "plot_pileup",
    "plot_resolution_vs_momentum",
    "pulls",
    "resolution_by_momentum",
    "sample_table",
    "single_electrons",
    "validate_tracking",
]

PDG_ELECTRON = 11
TRACK_COLUMNS = [
    "run",
    "spill",
    "event",
    "n_track_candidates",
    "p_track_GeV",
    "p_track_err_GeV",
    "track_charge",
    "track_chi2ndf",
    "theta_out_mrad",
    "x_ecal_mm",
    "y_ecal_mm",
    "track_ok",
]
TRUTH_COLUMNS = [
    "run",
    "spill",
    "event",
    "pdg",
    "process",
    "p_true_GeV",
    "track_x_mm",
    "track_y_mm",
    "pileup_dt_ns",
    "pileup_pdg",
    "pileup_track_x_mm",
    "pileup_track_y_mm",
]
CALO_COLUMNS = ["run", "spill", "event", "x_ecal_shower_mm", "y_ecal_shower_mm", "e_ecal_GeV"]


@dataclass(frozen=True)
class TrackAcceptance:
    """Issue 5 goals and the selections behind the figures."""

    resolution_goal: float = 0.010  # sigma(p)/p at the reference momentum
    bias_goal: float = 0.002  # |median(p/p_true - 1)|
    efficiency_goal: float = 0.95  # single electrons
    alignment_tolerance_mm: float = 0.020  # per station and coordinate
    reference_momentum_GeV: float = 100.0
    reference_window: float = 0.05  # |p_true / p_ref - 1| for the reference figures
    momentum_edges_GeV: tuple[float, ...] = (15, 25, 35, 45, 55, 65, 75, 90, 110, 130, 160)
    min_events: int = 30  # per bin, for a resolution
    impact_min_ecal_GeV: float = 10.0
    in_time_ns: float = 25.0
    require_acceptance: bool = True


# ------------------------------------------------------------------ statistics


def efficiency(passed: np.ndarray) -> dict[str, Any]:
    """Fraction of true entries of a boolean array, with its (never zero) error."""
    n, k = int(passed.size), int(np.count_nonzero(passed))
    if n == 0:
        return {"n": 0, "passed": 0, "efficiency": None, "error": None}
    err = np.sqrt((k + 1) * (n - k + 1) / ((n + 2) ** 2 * (n + 3)))
    return {"n": n, "passed": k, "efficiency": k / n, "error": float(err)}


def _centre_width(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q16, q50, q84 = np.percentile(values, [16, 50, 84], axis=-1)
    return q50, (q84 - q16) / 2


def core_width(
    values: np.ndarray, *, n_boot: int = 200, seed: int = 1, tail_halfwidths: float = 5.0
) -> dict[str, Any]:
    """Median and 68 % half-width of ``values`` with bootstrap errors; core r.m.s. and tails."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return {
            "n": int(v.size),
            "median": None,
            "median_error": None,
            "half_width": None,
            "half_width_error": None,
            "rms_core": None,
            "tail_fraction": None,
        }
    median, half = _centre_width(v)
    rng = np.random.default_rng(seed)
    boot_m, boot_w = [], []
    chunk = max(1, 4_000_000 // v.size)
    for start in range(0, n_boot, chunk):
        sample = v[rng.integers(0, v.size, size=(min(chunk, n_boot - start), v.size))]
        m, w = _centre_width(sample)
        boot_m.append(m)
        boot_w.append(w)
    core = np.abs(v - median) <= tail_halfwidths * max(half, 1e-12)
    return {
        "n": int(v.size),
        "median": float(median),
        "median_error": float(np.std(np.concatenate(boot_m))),
        "half_width": float(half),
        "half_width_error": float(np.std(np.concatenate(boot_w))),
        "rms_core": float(np.std(v[core])),
        "tail_fraction": float(1.0 - core.mean()),
    }


# ------------------------------------------------------------------ event table


def join_events(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (into ``a``, ``b``) of the events in both, by (run, spill, event).

    ``a`` and ``b``: awkward arrays or mappings with those columns.
    """

    def keys(t):
        return (
            (np.asarray(t["run"], np.uint64) << np.uint64(44))
            | (np.asarray(t["spill"], np.uint64) << np.uint64(24))
            | np.asarray(t["event"], np.uint64)
        )

    _, i_a, i_b = np.intersect1d(keys(a), keys(b), return_indices=True)
    return i_a, i_b


def sample_table(tracks, truth, calo=None) -> dict[str, np.ndarray]:
    """Flat per-event columns of tracks joined with truth (and calo) on (run, spill, event).

    ``tracks``, ``truth`` and ``calo`` are awkward arrays (or anything with the
    named fields) of :data:`TRACK_COLUMNS`, :data:`TRUTH_COLUMNS`,
    :data:`CALO_COLUMNS`. Events missing from the calo file get NaN shower columns.
    """
    i_t, i_truth = join_events(tracks, truth)
    out = {name: np.asarray(tracks[name])[i_t] for name in TRACK_COLUMNS}
    for name in TRUTH_COLUMNS[3:]:
        out[name] = _block(truth[name])[i_truth]
    n = i_t.size
    for name in CALO_COLUMNS[3:]:
        out[name] = np.full(n, np.nan)
    if calo is not None:
        j_t, j_c = join_events(out, calo)
        for name in CALO_COLUMNS[3:]:
            out[name][j_t] = np.asarray(calo[name], dtype=np.float64)[j_c]
    return out


def _block(column) -> np.ndarray:
    """A truth column as numpy; fixed-size blocks (n, k) come as 2-D arrays."""
    try:
        import awkward as ak

        if isinstance(column, ak.Array):
            return ak.to_numpy(column)
    except ImportError:  # pragma: no cover - awkward is a dependency
        pass
    return np.asarray(column)


def concatenate_tables(tables: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One table from several (same columns)."""
    return {k: np.concatenate([t[k] for t in tables]) for k in tables[0]}


def in_acceptance(table: dict[str, np.ndarray]) -> np.ndarray:
    """The beam particle crossed all four stations inside their active areas (x and y)."""
    return np.isfinite(table["track_x_mm"]).all(axis=1) & np.isfinite(table["track_y_mm"]).all(
        axis=1
    )


def single_electrons(
    table: dict[str, np.ndarray], *, require_acceptance: bool = True
) -> np.ndarray:
    """Electron events without a pile-up particle (optionally inside all four stations)."""
    sel = (np.abs(table["pdg"]) == PDG_ELECTRON) & (table["pileup_pdg"] == 0)
    return sel & in_acceptance(table) if require_acceptance else sel


# ------------------------------------------------------------------ figures


def _residual(table) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return table["p_track_GeV"] / table["p_true_GeV"] - 1.0


def pulls(table: dict[str, np.ndarray], selection: np.ndarray) -> dict[str, Any]:
    """``(p_track - p_true) / p_track_err`` of the selected good tracks: centre and width."""
    ok = selection & table["track_ok"]
    with np.errstate(invalid="ignore", divide="ignore"):
        pull = (table["p_track_GeV"] - table["p_true_GeV"]) / table["p_track_err_GeV"]
    return core_width(pull[ok], n_boot=50)


def resolution_by_momentum(
    table: dict[str, np.ndarray], selection: np.ndarray, edges_GeV, *, min_events: int = 30
) -> list[dict[str, Any]]:
    """Per bin of ``p_true``: efficiency, acceptance, resolution and bias (with errors), pull.

    ``selection`` is the set of eligible events (e.g. electrons without
    pile-up, whether or not inside the stations); ``acceptance`` is the
    fraction of them crossing all four stations (truth).
    """
    p_true = table["p_true_GeV"]
    r = _residual(table)
    acc = in_acceptance(table)
    rows = []
    for lo, hi in itertools.pairwise(edges_GeV):
        sel = selection & (p_true >= lo) & (p_true < hi)
        if not sel.any():
            continue
        ok = sel & table["track_ok"]
        row = {
            "p_lo_GeV": float(lo),
            "p_hi_GeV": float(hi),
            "p_mean_GeV": float(p_true[sel].mean()),
            "efficiency": efficiency(table["track_ok"][sel]),
            "acceptance": efficiency(acc[sel]),
            "efficiency_in_acceptance": efficiency(table["track_ok"][sel & acc]),
        }
        if ok.sum() >= min_events:
            cw = core_width(r[ok])
            row.update(
                resolution=cw["half_width"],
                resolution_error=cw["half_width_error"],
                bias=cw["median"],
                bias_error=cw["median_error"],
                rms_core=cw["rms_core"],
                tail_fraction=cw["tail_fraction"],
                fit_error=float(np.median(table["p_track_err_GeV"][ok] / p_true[ok])),
                pull=pulls(table, sel),
            )
        rows.append(row)
    return rows


def impact_residuals(table: dict[str, np.ndarray], selection: np.ndarray) -> dict[str, Any]:
    """Track at the ECAL face minus the shower centre (x and y, mm) for the selected events."""
    ok = selection & table["track_ok"] & np.isfinite(table["x_ecal_shower_mm"])
    out: dict[str, Any] = {"n": int(ok.sum())}
    for axis in ("x", "y"):
        d = table[f"{axis}_ecal_mm"][ok] - table[f"{axis}_ecal_shower_mm"][ok]
        cw = core_width(d, n_boot=100)
        out[axis] = {
            k: cw[k]
            for k in (
                "median",
                "median_error",
                "half_width",
                "half_width_error",
                "rms_core",
                "tail_fraction",
            )
        }
    if ok.any() and out["x"]["median"] is not None:
        slope = float(np.median(np.tan(table["theta_out_mrad"][ok] * 1e-3)))
        out["mean_track_slope_x"] = slope
        out["impact_depth_mm"] = float(-out["x"]["median"] / slope) if slope > 0 else None
    return out


def pileup_classes(
    table: dict[str, np.ndarray], *, in_time_ns: float = 25.0
) -> dict[str, np.ndarray]:
    """Masks of the pile-up classes (see the module docstring); ``none`` has no pile-up."""
    has = table["pileup_pdg"] != 0
    dt = np.abs(table["pileup_dt_ns"])
    tracked = np.isfinite(table["pileup_track_x_mm"]).sum(axis=1) >= 3
    in_time = has & (dt <= in_time_ns)
    out_time = has & ~(dt <= in_time_ns)
    return {
        "none": ~has,
        "in_time_tracked": in_time & tracked,
        "in_time_not_tracked": in_time & ~tracked,
        "out_of_time_tracked": out_time & tracked,
        "out_of_time_not_tracked": out_time & ~tracked,
    }


def pileup_figures(
    table: dict[str, np.ndarray],
    selection: np.ndarray,
    *,
    in_time_ns: float = 25.0,
    wrong_track: float = 0.05,
) -> dict[str, Any]:
    """Efficiency, resolution, candidate counts and wrong-track rate per pile-up class.

    ``wrong_track``: a good track with ``|p/p_true - 1| > wrong_track`` counts
    as a wrong (e.g. the pile-up particle's) track.
    """
    r = _residual(table)
    out = {}
    for name, mask in pileup_classes(table, in_time_ns=in_time_ns).items():
        sel = selection & mask
        ok = sel & table["track_ok"]
        n_cand = table["n_track_candidates"][sel]
        out[name] = {
            "efficiency": efficiency(table["track_ok"][sel]),
            "resolution": core_width(r[ok], n_boot=50)["half_width"] if ok.sum() >= 10 else None,
            "wrong_track_fraction": float(np.mean(np.abs(r[ok]) > wrong_track))
            if ok.any()
            else None,
            "candidates_fraction": {str(k): float(np.mean(n_cand == k)) for k in (0, 1, 2)}
            if n_cand.size
            else {},
        }
    # efficiency against the pile-up time (tracked pile-up particles)
    has = (
        selection
        & (table["pileup_pdg"] != 0)
        & (np.isfinite(table["pileup_track_x_mm"]).sum(axis=1) >= 3)
    )
    edges = np.array([-100, -75, -50, -25, 0, 25, 50, 75, 100], dtype=float)
    dt = table["pileup_dt_ns"]
    out["versus_dt"] = [
        {
            "dt_lo_ns": float(lo),
            "dt_hi_ns": float(hi),
            **efficiency(table["track_ok"][has & (dt >= lo) & (dt < hi)]),
            "two_candidates": float(
                np.mean(table["n_track_candidates"][has & (dt >= lo) & (dt < hi)] >= 2)
            )
            if np.any(has & (dt >= lo) & (dt < hi))
            else None,
        }
        for lo, hi in itertools.pairwise(edges)
    ]
    out["pileup_fraction"] = (
        float(np.mean(table["pileup_pdg"][selection] != 0)) if (selection.any()) else None
    )
    return out


def alignment_closure(
    derived_mm: np.ndarray, injected_mm: np.ndarray, names, tolerance_mm: float = 0.020
) -> dict[str, Any]:
    """Derived minus injected station offsets (n_stations, 2) in mm, against the tolerance."""
    diff = np.asarray(derived_mm, dtype=float) - np.asarray(injected_mm, dtype=float)
    return {
        "stations": {
            name: {
                "injected_mm": [round(float(v), 6) for v in injected_mm[i]],
                "derived_mm": [round(float(v), 6) for v in derived_mm[i]],
                "difference_um": [round(float(v * 1e3), 3) for v in diff[i]],
            }
            for i, name in enumerate(names)
        },
        "max_abs_difference_um": round(float(np.abs(diff).max() * 1e3), 3),
        "tolerance_um": tolerance_mm * 1e3,
        "pass": bool(np.abs(diff).max() <= tolerance_mm),
    }


def injected_offsets(true_geometry, nominal_geometry) -> tuple[tuple[str, ...], np.ndarray]:
    """Station offsets (dx, dy) in mm of a (simulated, displaced) geometry from the nominal one."""
    stations = sorted(nominal_geometry.trackers.values(), key=lambda s: s.id)
    names = tuple(s.name for s in stations)
    shifted = true_geometry.trackers
    return names, np.array([[shifted[s.name].x - s.x, shifted[s.name].y - s.y] for s in stations])


def validate_tracking(
    table: dict[str, np.ndarray], acceptance: TrackAcceptance = TrackAcceptance()
) -> dict[str, Any]:
    """All figures of issue 5 that need truth, from one joined event table.

    Returns ``{"figures": JSON-ready dict with pass flags, "arrays": inputs of the plots}``.
    """
    a = acceptance
    singles_all = single_electrons(table, require_acceptance=False)
    singles = single_electrons(table, require_acceptance=a.require_acceptance)
    p_true = table["p_true_GeV"]
    ref = np.abs(p_true / a.reference_momentum_GeV - 1.0) <= a.reference_window
    r = _residual(table)
    ok_ref = singles & ref & table["track_ok"]
    cw = core_width(r[ok_ref])
    eff = efficiency(table["track_ok"][singles & ref])
    eff_all = efficiency(table["track_ok"][singles_all & ref])
    reference = {
        "momentum_GeV": a.reference_momentum_GeV,
        "window": a.reference_window,
        "efficiency": eff,
        "efficiency_without_acceptance_cut": eff_all,
        "resolution": cw["half_width"],
        "resolution_error": cw["half_width_error"],
        "bias": cw["median"],
        "bias_error": cw["median_error"],
        "rms_core": cw["rms_core"],
        "tail_fraction": cw["tail_fraction"],
        "pull": pulls(table, singles & ref),
        "candidates_fraction": {
            str(k): float(np.mean(table["n_track_candidates"][singles & ref] == k))
            for k in (0, 1, 2)
        },
    }
    passes = {
        "resolution": cw["half_width"] is not None and cw["half_width"] <= a.resolution_goal,
        "bias": cw["median"] is not None and abs(cw["median"]) < a.bias_goal,
        "efficiency": eff["efficiency"] is not None and eff["efficiency"] >= a.efficiency_goal,
    }
    # every particle species of the sample (physics runs: pions, muons, kaons)
    species = {}
    for pdg in np.unique(table["pdg"]):
        sel = (table["pdg"] == pdg) & (table["pileup_pdg"] == 0) & ref & in_acceptance(table)
        if sel.sum() < a.min_events:
            continue
        ok = sel & table["track_ok"]
        species[str(int(pdg))] = {
            "efficiency": efficiency(table["track_ok"][sel]),
            "resolution": core_width(r[ok], n_boot=50)["half_width"] if ok.sum() >= 10 else None,
        }
    electrons = np.abs(table["pdg"]) == PDG_ELECTRON
    impact_sel = electrons & (table["e_ecal_GeV"] > a.impact_min_ecal_GeV) & ref
    figures = {
        "acceptance": asdict(a),
        "events": int(p_true.size),
        "single_electrons": int(singles.sum()),
        "reference": reference,
        "by_momentum": resolution_by_momentum(
            table, singles_all, a.momentum_edges_GeV, min_events=a.min_events
        ),
        "by_species": species,
        "impact": impact_residuals(table, impact_sel),
        "impact_no_pileup": impact_residuals(table, impact_sel & (table["pileup_pdg"] == 0)),
        "pileup": pileup_figures(
            table, electrons & in_acceptance(table) & ref, in_time_ns=a.in_time_ns
        ),
        "pileup_all_species": pileup_figures(
            table, in_acceptance(table) & ref, in_time_ns=a.in_time_ns
        ),
        "pass_by_goal": passes,
        "pass": bool(all(passes.values())),
    }
    arrays = {
        "residual_ref": r[ok_ref],
        "pull_ref": ((table["p_track_GeV"] - p_true) / table["p_track_err_GeV"])[ok_ref],
        "impact": (
            table["x_ecal_mm"] - table["x_ecal_shower_mm"],
            table["y_ecal_mm"] - table["y_ecal_shower_mm"],
            impact_sel & table["track_ok"] & np.isfinite(table["x_ecal_shower_mm"]),
        ),
    }
    return {"figures": figures, "arrays": arrays}


# ------------------------------------------------------------------ plots


def plot_resolution_vs_momentum(
    rows: list[dict[str, Any]], path: str | Path, *, goal: float = 0.010
) -> None:
    """sigma(p)/p and bias (%) and efficiency/acceptance against the true momentum (GeV)."""
    plt = pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(7, 9), sharex=True)
    p = np.array([row["p_mean_GeV"] for row in rows])
    has = np.array([row.get("resolution") is not None for row in rows], dtype=bool)

    def col(key):
        return np.array([row[key] if row.get(key) is not None else np.nan for row in rows])

    if has.any():
        axes[0].errorbar(
            p[has],
            100 * col("resolution")[has],
            yerr=100 * col("resolution_error")[has],
            fmt="o",
            label="68 % half-width of p/p_true - 1",
        )
        axes[0].plot(p[has], 100 * col("fit_error")[has], "x", label="median fit error")
        axes[1].errorbar(p[has], 100 * col("bias")[has], yerr=100 * col("bias_error")[has], fmt="o")
    axes[0].axhline(100 * goal, color="r", ls="--", label=f"goal {100 * goal:g} % (100 GeV)")
    axes[0].set_ylabel("sigma(p)/p (%)")
    axes[0].legend(fontsize="small")
    axes[1].axhspan(-0.2, 0.2, color="g", alpha=0.15, label="goal |bias| < 0.2 %")
    axes[1].set_ylabel("bias (%)")
    axes[1].legend(fontsize="small")
    for key, label, fmt in (
        ("efficiency", "track_ok / electrons", "o"),
        ("acceptance", "true track in all 4 stations", "s"),
        ("efficiency_in_acceptance", "track_ok / in acceptance", "^"),
    ):
        e = np.array([row[key]["efficiency"] for row in rows], dtype=float)
        err = np.array([row[key]["error"] or 0.0 for row in rows], dtype=float)
        axes[2].errorbar(p, e, yerr=err, fmt=fmt, label=label, alpha=0.8)
    axes[2].axhline(0.95, color="r", ls="--", label="goal 95 %")
    axes[2].set_ylabel("fraction")
    axes[2].set_xlabel("true momentum (GeV)")
    axes[2].set_ylim(-0.02, 1.05)
    axes[2].legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_momentum(residual: np.ndarray, pull: np.ndarray, path: str | Path) -> None:
    """Distributions of p/p_true - 1 (%) and of the momentum pull at the reference momentum."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    r = 100 * residual[np.isfinite(residual)]
    if r.size:
        q16, q50, q84 = np.percentile(r, [16, 50, 84])
        w = (q84 - q16) / 2
        bins = np.linspace(-5, 2, 141)
        axes[0].hist(np.clip(r, bins[0], bins[-1]), bins=bins, histtype="step")
        x = np.linspace(-5, 2, 400)
        scale = r.size * (bins[1] - bins[0]) / (w * np.sqrt(2 * np.pi))
        axes[0].plot(
            x,
            scale * np.exp(-0.5 * ((x - q50) / w) ** 2),
            "r:",
            label=f"Gaussian, median {q50:+.3f} %, half-width {w:.3f} %",
        )
        axes[0].set_yscale("log")
        axes[0].set_ylim(0.5, None)
        axes[0].legend(fontsize="small")
    axes[0].set_xlabel("p_track / p_true - 1 (%)  (overflow in the edge bins)")
    g = pull[np.isfinite(pull)]
    if g.size:
        q16, q50, q84 = np.percentile(g, [16, 50, 84])
        axes[1].hist(
            np.clip(g, -8, 8),
            bins=np.linspace(-8, 8, 81),
            histtype="step",
            label=f"median {q50:+.2f}, half-width {(q84 - q16) / 2:.2f}",
        )
        axes[1].legend(fontsize="small")
    axes[1].set_xlabel("(p_track - p_true) / sigma_p")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_impact(dx: np.ndarray, dy: np.ndarray, selection: np.ndarray, path: str | Path) -> None:
    """Track impact at the ECAL face minus shower centre (mm), x and y."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, d, axis in ((axes[0], dx, "x"), (axes[1], dy, "y")):
        v = d[selection]
        v = v[np.isfinite(v)]
        if v.size:
            q16, q50, q84 = np.percentile(v, [16, 50, 84])
            ax.hist(
                np.clip(v, -20, 20),
                bins=np.linspace(-20, 20, 161),
                histtype="step",
                label=f"median {q50:+.2f} mm, half-width {(q84 - q16) / 2:.2f} mm",
            )
            ax.legend(fontsize="small")
        ax.set_xlabel(f"{axis}_track(ECAL face) - {axis}_shower (mm)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_pileup(pileup: dict[str, Any], path: str | Path) -> None:
    """Efficiency and two-candidate fraction against the pile-up time (tracked pile-up)."""
    plt = pyplot()
    rows = pileup["versus_dt"]
    centre = np.array([(r["dt_lo_ns"] + r["dt_hi_ns"]) / 2 for r in rows])
    eff = np.array([r["efficiency"] if r["efficiency"] is not None else np.nan for r in rows])
    err = np.array([r["error"] if r["error"] is not None else 0.0 for r in rows])
    two = np.array(
        [r["two_candidates"] if r["two_candidates"] is not None else np.nan for r in rows]
    )
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.errorbar(centre, eff, yerr=err, xerr=12.5, fmt="o", label="efficiency (track_ok)")
    ax.plot(centre, two, "s", label=">= 2 track candidates")
    none = pileup["none"]["efficiency"]["efficiency"]
    if none is not None:
        ax.axhline(none, color="k", ls=":", label=f"no pile-up: {none:.3f}")
    ax.set_xlabel("pile-up particle time - trigger (ns)")
    ax.set_ylabel("fraction")
    ax.set_ylim(-0.02, 1.05)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
