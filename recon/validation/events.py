"""SRD electron tag and event classification against simulation truth.

Pure functions (numpy arrays in, JSON-ready figures out) and plots;
:func:`validate_events` assembles the figures of issue 6: SRD electron-tag
efficiency, pi-/K- mis-tag probability and suppression, the classification
table (region x true process), the momentum resolution of electron tracks and
the ECAL energy response. Inputs are the merged event tables of
``na64 classify`` / ``na64 merge`` and the truth tables of the simulation
(files only; ``sim`` is never imported). Units: GeV; efficiencies are
fractions.

Definitions:

* **SRD efficiency**: fraction of beam electrons (truth ``pdg == 11``, A'
  events excluded) with ``srd_tag``, and separately of the A' signal events
  (truth ``process == 5``); both also without a pile-up particle. 100 GeV
  electrons radiate ~155 MeV of synchrotron light, ~40 % of it into the SRD
  (Gninenko, PRD 89 075008 (2014)).
* **mis-tag** of a hadron species (pi-: ``pdg == -211``, K-: ``-321``): the
  fraction of its events with ``srd_tag``; **suppression** = 1 / mis-tag.
  NA64, PRL 118 011802 (2017): the SRD suppressed the pi/e ~ 1e-2 beam
  contamination by a further ~1e3.
* **intervals** (default 68.27 % CL, i.e. "1 sigma") of a binomial fraction
  k/n: Clopper-Pearson (exact, central, coverage >= CL; Clopper & Pearson,
  Biometrika 26 (1934) 404; at k = 0 the interval is [0, u], u a one-sided
  limit at (1 + CL) / 2) and Bayesian (uniform prior, posterior
  Beta(k+1, n-k+1), equal-tailed; at k = 0 the one-sided upper limit at CL;
  Ullrich & Xu, physics/0701199). A mis-tag count of zero gives a lower bound
  on the suppression, never a value.
* **goals** (issue 6): electron efficiency >= 95 %, pion suppression >= 1e3.
  A goal passes when the *conservative* end of the Clopper-Pearson interval
  meets it: the lower edge of the efficiency interval, the lower edge (or
  bound) of the suppression interval.
* **momentum residual** of electrons with ``track_ok`` and no pile-up
  particle: ``p_track - p_true`` (GeV) and ``p_track / p_true - 1``; median
  and 68 % half-width with bootstrap errors (:func:`~recon.validation.tracking.core_width`).
* **ECAL response** ``e_ecal_GeV / e_ecal_true_GeV`` (true: the in-time
  visible energy of the simulation) for events with more than
  ``ecal_response_min_true_GeV`` of true ECAL energy, beam electrons and
  signal events separately: median and 68 % half-width.
* **classification table**: weighted event sums (``weight`` of the events,
  the generator weight) per true process and reconstructed region
  (:class:`recon.classify.Region`), and the fractions per process.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from recon.classify import Region
from recon.srd import N_SRD_MODULES, SrdConfig
from recon.validation.tracking import core_width, join_events

__all__ = [
    "EVENT_COLUMNS",
    "PDG_NAMES",
    "PROCESS_NAMES",
    "TRUTH_COLUMNS",
    "EventAcceptance",
    "binomial_interval",
    "classification_table",
    "ecal_response",
    "electron_momentum",
    "fraction_figure",
    "plot_calorimeter_plane",
    "plot_momentum_residual",
    "plot_region_fractions",
    "plot_srd_spectra",
    "sample_table",
    "suppression_figure",
    "validate_events",
]

PDG_ELECTRON, PDG_PION, PDG_KAON, PDG_MUON = 11, -211, -321, 13
PDG_NAMES = {PDG_ELECTRON: "e-", PDG_PION: "pi-", PDG_KAON: "K-", PDG_MUON: "mu-"}
# the truth column `process` (the simulation's Process enumeration, docs/simulation-physics.md)
PROCESS_NAMES = (
    "em_shower",
    "hadronic",
    "dimuon",
    "upstream_brems",
    "decay_in_flight",
    "aprime",
    "hadron_passing",
    "hadron_charge_ex",
    "muon_passing",
    "no_particle",
    "hadron_shower",
)
PROCESS_APRIME = PROCESS_NAMES.index("aprime")

SRD_COLUMNS = [f"srd{k}_GeV" for k in range(N_SRD_MODULES)]
EVENT_COLUMNS = [
    "run",
    "spill",
    "event",
    "weight",
    "srd_tag",
    "srd_n_modules",
    "srd_GeV",
    *SRD_COLUMNS,
    "region",
    "in_signal_box",
    "e_ecal_GeV",
    "e_hcal_GeV",
    "p_track_GeV",
    "track_ok",
]
TRUTH_COLUMNS = [
    "run",
    "spill",
    "event",
    "pdg",
    "process",
    "p_true_GeV",
    "e_ecal_true_GeV",
    "pileup_pdg",
]


@dataclass(frozen=True)
class EventAcceptance:
    """Issue 6 goals and the settings behind the figures."""

    efficiency_goal: float = 0.95  # SRD tag of beam electrons
    suppression_goal: float = 1e3  # pi- rejection of the SRD tag
    confidence_level: float = 0.6827  # of every interval
    ecal_response_min_true_GeV: float = 10.0
    min_events: int = 10  # below this, no resolution / response is quoted


# ------------------------------------------------------------------ statistics


def binomial_interval(k: int, n: int, cl: float, method: str = "clopper-pearson") -> dict:
    """Interval of a binomial fraction k/n at confidence level ``cl``.

    ``method``: ``"clopper-pearson"`` (exact, central: each tail (1 - cl) / 2,
    coverage >= cl for every true fraction; at k = 0 (k = n) the lower (upper)
    edge is 0 (1), so the other edge is a one-sided limit at (1 + cl) / 2) or
    ``"bayesian"`` (uniform prior, posterior Beta(k+1, n-k+1): equal-tailed
    central interval, and at k = 0 (k = n) the one-sided upper (lower) limit at
    ``cl``). Returns ``{"low", "high", "kind"}`` with kind ``"central"``,
    ``"upper_limit"`` (k = 0) or ``"lower_limit"`` (k = n).
    """
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    tail = (1.0 - cl) / 2.0
    if method == "clopper-pearson":
        low = float(stats.beta(k, n - k + 1).ppf(tail)) if k > 0 else 0.0
        high = float(stats.beta(k + 1, n - k).ppf(1.0 - tail)) if k < n else 1.0
    elif method == "bayesian":
        posterior = stats.beta(k + 1, n - k + 1)
        if k == 0:
            low, high = 0.0, float(posterior.ppf(cl))
        elif k == n:
            low, high = float(posterior.ppf(1.0 - cl)), 1.0
        else:
            low, high = float(posterior.ppf(tail)), float(posterior.ppf(1.0 - tail))
    else:
        raise ValueError(f"unknown interval method {method!r}")
    kind = "upper_limit" if k == 0 else "lower_limit" if k == n else "central"
    return {"low": low, "high": high, "kind": kind}


def fraction_figure(passed: np.ndarray, cl: float, weight: np.ndarray | None = None) -> dict:
    """k/n of a boolean selection with both intervals (counts unweighted; weighted value too)."""
    passed = np.asarray(passed, bool)
    n, k = int(passed.size), int(np.count_nonzero(passed))
    out: dict[str, Any] = {"n": n, "passed": k, "value": None}
    if n == 0:
        return out
    out["value"] = k / n
    if weight is not None:
        w = np.asarray(weight, float)
        out["value_weighted"] = float(w[passed].sum() / w.sum()) if w.sum() > 0 else None
    out["clopper_pearson"] = binomial_interval(k, n, cl, "clopper-pearson")
    out["bayesian"] = binomial_interval(k, n, cl, "bayesian")
    return out


def suppression_figure(tagged: np.ndarray, cl: float) -> dict:
    """Mis-tag fraction of a background species and the suppression 1 / mis-tag with intervals.

    The suppression interval is ``[1 / mis-tag high, 1 / mis-tag low]``; with no
    mis-tag (k = 0) only ``lower_bound`` is given (``value`` and ``high`` are None).
    """
    mistag = fraction_figure(tagged, cl)
    out: dict[str, Any] = {"mistag": mistag, "value": None}
    if mistag["n"] == 0:
        return out
    k, n = mistag["passed"], mistag["n"]
    out["value"] = n / k if k else None
    for method in ("clopper_pearson", "bayesian"):
        interval = mistag[method]
        out[method] = {
            "low": 1.0 / interval["high"],
            "high": 1.0 / interval["low"] if interval["low"] > 0 else None,
            "kind": "lower_bound" if k == 0 else "central",
        }
    out["lower_bound"] = out["clopper_pearson"]["low"]
    return out


# ------------------------------------------------------------------ event table


def sample_table(events, truth) -> dict[str, np.ndarray]:
    """Flat columns of events joined with truth on (run, spill, event).

    ``events`` and ``truth``: awkward arrays or mappings with
    :data:`EVENT_COLUMNS` and :data:`TRUTH_COLUMNS`. Events without truth are
    dropped (the command checks that none are).
    """
    i_e, i_t = join_events(events, truth)
    out = {name: np.asarray(events[name])[i_e] for name in EVENT_COLUMNS}
    out |= {name: np.asarray(truth[name])[i_t] for name in TRUTH_COLUMNS[3:]}
    return out


def classification_table(table: dict[str, np.ndarray]) -> dict[str, Any]:
    """Weighted sums per true process and region, and each process's region fractions."""
    regions = [r.name.lower() for r in Region]
    region = table["region"].astype(np.int64)
    process = table["process"].astype(np.int64)
    weight = table["weight"].astype(np.float64)
    out: dict[str, Any] = {"regions": regions, "by_process": {}}
    for code in np.unique(process):
        sel = process == code
        name = PROCESS_NAMES[code] if 0 <= code < len(PROCESS_NAMES) else f"process_{code}"
        sums = np.bincount(region[sel], weights=weight[sel], minlength=len(regions))
        total = float(sums.sum())
        out["by_process"][name] = {
            "events": int(sel.sum()),
            "weighted": total,
            "weighted_by_region": dict(zip(regions, map(float, sums), strict=True)),
            "fraction_by_region": {
                r: (float(s / total) if total > 0 else None)
                for r, s in zip(regions, sums, strict=True)
            },
            "signal_box_weighted": float(weight[sel & table["in_signal_box"]].sum()),
        }
    return out


