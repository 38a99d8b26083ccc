"""Calorimetry validation against simulation truth: conditions, closure, linearity, resolution.

Pure functions (arrays in, figures out) and plots; :func:`validate_calorimetry`
assembles the figures of issue 4's acceptance into one JSON-ready dict. Truth
is read from the simulation's files only: the true-constants JSON (layout
documented with the simulation: per SADC group and channel ``gain_adc_per_GeV``,
``pedestal_even_adc``/``pedestal_odd_adc``, ``noise_adc``, ``rise_ns``,
``decay_ns``, ``time_offset_ns``) and the truth tables (per-cell visible
energies ``ecal_true_GeV`` (n, 2, n_x, n_y), ``hcal_true_GeV``, totals, beam
momentum, A' energy, pile-up). The ``sim`` package is never imported.

Figures (units: ADC counts, GeV):

* **Pedestals**: derived minus true even/odd pedestal of every channel (goal
  0.5 count), derived over true noise.
* **Gains**: what a calibration must recover is the *effective* gain, the
  template-fit amplitude per GeV, ``g_eff = g_true * k``, where ``k`` is the
  mean ratio of the fitted amplitude to the true pulse height for that
  channel's true pulse shape and timing (the fit uses one template per group;
  the simulated channels differ by 5 % in rise and decay times, so the true
  height is not what the reconstruction measures). Two measures of
  "constants recovered", which agree when the pulse model is right:

  1. *closure* per cell: median over calibration events of ``E_reco / E_true``
     for the cell (cells with ``E_true`` above a threshold, unflagged pulses).
     This is the definition that matters downstream (energy per true GeV),
     and needs no model of the pulse;
  2. *effective-gain ratio* ``g_derived * g_true * k`` with ``k`` from
     noise-free pulses of the true shape fitted by the reconstruction
     (:func:`amplitude_factor`): separates calibration errors from the pulse
     template's amplitude definition. The plain ratio ``g_derived * g_true``
     is reported too; it differs by ``k`` (a few % per channel).
* **Linearity**: median ``E_reco / E_true`` of the ECAL total in bins of
  ``E_true`` (electron showers without pile-up).
* **Resolution**: ``sigma(E_reco / E_inc)`` (half the 16-84 % interval over
  the median) in bins of the incident electron energy
  ``E_inc = p_true - E_A'`` (showers centred on the central 2x2 cells, no
  upstream bremsstrahlung), fitted with ``sigma/E = a / sqrt(E) (+) b``
  (quadratic sum), against the goal ``10 % / sqrt(E) (+) 1 %``. Also the
  truth-level width ``sigma(E_true / E_inc)`` (the simulated detector) and the
  reconstruction's own term ``sigma(E_reco / E_true)`` per bin.
* **Energy scan** (:func:`energy_scan_figures`, when a calibration run of
  electrons at several beam energies aimed at one cell is given): the same
  resolution, truth-level width, reconstruction term and linearity per beam
  energy (a few thousand electrons each: ~2 % statistical error on each width
  instead of 5-12 % per bin of the physics and signal showers), the fit
  ``a / sqrt(E) (+) b`` and its consistency with the goal. With it, the
  resolution and linearity acceptance is the scan's; the shower-sample figures
  stay as a cross-check (their per-bin flag is kept as ``per_bin_pass``).
* **HCAL MIP peak** per module from a muon run: most probable value of the
  reconstructed module energy (maximum-likelihood Moyal fit, as in the
  calibration), goal 2.5 GeV within 5 %.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from recon.calo.peak_fit import fit_mip_peak
from recon.calo.sadc_channels import SadcLayout
from recon.calo.waveform import PulseShapes, SadcTiming, WaveformConfig, reconstruct_waveforms
from recon.conditions.channel_map import ChannelMap

__all__ = [
    "CaloAcceptance",
    "TrueSadcConstants",
    "amplitude_factor",
    "cell_closure",
    "dense_cells",
    "energy_response",
    "energy_scan_figures",
    "fit_resolution",
    "gain_figures",
    "join_truth",
    "mip_peak_figures",
    "pedestal_figures",
    "plot_closure",
    "plot_linearity_resolution",
    "plot_mip_peaks",
    "plot_pedestals",
    "read_true_sadc_constants",
    "true_pulse",
    "validate_calorimetry",
]

_SATURATED, _PILEUP = 1, 2
PDG_ELECTRON, PDG_MUON = 11, 13


@dataclass(frozen=True)
class CaloAcceptance:
    """Issue 4 goals (relative unless stated)."""

    gain_tolerance: float = 0.01
    pedestal_tolerance_adc: float = 0.5
    linearity_tolerance: float = 0.01
    stochastic_goal: float = 0.10
    constant_goal: float = 0.01
    resolution_tolerance: float = 0.15   # measured / goal - 1 per bin, 10-100 GeV
    mip_GeV: float = 2.5
    mip_tolerance: float = 0.05
    closure_min_true_GeV: tuple[float, ...] = (0.5, 5.0)   # per ECAL section (pre, main)
    energy_range_GeV: tuple[float, float] = (10.0, 100.0)


@dataclass(frozen=True)
class TrueSadcConstants:
    """True constants of one SADC group, dense in the condition layout (see ``sadc_channels``)."""

    gain_adc_per_GeV: np.ndarray
    pedestal_adc: np.ndarray    # (n, 2) even, odd
    noise_adc: np.ndarray
    rise_ns: np.ndarray
    decay_ns: np.ndarray
    time_offset_ns: np.ndarray


def read_true_sadc_constants(path: str | Path, channel_map: ChannelMap,
                             layout: SadcLayout) -> dict[str, TrueSadcConstants]:
    """The simulation's true SADC constants per group, reordered into the condition layout.

    The JSON lists channels in readout order per source; the channel map
    gives each channel's fields (e.g. section, ix, iy), hence its dense index.
    """
    doc = json.loads(Path(path).read_text())
    if doc.get("format") != "na64-sim-true-constants":
        raise ValueError(f"{path}: not a simulation true-constants file")
    out = {}
    for name, group in doc["sadc"].items():
        shape = layout.shape(name)
        table = channel_map.sadc_fields[int(group["source"])]
        channel = np.asarray(group["channel"], dtype=np.int64)
        fields = table[channel, : len(shape)].astype(np.int64)
        index = np.ravel_multi_index(tuple(fields.T), shape)
        n = int(np.prod(shape))

        def dense(key, index=index, group=group, n=n):
            values = np.full(n, np.nan)
            values[index] = np.asarray(group[key], dtype=np.float64)
            return values

        out[name] = TrueSadcConstants(
            gain_adc_per_GeV=dense("gain_adc_per_GeV"),
            pedestal_adc=np.stack([dense("pedestal_even_adc"), dense("pedestal_odd_adc")], axis=1),
            noise_adc=dense("noise_adc"), rise_ns=dense("rise_ns"), decay_ns=dense("decay_ns"),
            time_offset_ns=dense("time_offset_ns"))
    return out


def pedestal_figures(derived_adc: np.ndarray, derived_noise_adc: np.ndarray,
                     true: TrueSadcConstants, tolerance_adc: float = 0.5) -> dict[str, Any]:
    """Derived vs true pedestals (n, 2) and noise of one group (ADC counts)."""
    diff = derived_adc - true.pedestal_adc
    noise = derived_noise_adc.mean(axis=1) / true.noise_adc
    worst = int(np.nanargmax(np.abs(diff).max(axis=1)))
    return {
        "n_channels": int(diff.shape[0]),
        "max_abs_diff_adc": float(np.nanmax(np.abs(diff))),
        "rms_diff_adc": float(np.sqrt(np.nanmean(diff**2))),
        "mean_diff_adc": float(np.nanmean(diff)),
        "worst_channel": worst,
        "noise_ratio_mean": float(np.nanmean(noise)),
        "noise_ratio_rms": float(np.nanstd(noise)),
        "pass": bool(np.nanmax(np.abs(diff)) < tolerance_adc),
    }


def true_pulse(tau_ns: np.ndarray, rise_ns: np.ndarray, decay_ns: np.ndarray) -> np.ndarray:
    """The simulation's pulse ``N [exp(-t/decay) - exp(-t/rise)]`` (peak 1), ``tau`` from peak.

    The form is part of the true-constants contract (rise and decay constants
    per channel, docs/simulation-digitization.md), not taken from ``sim``.
    """
    t_peak = rise_ns * decay_ns / (decay_ns - rise_ns) * np.log(decay_ns / rise_ns)
    norm = 1.0 / (np.exp(-t_peak / decay_ns) - np.exp(-t_peak / rise_ns))
    t = np.clip(tau_ns + t_peak, 0.0, None)
    return norm * (np.exp(-t / decay_ns) - np.exp(-t / rise_ns))


def amplitude_factor(true: TrueSadcConstants, shapes: PulseShapes, template_row: int | np.ndarray,
                     timing: SadcTiming, *, jitter_ns: float = 2.0, t0_ns: np.ndarray | None = None,
                     amplitude_adc: float = 2000.0, n_pulses: int = 200, seed: int = 1,
                     config: WaveformConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and r.m.s. of fitted amplitude / true pulse height per channel, noise free.

    Pulses of each channel's true shape peak at the in-time sample plus the
    channel's true time offset plus a Gaussian jitter of ``jitter_ns`` (the
    event-to-event trigger jitter measured in the truth); they are fitted by
    :func:`reconstruct_waveforms` with the derived template ``template_row`` (one row
    for all, or the row of each channel: per-channel templates).
    ``g_true * factor`` is the effective gain (fitted ADC per GeV).
    """
    rng = np.random.default_rng(seed)
    n = true.rise_ns.size
    offset = np.nan_to_num(true.time_offset_ns) if t0_ns is None else t0_ns
    t_peak = (timing.nominal_peak_ns + offset[:, None]
              + jitter_ns * rng.standard_normal((n, n_pulses)))
    k = np.arange(timing.n_samples) * timing.sample_period_ns
    tau = k[None, None, :] - t_peak[:, :, None]
    wave = amplitude_adc * true_pulse(tau, true.rise_ns[:, None, None],
                                      true.decay_ns[:, None, None])
    pedestal = 200.0
    samples = np.clip(np.rint(wave + pedestal), 0, timing.adc_max).astype(np.uint16)
    samples = samples.reshape(n * n_pulses, timing.n_samples)
    m = n * n_pulses
    rows = np.repeat(np.broadcast_to(np.asarray(template_row, dtype=np.int64), (n,)), n_pulses)
    fit = reconstruct_waveforms(samples, rows, np.full((m, 2), pedestal),
                                np.ones(m), shapes, timing, config or WaveformConfig())
    ratio = (fit.amplitude_adc / amplitude_adc).reshape(n, n_pulses)
    return ratio.mean(axis=1), ratio.std(axis=1)


