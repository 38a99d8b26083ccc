"""HCAL cell calibration from the MIP peak of muons: GeV per ADC amplitude per cell.

A minimum-ionising particle crossing an HCAL module deposits the equivalent of
``mip_GeV`` = 2.5 GeV (most probable value; ``params/calo_references.yaml``,
from the setup specification). In a run with muons (the muon calibration beam,
or muons selected in physics data), for every module separately:

1. the module's hit cell is the one with the largest amplitude; the event is
   used for that cell when the pulse is in time, unsaturated, without pile-up,
   and isolated: every other cell of the module is below ``isolation_fraction``
   of it (a single MIP track, no shower);
2. ``P_c``, the MIP peak of the cell (most probable value of a maximum
   likelihood Moyal fit, :func:`fit_mip_peak`) gives the gain
   ``g_c = mip_GeV / P_c`` GeV per ADC count, and ``t0_ns`` is the median time;
3. cells with fewer than ``min_events_per_cell`` MIPs (e.g. corners a narrow
   muon beam does not reach) take the median gain of the calibrated cells and
   are listed in the summary (``fallback_cells``).

Condition ``hcal_calibration`` (JSON) ``data``: ``axes [module, ix, iy]``,
``gain_GeV_per_adc``, ``t0_ns``, ``mip_peak_adc``, ``n_mips``, ``mip_GeV``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from recon.calo.condition_files import array_from_json
from recon.calo.peak_fit import PeakFit, fit_mip_peak
from recon.calo.waveform import WaveformFlag
from recon.conditions import ConditionRecord, ConditionsDB

__all__ = [
    "REFERENCES_PATH",
    "HcalCalibration",
    "HcalCalibrationConfig",
    "HcalCalibrationFit",
    "derive_hcal_calibration",
    "load_hcal_calibration",
    "plot_hcal_calibration",
]

KIND = "hcal_calibration"
REFERENCES_PATH = Path(__file__).parent / "params" / "calo_references.yaml"
_BAD = WaveformFlag.SATURATED | WaveformFlag.PILEUP | WaveformFlag.NO_SIGNAL


def _reference_mip_GeV() -> float:
    return float(yaml.safe_load(REFERENCES_PATH.read_text())["hcal"]["mip_GeV"])


@dataclass(frozen=True)
class HcalCalibrationConfig:
    """MIP calibration settings (GeV, ns, sigmas)."""

    mip_GeV: float = _reference_mip_GeV()
    isolation_fraction: float = 0.2
    time_window_ns: float = 50.0
    min_events_per_cell: int = 50


@dataclass(frozen=True)
class HcalCalibration:
    """The ``hcal_calibration`` condition (arrays shaped [module, ix, iy])."""

    gain_GeV_per_adc: np.ndarray
    t0_ns: np.ndarray
    record: ConditionRecord | None = None

    @classmethod
    def from_data(cls, data: dict[str, Any],
                  record: ConditionRecord | None = None) -> HcalCalibration:
        return cls(array_from_json(data["gain_GeV_per_adc"]), array_from_json(data["t0_ns"]),
                   record)


@dataclass
class HcalCalibrationFit:
    calibration: HcalCalibration
    peaks: list[PeakFit]
    cell_amplitudes: list[np.ndarray]
    data: dict[str, Any]
    summary: dict[str, Any]


def derive_hcal_calibration(amplitude_adc: np.ndarray, t_ns: np.ndarray, flags: np.ndarray,
                            config: HcalCalibrationConfig = HcalCalibrationConfig(),
                            ) -> HcalCalibrationFit:
    """Per-cell MIP calibration (pure core); inputs dense (n_events, n_modules, n_x, n_y)."""
    n_events, n_modules = amplitude_adc.shape[:2]
    shape = amplitude_adc.shape[1:]
    per_module = amplitude_adc.reshape(n_events, n_modules, -1).astype(np.float64)
    n_cells = per_module.shape[2]
    hit = np.argmax(per_module, axis=2)

    def at_hit(values):
        flat = values.reshape(n_events, n_modules, -1)
        return np.take_along_axis(flat, hit[..., None], axis=2)[..., 0]

    peak_amp, hit_flags, hit_t = at_hit(per_module), at_hit(flags), at_hit(t_ns)
    second = np.sort(per_module, axis=2)[..., -2]
    good = ((hit_flags & _BAD) == 0) & (np.abs(hit_t) < config.time_window_ns)
    good &= second < config.isolation_fraction * peak_amp
    peaks, values = [], []
    mip_adc = np.full((n_modules, n_cells), np.nan)
    t0 = np.zeros((n_modules, n_cells))
    n_mips = np.zeros((n_modules, n_cells), dtype=np.int64)
    for m in range(n_modules):  # 4 modules x 9 cells, once per derivation
        for c in range(n_cells):
            mine = good[:, m] & (hit[:, m] == c)
            n_mips[m, c] = int(mine.sum())
            values.append(peak_amp[mine, m])
            peak = fit_mip_peak(peak_amp[mine, m], min_entries=config.min_events_per_cell)
            peaks.append(peak)
            if peak.ok:
                mip_adc[m, c] = peak.mu
                t0[m, c] = np.median(hit_t[mine, m])
    gain = config.mip_GeV / mip_adc
    fallback = ~np.isfinite(gain)
    if fallback.all():
        raise ValueError("no HCAL cell has enough isolated MIPs")
    gain[fallback] = np.median(gain[~fallback])
    calibration = HcalCalibration(gain.reshape(shape), t0.reshape(shape))
    data = {
        "axes": ["module", "ix", "iy"],
        "gain_GeV_per_adc": np.round(gain.reshape(shape), 9),
        "t0_ns": np.round(t0.reshape(shape), 4),
        "mip_peak_adc": mip_adc.reshape(shape),
        "n_mips": n_mips.reshape(shape),
        "mip_GeV": config.mip_GeV,
    }
    calibrated = np.isfinite(mip_adc)
    summary = {
        "n_events": int(n_events),
        "mip_GeV": config.mip_GeV,
        "fallback_cells": [list(np.unravel_index(i, shape)) for i in np.flatnonzero(fallback)],
        "mips_per_cell_min": int(n_mips[calibrated].min()),
        "gain_GeV_per_adc": {"mean": float(gain.mean()),
                             "rms_over_mean": float(gain.std() / gain.mean())},
        "peak_relative_error_max": float(max(p.mu_error / p.mu for p in peaks if p.ok)),
    }
    return HcalCalibrationFit(calibration, peaks, values, data, summary)


def load_hcal_calibration(db: ConditionsDB, setup: str, run: int) -> HcalCalibration:
    data, record = db.data(KIND, setup, run)
    return HcalCalibration.from_data(data, record)


def plot_hcal_calibration(fit: HcalCalibrationFit, path: str | Path) -> Path:
    """MIP spectra of every cell with the fitted peak, one row per module."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_modules = fit.calibration.gain_GeV_per_adc.shape[0]
    n_cells = len(fit.peaks) // n_modules
    fig, axes = plt.subplots(n_modules, n_cells, figsize=(1.9 * n_cells, 1.7 * n_modules),
                             squeeze=False)
    for k, (peak, values) in enumerate(zip(fit.peaks, fit.cell_amplitudes, strict=True)):
        ax = axes[k // n_cells, k % n_cells]
        if values.size:
            top = np.percentile(values, 98) if values.size > 10 else values.max() + 1
            ax.hist(values, bins=40, range=(0, top), histtype="step")
        if peak.ok:
            ax.axvline(peak.mu, color="r")
        ax.set_title(f"m{k // n_cells} c{k % n_cells}: {peak.mu:.0f}", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.suptitle("HCAL MIP peaks [ADC]")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)