def electron_momentum(table: dict[str, np.ndarray], min_events: int) -> dict[str, Any]:
    """p_track - p_true of beam electrons without pile-up and with a good track."""
    sel = (table["pdg"] == PDG_ELECTRON) & (table["pileup_pdg"] == 0) & table["track_ok"]
    if sel.sum() < min_events:
        return {"n": int(sel.sum()), "absolute_GeV": None, "relative": None}
    p_true = table["p_true_GeV"][sel]
    difference = table["p_track_GeV"][sel] - p_true
    return {
        "n": int(sel.sum()),
        "p_true_median_GeV": float(np.median(p_true)),
        "absolute_GeV": core_width(difference),
        "relative": core_width(difference / p_true),
    }


def ecal_response(
    table: dict[str, np.ndarray], selection: np.ndarray, min_true_GeV: float, min_events: int
) -> dict[str, Any]:
    """e_ecal_GeV / e_ecal_true_GeV of the selected events above ``min_true_GeV``."""
    true = table["e_ecal_true_GeV"]
    sel = selection & (true > min_true_GeV) & np.isfinite(table["e_ecal_GeV"])
    if sel.sum() < min_events:
        return {"n": int(sel.sum()), "ratio": None}
    return {"n": int(sel.sum()), "ratio": core_width(table["e_ecal_GeV"][sel] / true[sel])}