def gain_figures(derived_GeV_per_adc: np.ndarray, true: TrueSadcConstants,
                 factor: np.ndarray | None = None, mask: np.ndarray | None = None,
                 tolerance: float = 0.01) -> dict[str, Any]:
    """Derived gains vs the true ones: plain ratio and, with ``factor``, effective-gain ratio."""
    mask = np.ones(derived_GeV_per_adc.size, bool) if mask is None else mask
    plain = (derived_GeV_per_adc.reshape(-1) * true.gain_adc_per_GeV)[mask]
    out = {"plain_ratio": _spread(plain)}
    if factor is not None:
        effective = plain * factor[mask]
        out["effective_ratio"] = _spread(effective)
        out["effective_ratio"]["pass"] = bool(np.abs(effective - 1).max() < tolerance)
    return out


def _spread(ratio: np.ndarray) -> dict[str, Any]:
    ratio = ratio[np.isfinite(ratio)]
    if not ratio.size:
        return {"n": 0}
    return {"n": int(ratio.size), "mean": float(ratio.mean()), "rms": float(ratio.std()),
            "max_abs_deviation": float(np.abs(ratio - 1).max()),
            "max_abs_deviation_from_mean": float(np.abs(ratio - ratio.mean()).max())}


def join_truth(calo: ak.Array, truth: ak.Array) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (into ``calo``, ``truth``) of the events in both, by (run, spill, event)."""
    def keys(a):
        return (np.asarray(a.run, np.uint64) << np.uint64(44)) | (
            np.asarray(a.spill, np.uint64) << np.uint64(24)) | np.asarray(a.event, np.uint64)

    _, i_calo, i_truth = np.intersect1d(keys(calo), keys(truth), return_indices=True)
    return i_calo, i_truth


def dense_cells(calo: ak.Array, group: str, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-event cell energies (n, n_cells) GeV and flags of the jagged ``<group>_cells``."""
    cells = calo[f"{group}_cells"]
    counts = np.asarray(ak.num(cells, axis=1))
    rows = np.repeat(np.arange(len(calo)), counts)
    index = np.asarray(ak.flatten(cells.index), dtype=np.int64)
    energy = np.zeros((len(calo), n_cells))
    flags = np.zeros((len(calo), n_cells), np.uint8)
    energy[rows, index] = np.asarray(ak.flatten(cells.e_GeV))
    flags[rows, index] = np.asarray(ak.flatten(cells.flags))
    return energy, flags


def cell_closure(e_reco: np.ndarray, flags: np.ndarray, e_true: np.ndarray, min_true_GeV: float,
                 min_events: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Per cell: median of ``E_reco / E_true`` over events with ``E_true > min_true_GeV`` and a
    clean pulse (neither saturated nor piled up), and the number of such events (NaN below
    ``min_events``)."""
    use = (e_true > min_true_GeV) & ((flags & (_SATURATED | _PILEUP)) == 0)
    ratio = np.where(use, e_reco / np.where(use, e_true, 1.0), np.nan)
    n = use.sum(axis=0)
    median = np.full(ratio.shape[1], np.nan)
    enough = n >= min_events
    median[enough] = np.nanmedian(ratio[:, enough], axis=0)
    return median, n


def scan_statistical_error(e_true: np.ndarray, n_section: int) -> np.ndarray:
    """Expected relative error of a per-cell *mean* of the preshower share in the scan.

    Per preshower cell ``c``: over the scan events aimed at ``c`` (largest true
    main-section deposit in ``c``), ``std(f) / mean(f) / sqrt(n)`` with ``f`` the
    true preshower energy of ``c`` over the event's total true energy (the
    longitudinal fluctuation the derivation, a mean of the cell's amplitudes,
    cannot average away with ``n`` events). NaN below 20 events. ``e_true``:
    (n, 2 * n_section) GeV.
    """
    target = np.argmax(e_true[:, n_section:], axis=1)
    total = e_true.sum(axis=1)
    out = np.full(n_section, np.nan)
    for c in range(n_section):  # 36 cells
        mine = (target == c) & (total > 0)
        if mine.sum() < 20:
            continue
        f = e_true[mine, c] / total[mine]
        out[c] = float(f.std() / f.mean() / np.sqrt(mine.sum()))
    return out


# Standard error of the half 16-84 % width of n Gaussian values, in units of sigma/sqrt(n):
# var(q_p) = p(1-p)/(n f^2), cov(q_p1, q_p2) = p1(1-p2)/(n f1 f2) (asymptotic quantile
# variances; e.g. Stuart & Ord, Kendall's Advanced Theory of Statistics, Vol. 1, 10.10), with
# p = 0.8413 and f = phi(1): sqrt((2 * 0.13345 - 2 * 0.02518) / (4 * 0.05855)) = 0.9616
# (1.36 times the sigma/sqrt(2n) of a standard deviation; checked by toy Monte Carlo:
# 0.94-0.95 for n = 200-1000).
_HALF_WIDTH_ERROR = 0.9616


def _robust_width(x: np.ndarray) -> tuple[float, float]:
    q16, q50, q84 = np.percentile(x, [16, 50, 84])
    return float(q50), float(0.5 * (q84 - q16))


def energy_response(e_reco: np.ndarray, e_true: np.ndarray, e_ref: np.ndarray,
                    edges: np.ndarray, min_events: int = 20) -> dict[str, np.ndarray]:
    """Per bin of ``e_ref``: median and relative width of ``e_reco / e_ref`` and of
    ``e_true / e_ref``, median and width of ``e_reco / e_true`` (reconstruction term), counts."""
    nb_ = edges.size - 1
    out = {k: np.full(nb_, np.nan) for k in (
        "energy", "response", "response_error", "resolution", "resolution_error",
        "true_resolution", "reco_over_true", "reco_over_true_error", "reco_term")}
    out["n"] = np.zeros(nb_, np.int64)
    for b in range(nb_):  # a dozen bins
        m = (e_ref >= edges[b]) & (e_ref < edges[b + 1])
        n = int(m.sum())
        out["n"][b] = n
        if n < min_events:
            continue
        r, sigma = _robust_width(e_reco[m] / e_ref[m])
        t, sigma_t = _robust_width(e_true[m] / e_ref[m])
        c, sigma_c = _robust_width(e_reco[m] / e_true[m])
        out["energy"][b] = float(np.median(e_ref[m]))
        out["response"][b], out["response_error"][b] = r, 1.25 * sigma / np.sqrt(n)
        out["resolution"][b] = sigma / r
        out["resolution_error"][b] = _HALF_WIDTH_ERROR * sigma / r / np.sqrt(n)
        out["true_resolution"][b] = sigma_t / t
        out["reco_over_true"][b], out["reco_over_true_error"][b] = c, 1.25 * sigma_c / np.sqrt(n)
        out["reco_term"][b] = sigma_c / c
    return out


def fit_resolution(energy: np.ndarray, sigma_rel: np.ndarray,
                   error: np.ndarray) -> tuple[float, float, float, float]:
    """``sigma/E = a / sqrt(E) (+) b``: weighted linear fit of ``(sigma/E)^2 = a^2/E + b^2``.

    Returns ``a, b`` (negative squares clipped to 0) and their errors.
    """
    ok = np.isfinite(energy) & np.isfinite(sigma_rel) & np.isfinite(error)
    y = sigma_rel[ok] ** 2
    w = 1.0 / (2.0 * sigma_rel[ok] * error[ok]) ** 2
    design = np.column_stack([1.0 / energy[ok], np.ones(ok.sum())])
    cov = np.linalg.inv(design.T @ (design * w[:, None]))
    a2, b2 = cov @ (design.T @ (w * y))
    a, b = np.sqrt(max(a2, 0.0)), np.sqrt(max(b2, 0.0))
    return (float(a), float(b), float(np.sqrt(cov[0, 0]) / (2 * max(a, 1e-9))),
            float(np.sqrt(cov[1, 1]) / (2 * max(b, 1e-9))))


def mip_peak_figures(e_module_GeV: np.ndarray, true_module_GeV: np.ndarray, mip_GeV: float = 2.5,
                     tolerance: float = 0.05, min_GeV: float = 0.5) -> dict[str, Any]:
    """Per HCAL module: MPV of the reconstructed and of the true muon deposits (Moyal fit)."""
    modules = []
    for k in range(e_module_GeV.shape[1]):  # 4 modules
        reco = fit_mip_peak(e_module_GeV[:, k][e_module_GeV[:, k] > min_GeV])
        true = fit_mip_peak(true_module_GeV[:, k][true_module_GeV[:, k] > min_GeV])
        modules.append({"module": k, "n": reco.n, "mpv_GeV": reco.mu,
                        "mpv_error_GeV": reco.mu_error, "true_mpv_GeV": true.mu,
                        "deviation": reco.mu / mip_GeV - 1.0})
    worst = max(abs(m["deviation"]) for m in modules)
    return {"modules": modules, "max_abs_deviation": float(worst),
            "pass": bool(worst < tolerance)}


@dataclass
class EventSample:
    """Joined reconstructed and true quantities of one run's events."""

    name: str
    calo: ak.Array
    truth: ak.Array