# ------------------------------------------------------------------ figures


def _srd_figures(table: dict[str, np.ndarray], a: EventAcceptance) -> dict[str, Any]:
    cl, tag, pdg = a.confidence_level, table["srd_tag"], table["pdg"]
    no_pileup = table["pileup_pdg"] == 0
    signal = table["process"] == PROCESS_APRIME
    electrons = (pdg == PDG_ELECTRON) & ~signal
    hadrons = (pdg == PDG_PION) | (pdg == PDG_KAON)
    pion_suppression = suppression_figure(tag[pdg == PDG_PION], cl)
    mistagged_pions = tag & (pdg == PDG_PION)
    return {
        "electron_efficiency": fraction_figure(tag[electrons], cl, table["weight"][electrons]),
        "electron_efficiency_no_pileup": fraction_figure(tag[electrons & no_pileup], cl),
        "signal_efficiency": fraction_figure(tag[signal], cl, table["weight"][signal]),
        "signal_efficiency_no_pileup": fraction_figure(tag[signal & no_pileup], cl),
        "pion_suppression": pion_suppression,
        "pion_suppression_no_pileup": suppression_figure(tag[(pdg == PDG_PION) & no_pileup], cl),
        "kaon_suppression": suppression_figure(tag[pdg == PDG_KAON], cl),
        "hadron_suppression": suppression_figure(tag[hadrons], cl),
        "muon_suppression": suppression_figure(tag[pdg == PDG_MUON], cl),
        "mistagged_pions_with_electron_pileup": int(
            np.count_nonzero(mistagged_pions & (np.abs(table["pileup_pdg"]) == PDG_ELECTRON))
        ),
    }


def _passes(srd: dict[str, Any], a: EventAcceptance) -> dict[str, bool]:
    eff = srd["electron_efficiency"]
    supp = srd["pion_suppression"]
    return {
        "electron_efficiency": eff["value"] is not None
        and eff["clopper_pearson"]["low"] >= a.efficiency_goal,
        "pion_suppression": supp["mistag"]["n"] > 0 and supp["lower_bound"] >= a.suppression_goal,
    }