def _electron_showers(sample: EventSample, central_cells=(2, 3)) -> dict[str, np.ndarray]:
    """Clean electron showers: in-time only (no pile-up energy), no HCAL energy; ``central``:
    the most energetic tower is one of the ``central_cells`` in x and y (no lateral leakage
    fluctuation from the matrix edge)."""
    t, c = sample.truth, sample.calo
    keep = ((np.asarray(t.pdg) == PDG_ELECTRON) & (np.asarray(t.e_ecal_pileup_true_GeV) == 0)
            & (np.asarray(t.e_hcal_true_GeV) < 0.5) & ~np.asarray(c.ecal_pileup))
    central = np.isin(np.asarray(c.ecal_max_ix), central_cells) & np.isin(
        np.asarray(c.ecal_max_iy), central_cells)
    shower = (np.asarray(c.e_ecal_shower_GeV, np.float64) if "e_ecal_shower_GeV" in c.fields
              else np.full(len(c), np.nan))
    return {"central": central[keep], "e_reco": np.asarray(c.e_ecal_GeV, np.float64)[keep],
            "e_shower": shower[keep],
            "e_true": np.asarray(t.e_ecal_true_GeV, np.float64)[keep],
            "e_inc": (np.asarray(t.p_true_GeV) - np.asarray(t.e_aprime_GeV))[keep],
            "upstream_clean": (np.asarray(t.process) != 3)[keep],
            # energy-scan points: (run, segment) of the simulated calibration runs
            "point": ((np.asarray(t.run, np.int64) << 16 | np.asarray(t.segment, np.int64))[keep]
                      if "segment" in t.fields else np.zeros(int(keep.sum()), np.int64))}


def _point_edges(energy: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Bin edges separating the beam energies of a scan: geometric means of neighbouring
    points' median energies (points closer than 20 % in energy are one bin)."""
    centres = np.unique(np.round(np.array([np.median(energy[point == p])
                                           for p in np.unique(point)]), 6))
    merged = [centres[0]]
    for e in centres[1:]:
        if e > 1.2 * merged[-1]:
            merged.append(e)
    middle = np.sqrt(np.array(merged[1:]) * np.array(merged[:-1]))
    return np.concatenate([[0.0], middle, [np.inf]])


def energy_scan_figures(samples: list[EventSample],
                        acceptance: CaloAcceptance = CaloAcceptance()) -> tuple[dict, dict]:
    """Resolution and linearity per beam energy of an ECAL energy scan (GeV).

    ``samples``: runs of electrons at a few beam energies aimed at one cell (simulated
    calibration runs with one segment per energy; the points are the (run, segment)
    pairs). Electrons without pile-up, HCAL energy or upstream bremsstrahlung, the most
    energetic tower among the central cells (as the shower-sample resolution). Per
    point (bins between the points' median incident energies): ``sigma(E_reco/E_inc)``
    (half the 16-84 % width over the median) with its statistical error, the truth-level
    width, the reconstruction term and the linearity ``median(E_reco/E_true)``; the fit
    ``a / sqrt(E) (+) b``; the pass flags: every point's width within the per-bin
    tolerance of the goal and every point's linearity within its tolerance. The energy
    is ``e_ecal_shower_GeV`` where the calo files have it, else ``e_ecal_GeV``.
    Returns the figures and the arrays of the plot.
    """
    parts = [_electron_showers(s) for s in samples]
    merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    use_shower = bool(np.isfinite(merged["e_shower"]).all())
    ok = merged["upstream_clean"] & merged["central"]
    edges = _point_edges(merged["e_inc"][ok], merged["point"][ok])
    if edges.size < 3:
        raise ValueError("the energy scan has a single beam energy: a scan needs several "
                         "(na64 simulate --kind calibration --beam-energy-gev E1 E2 ...)")
    out: dict[str, Any] = {"estimator": "e_ecal_shower_GeV" if use_shower else "e_ecal_GeV",
                           "n_points": int(edges.size - 1)}
    arrays = {}
    for name, e_reco in (("", merged["e_shower"] if use_shower else merged["e_reco"]),
                         ("all_cells", merged["e_reco"] if use_shower else None)):
        if e_reco is None:
            continue
        response = energy_response(e_reco[ok], merged["e_true"][ok], merged["e_inc"][ok], edges)
        fig, fit = _resolution_figure(response, acceptance)
        linearity = np.abs(response["reco_over_true"] - 1.0)
        fig |= {"reco_over_true": response["reco_over_true"].tolist(),
                "reco_over_true_error": response["reco_over_true_error"].tolist(),
                "linearity_max_abs_deviation": float(np.nanmax(linearity))}
        if name:
            out[name] = fig
            continue
        fig["resolution_pass"] = fig["max_abs_relative_deviation"] < acceptance.resolution_tolerance
        fig["linearity_pass"] = bool(np.nanmax(linearity) < acceptance.linearity_tolerance)
        fig["pass"] = fig["resolution_pass"] and fig["linearity_pass"]
        out |= fig
        arrays = {"response": response, "fit": fit[:2]}
    return out, arrays


def validate_calorimetry(*, true: dict[str, TrueSadcConstants], pedestals, ecal_gain: np.ndarray,
                         hcal_gain: np.ndarray, shapes: PulseShapes,
                         template_rows: dict[str, int | np.ndarray],
                         timing: SadcTiming, scan: EventSample, muons: EventSample | None,
                         showers: list[EventSample], ecal_shape: tuple[int, int, int],
                         acceptance: CaloAcceptance = CaloAcceptance(),
                         energy_scan: list[EventSample] | None = None) -> dict[str, Any]:
    """Every figure of the calorimetry acceptance (JSON-ready) plus arrays for the plots.

    ``pedestals``: the derived ``SadcPedestals``; ``ecal_gain``/``hcal_gain``
    derived GeV per ADC count in the condition layout; ``scan``: the ECAL cell
    scan; ``muons``: a muon run; ``showers``: runs with electron showers
    (scan, signal, physics) for linearity and resolution; ``energy_scan``: runs of
    electrons at several beam energies (:func:`energy_scan_figures`), which then decide
    the resolution and linearity acceptance.
    """
    figures: dict[str, Any] = {"acceptance": asdict(acceptance)}
    arrays: dict[str, Any] = {}
    figures["pedestals"] = {
        g: pedestal_figures(pedestals.groups[g].pedestal_adc, pedestals.groups[g].noise_adc,
                            true[g], acceptance.pedestal_tolerance_adc) for g in true}
    arrays["pedestal_diff"] = {g: pedestals.groups[g].pedestal_adc - true[g].pedestal_adc
                               for g in true}
    # per-cell closure on the scan and the effective-gain ratio
    n_cells = int(np.prod(ecal_shape))
    e_reco, flags = dense_cells(scan.calo, "ecal", n_cells)
    e_true = np.asarray(scan.truth.ecal_true_GeV, np.float64).reshape(len(scan.truth), n_cells)
    clean = np.asarray(scan.truth.e_ecal_pileup_true_GeV) == 0
    n_section = n_cells // ecal_shape[0]
    t_event = np.asarray(scan.truth.t_event_jitter_ns)
    factor, factor_rms = amplitude_factor(true["ecal"], shapes, template_rows["ecal"], timing,
                                          jitter_ns=float(np.std(t_event)))
    closure_all = np.full(n_cells, np.nan)
    gains = {}
    for s, name in enumerate(("preshower", "main")[: ecal_shape[0]]):
        cells = slice(s * n_section, (s + 1) * n_section)
        ratio, n = cell_closure(e_reco[clean, cells], flags[clean, cells], e_true[clean, cells],
                                acceptance.closure_min_true_GeV[s])
        closure_all[cells] = ratio
        hit = np.isfinite(ratio)
        fig = _spread(ratio[hit])
        fig["n_cells_hit"] = int(hit.sum())
        fig["events_per_cell_min"] = int(n[hit].min()) if hit.any() else 0
        fig["pass"] = bool(hit.any() and np.abs(ratio[hit] - 1).max() < acceptance.gain_tolerance)
        mask = np.zeros(n_cells, bool)
        mask[cells] = hit
        gains[name] = {"closure": fig, **gain_figures(ecal_gain, true["ecal"], factor, mask,
                                                      acceptance.gain_tolerance)}
        gains[name]["amplitude_factor_mean"] = float(np.nanmean(factor[cells]))
        gains[name]["amplitude_factor_phase_rms"] = float(np.nanmean(factor_rms[cells]))
    if ecal_shape[0] == 2:
        # preshower: the derivation's statistical limit per cell, and the pulls
        expected = scan_statistical_error(e_true[clean], n_section)
        pre = closure_all[:n_section]
        pull = (pre - np.nanmean(pre)) / expected
        gains["preshower"]["statistics"] = {
            "expected_error_per_cell_median": float(np.nanmedian(expected)),
            "pull_rms": float(np.sqrt(np.nanmean(pull ** 2))),
            "mean_error": float(np.nanstd(pre) / np.sqrt(np.isfinite(pre).sum()))}
        # tower (preshower + main of one cell): what a preshower error does to cell energies
        tower, _ = cell_closure(e_reco[clean, :n_section] + e_reco[clean, n_section:],
                                flags[clean, :n_section] | flags[clean, n_section:],
                                e_true[clean, :n_section] + e_true[clean, n_section:],
                                acceptance.closure_min_true_GeV[1])
        gains["tower"] = {"closure": _spread(tower)}
    figures["ecal_gains"] = gains
    arrays["closure"] = closure_all.reshape(ecal_shape)
    # linearity and resolution from electron showers
    parts = [_electron_showers(s) for s in showers]
    merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    use_shower = bool(np.isfinite(merged["e_shower"]).all())
    estimator = "e_ecal_shower_GeV" if use_shower else "e_ecal_GeV"
    linearity_fig, resolution_fig, linearity, resolution, (a, b) = _energy_figures(
        merged, merged["e_shower"] if use_shower else merged["e_reco"], acceptance)
    figures["ecal_linearity"] = linearity_fig | {"estimator": estimator}
    figures["ecal_resolution"] = resolution_fig | {"estimator": estimator}
    if use_shower:  # the all-cell sum for comparison (electronics noise of every cell)
        lin_all, res_all, *_ = _energy_figures(merged, merged["e_reco"], acceptance)
        figures["ecal_all_cells"] = {
            "estimator": "e_ecal_GeV", "linearity_max_abs_deviation": lin_all["max_abs_deviation"],
            **{k: res_all[k] for k in ("fit", "max_relative_excess", "consistency",
                                       "sigma_over_E", "reco_term")}}
    arrays["linearity"], arrays["resolution"] = linearity, resolution
    arrays["resolution_fit"] = (a, b)
    if energy_scan:
        # the dedicated measurement decides: the shower samples' bins hold a few hundred
        # electrons (5-12 % statistical error per width); their figures stay a cross-check
        figures["ecal_energy_scan"], arrays["energy_scan"] = energy_scan_figures(energy_scan,
                                                                                 acceptance)
        for key in ("ecal_linearity", "ecal_resolution"):
            figures[key]["per_bin_pass"] = figures[key].pop("pass")
            figures[key]["acceptance_from"] = "ecal_energy_scan"
    if muons is not None:
        mu = np.asarray(muons.truth.pdg) == PDG_MUON
        e_mod = np.asarray(muons.calo.e_hcal_module_GeV, np.float64)[mu]
        true_mod = np.asarray(muons.truth.hcal_true_GeV, np.float64)[mu]
        true_mod = true_mod.reshape(true_mod.shape[0], true_mod.shape[1], -1).sum(axis=2)
        figures["hcal_mip"] = mip_peak_figures(e_mod, true_mod, acceptance.mip_GeV,
                                               acceptance.mip_tolerance)
        arrays["mip"] = (e_mod, figures["hcal_mip"])
    figures["pass"] = bool(all(_passes(v) for v in figures.values() if isinstance(v, dict)))
    return {"figures": figures, "arrays": arrays}


def _energy_figures(merged: dict[str, np.ndarray], e_reco: np.ndarray,
                    acceptance: CaloAcceptance) -> tuple[dict, dict, dict, dict, tuple]:
    """Linearity and resolution figures of one ECAL energy estimator ``e_reco``."""
    lo, hi = acceptance.energy_range_GeV
    edges = np.array([lo, 12.5, 15, 20, 25, 30, 40, 50, 60, 70, 85, hi + 10.0])
    linearity = energy_response(e_reco, merged["e_true"], merged["e_true"], edges)
    ok = merged["upstream_clean"] & merged["central"]
    resolution = energy_response(e_reco[ok], merged["e_true"][ok], merged["e_inc"][ok],
                                 edges)
    resolution_fig, (a, b, _, _) = _resolution_figure(resolution, acceptance)
    resolution_fig["pass"] = resolution_fig["max_abs_relative_deviation"] < (
        acceptance.resolution_tolerance)
    lin_dev = np.abs(linearity["reco_over_true"] - 1.0)
    linearity_fig = {
        "bins_GeV": edges.tolist(), "e_true_GeV": linearity["energy"].tolist(),
        "reco_over_true": linearity["reco_over_true"].tolist(),
        "reco_over_true_error": linearity["reco_over_true_error"].tolist(),
        "n": linearity["n"].tolist(), "max_abs_deviation": float(np.nanmax(lin_dev)),
        "pass": bool(np.nanmax(lin_dev) < acceptance.linearity_tolerance)}
    return linearity_fig, resolution_fig, linearity, resolution, (a, b)


def _resolution_figure(response: dict[str, np.ndarray], acceptance: CaloAcceptance
                       ) -> tuple[dict[str, Any], tuple[float, float, float, float]]:
    """Widths of an :func:`energy_response` against the goal: per point, the fits of the
    reconstructed and truth-level widths, the excess over the goal and its consistency."""
    fit = fit_resolution(response["energy"], response["resolution"], response["resolution_error"])
    true_fit = fit_resolution(response["energy"], response["true_resolution"],
                              response["resolution_error"])
    goal = np.hypot(acceptance.stochastic_goal / np.sqrt(response["energy"]),
                    acceptance.constant_goal)
    excess = response["resolution"] / goal - 1.0
    terms = ("stochastic", "constant", "stochastic_error", "constant_error")
    figure = {
        "e_incident_GeV": response["energy"].tolist(), "n": response["n"].tolist(),
        "sigma_over_E": response["resolution"].tolist(),
        "sigma_over_E_error": response["resolution_error"].tolist(),
        "true_sigma_over_E": response["true_resolution"].tolist(),
        "reco_term": response["reco_term"].tolist(),
        "goal_sigma_over_E": goal.tolist(), "relative_excess": excess.tolist(),
        "fit": dict(zip(terms, fit, strict=True)),
        "true_fit": dict(zip(terms, true_fit, strict=True)),
        "max_relative_excess": float(np.nanmax(excess)),
        "max_abs_relative_deviation": float(np.nanmax(np.abs(excess))),
        "consistency": _goal_consistency(response, goal, fit, acceptance)}
    return figure, fit


def _goal_consistency(resolution: dict[str, np.ndarray], goal: np.ndarray,
                      fit: tuple[float, float, float, float],
                      acceptance: CaloAcceptance) -> dict[str, float]:
    """How consistent the measured widths are with the goal given their statistical errors:
    chi2 of the bins against the goal (also of the truth-level widths, i.e. of the simulated
    detector alone, with the same errors) and the pulls of the fitted terms."""
    ok = np.isfinite(resolution["resolution"]) & np.isfinite(goal)
    error = resolution["resolution_error"][ok]
    a, b, a_err, b_err = fit
    return {
        "ndf": int(ok.sum()),
        "chi2": float((((resolution["resolution"][ok] - goal[ok]) / error) ** 2).sum()),
        "true_chi2": float((((resolution["true_resolution"][ok] - goal[ok]) / error) ** 2).sum()),
        "stochastic_pull": float((a - acceptance.stochastic_goal) / max(a_err, 1e-12)),
        "constant_pull": float((b - acceptance.constant_goal) / max(b_err, 1e-12)),
    }


def _passes(node: Any) -> bool:
    if not isinstance(node, dict):
        return True
    return bool(node.get("pass", True)) and all(_passes(v) for v in node.values())


# --- plots ----------------------------------------------------------------------------

def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        import mplhep

        plt.style.use(mplhep.style.ROOT)
    except ImportError:  # mplhep is optional for the plots
        pass
    return plt


def plot_pedestals(diff: dict[str, np.ndarray], path: str | Path, tolerance: float = 0.5) -> Path:
    """Derived minus true pedestal per channel, even and odd samples, per group."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(diff), figsize=(6 * len(diff), 5), squeeze=False)
    for ax, (group, d) in zip(axes[0], diff.items(), strict=True):
        ax.plot(d[:, 0], "o", ms=3, label="even")
        ax.plot(d[:, 1], "s", ms=3, label="odd")
        ax.axhspan(-tolerance, tolerance, color="g", alpha=0.1)
        ax.set(title=group, xlabel="channel index", ylabel="derived - true pedestal [ADC]")
        ax.legend(fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)


def plot_closure(closure: np.ndarray, path: str | Path, tolerance: float = 0.01) -> Path:
    """Maps of the per-cell closure E_reco/E_true (preshower, main) and their distribution."""
    plt = _pyplot()
    n_sections = closure.shape[0]
    fig, axes = plt.subplots(1, n_sections + 1, figsize=(6 * (n_sections + 1), 5))
    for s in range(n_sections):
        deviation = closure[s].T - 1.0
        image = axes[s].imshow(deviation, origin="lower", cmap="coolwarm",
                               vmin=-3 * tolerance, vmax=3 * tolerance)
        for (iy, ix), v in np.ndenumerate(deviation):
            axes[s].text(ix, iy, f"{100 * v:+.1f}", ha="center", va="center", fontsize=7)
        axes[s].set(title=("preshower", "main")[s] if n_sections == 2 else f"section {s}",
                    xlabel="ix", ylabel="iy")
        fig.colorbar(image, ax=axes[s], label="E_reco/E_true - 1")
    for s in range(n_sections):
        values = closure[s][np.isfinite(closure[s])].ravel()
        axes[-1].hist(values, bins=40, range=(0.9, 1.1), histtype="step",
                      label=("preshower", "main")[s] if n_sections == 2 else str(s))
    axes[-1].axvspan(1 - tolerance, 1 + tolerance, color="g", alpha=0.1)
    axes[-1].set(xlabel="per-cell median E_reco/E_true", ylabel="cells")
    axes[-1].legend(fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)


def plot_linearity_resolution(linearity: dict[str, np.ndarray], resolution: dict[str, np.ndarray],
                              fit: tuple[float, float], path: str | Path,
                              acceptance: CaloAcceptance = CaloAcceptance()) -> Path:
    """ECAL linearity (E_reco/E_true) and resolution vs the goal and the fit."""
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    ax1.errorbar(linearity["energy"], linearity["reco_over_true"],
                 linearity["reco_over_true_error"], fmt="o")
    ax1.axhspan(1 - acceptance.linearity_tolerance, 1 + acceptance.linearity_tolerance,
                color="g", alpha=0.1)
    ax1.set(xlabel="E_true [GeV]", ylabel="median E_reco / E_true", ylim=(0.97, 1.03))
    e = np.linspace(*acceptance.energy_range_GeV, 200)
    ax2.errorbar(resolution["energy"], resolution["resolution"], resolution["resolution_error"],
                 fmt="o", label="reconstructed / E_inc")
    ax2.plot(resolution["energy"], resolution["true_resolution"], "s", mfc="none",
             label="true visible / E_inc")
    ax2.plot(resolution["energy"], resolution["reco_term"], "^", mfc="none",
             label="E_reco / E_true")
    ax2.plot(e, np.hypot(acceptance.stochastic_goal / np.sqrt(e), acceptance.constant_goal), "g-",
             label="goal 10%/sqrt(E) + 1%")
    ax2.plot(e, np.hypot(fit[0] / np.sqrt(e), fit[1]), "r--",
             label=f"fit {100 * fit[0]:.1f}%/sqrt(E) + {100 * fit[1]:.2f}%")
    ax2.set(xlabel="E [GeV]", ylabel="sigma_E / E", ylim=(0, 0.06))
    ax2.legend(fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)


def plot_mip_peaks(e_module: np.ndarray, figures: dict[str, Any], path: str | Path) -> Path:
    """Reconstructed HCAL module energies of muons with the fitted MIP peaks."""
    plt = _pyplot()
    n = e_module.shape[1]
    fig, axes = plt.subplots(1, n, figsize=(4.5 * n, 4), squeeze=False)
    for k, ax in enumerate(axes[0]):
        ax.hist(e_module[:, k], bins=80, range=(0, 8), histtype="step")
        module = figures["modules"][k]
        ax.axvline(module["mpv_GeV"], color="r", label=f"MPV {module['mpv_GeV']:.3f}")
        ax.axvline(2.5, color="g", ls=":", label="2.5 GeV")
        ax.set(title=f"HCAL module {k}", xlabel="E [GeV]")
        ax.legend(fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)