def validate_events(
    table: dict[str, np.ndarray], acceptance: EventAcceptance = EventAcceptance()
) -> dict[str, Any]:
    """All figures of issue 6 that need truth, from one joined event table (JSON-ready)."""
    a = acceptance
    pdg = table["pdg"]
    srd = _srd_figures(table, a)
    passes = _passes(srd, a)
    signal = table["process"] == PROCESS_APRIME
    electrons = (pdg == PDG_ELECTRON) & ~signal
    return {
        "acceptance": asdict(a),
        "events": int(pdg.size),
        "events_by_species": {
            PDG_NAMES.get(int(p), str(int(p))): int(np.count_nonzero(pdg == p))
            for p in np.unique(pdg)
        },
        "srd": srd,
        "classification": classification_table(table),
        "electron_momentum": electron_momentum(table, a.min_events),
        "ecal_response": {
            "electrons": ecal_response(
                table, electrons, a.ecal_response_min_true_GeV, a.min_events
            ),
            "signal": ecal_response(table, signal, a.ecal_response_min_true_GeV, a.min_events),
        },
        "pass_by_goal": passes,
        "pass": bool(all(passes.values())),
    }


# ------------------------------------------------------------------ plots


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_srd_spectra(table: dict[str, np.ndarray], srd: SrdConfig, path: str | Path) -> None:
    """Per-module SRD energy of beam electrons and pions (log scale), with the tag window."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, N_SRD_MODULES, figsize=(13, 4), sharey=True)
    bins = np.geomspace(1e-4, 1.0, 81)
    species = ((PDG_ELECTRON, "e-", "C0"), (PDG_PION, "pi-", "C3"), (PDG_KAON, "K-", "C2"))
    for k, ax in enumerate(axes):
        energy = table[f"srd{k}_GeV"]
        for pdg, label, colour in species:
            e = energy[(table["pdg"] == pdg) & np.isfinite(energy)]
            if e.size:
                zero = np.count_nonzero(e < bins[0])
                ax.hist(np.clip(e, bins[0], bins[-1]), bins=bins, histtype="step", color=colour,
                        label=f"{label} ({e.size}; {zero} below {bins[0]:g})")  # fmt: skip
        for edge in (srd.module_min_GeV, srd.module_max_GeV):
            ax.axvline(edge, color="k", ls=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"SRD module {k} energy (GeV; underflow in the first bin)")
        ax.legend(fontsize="x-small")
    axes[0].set_ylabel("events")
    fig.suptitle(f"SRD tag window (dotted), >= {srd.min_modules} of {N_SRD_MODULES} modules")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_calorimeter_plane(table: dict[str, np.ndarray], path: str | Path) -> None:
    """(E_ECAL, E_HCAL) of every event, coloured by reconstructed region."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 6))
    for region, colour in zip(Region, ("0.6", "C1", "C0", "C3"), strict=True):
        sel = table["region"] == region
        if sel.any():
            label = f"{region.name.lower()} ({int(sel.sum())})"
            ax.scatter(table["e_ecal_GeV"][sel], table["e_hcal_GeV"][sel], s=2, color=colour,
                       label=label, rasterized=True)  # fmt: skip
    ax.set_xlabel("E_ECAL (GeV)")
    ax.set_ylabel("E_HCAL, first two modules (GeV)")
    ax.legend(fontsize="small", markerscale=4)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_region_fractions(classification: dict[str, Any], path: str | Path) -> None:
    """Stacked weighted fractions of the reconstructed regions for each true process."""
    plt = _pyplot()
    processes = list(classification["by_process"])
    regions = classification["regions"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    bottom = np.zeros(len(processes))
    for region, colour in zip(regions, ("0.6", "C1", "C0", "C3"), strict=True):
        fractions = np.array(
            [classification["by_process"][p]["fraction_by_region"][region] or 0.0
             for p in processes]
        )  # fmt: skip
        ax.bar(processes, fractions, bottom=bottom, color=colour, label=region)
        bottom += fractions
    labels = [f"{p}\n({classification['by_process'][p]['events']})" for p in processes]
    ax.set_xticks(range(len(processes)), labels, rotation=30, ha="right", fontsize="small")
    ax.set_ylabel("weighted fraction")
    ax.legend(fontsize="small", ncols=len(regions))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_momentum_residual(table: dict[str, np.ndarray], path: str | Path) -> None:
    """p_track - p_true (GeV) of beam electrons with a good track and no pile-up."""
    plt = _pyplot()
    sel = (table["pdg"] == PDG_ELECTRON) & (table["pileup_pdg"] == 0) & table["track_ok"]
    d = (table["p_track_GeV"] - table["p_true_GeV"])[sel]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if d.size:
        q16, q50, q84 = np.percentile(d, [16, 50, 84])
        bins = np.linspace(-5, 3, 161)
        ax.hist(np.clip(d, bins[0], bins[-1]), bins=bins, histtype="step",
                label=f"{d.size} e-: median {q50:+.3f} GeV, "
                      f"68 % half-width {(q84 - q16) / 2:.3f} GeV")  # fmt: skip
        ax.set_yscale("log")
        ax.legend(fontsize="small")
    ax.set_xlabel("p_track - p_true (GeV; overflow in the edge bins)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
