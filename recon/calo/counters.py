"""Beam, veto, SRD and muon counters: energy scale calibration and per-event columns.

Counter ids (decoded ``counters.counter``, geometry ids): 0 S1, 1 V1, 2 S2,
3 V2, 4-6 SRD0-2, 7-10 MU1-4. Each counter's energy is ``scale * amplitude``
(GeV per ADC count) and its time the fitted pulse time minus ``t0_ns``.

Scale references (``params/calo_references.yaml``):

* scintillators (S1, S2, V2, MU1-4): the most probable energy a minimum-ionising
  particle leaves in the counter (``mip_peak`` estimator: Moyal fit of the
  in-time signals, as for the HCAL);
* SRD modules: the mean energy of a 100 GeV electron's synchrotron photons per
  module, about 20 MeV (``mean`` estimator over all events of an electron
  calibration run, no threshold, since the deposit fluctuates down to zero);
  the ``mip_peak`` counters use a muon run;
* counters that see no particle in the calibration runs (V1: the beam passes
  through its hole) take the scale of another counter (``same_as``).

Condition ``counter_calibration`` (JSON) ``data``: ``names``,
``scale_GeV_per_adc``, ``t0_ns``, ``estimator``, ``reference_GeV``, ``n_signals``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from recon.calo.peak_fit import PeakFit, fit_mip_peak
from recon.calo.sadc_channels import SadcHits
from recon.calo.waveform import WaveformFlag
from recon.conditions import ConditionRecord, ConditionsDB, ConditionsError

__all__ = [
    "CounterCalibration",
    "CounterCalibrationConfig",
    "CounterReference",
    "counter_columns",
    "derive_counter_calibration",
    "load_counter_calibration",
    "load_counter_references",
]

KIND = "counter_calibration"
REFERENCES_PATH = Path(__file__).parent / "params" / "calo_references.yaml"
_BAD = WaveformFlag.SATURATED | WaveformFlag.PILEUP


@dataclass(frozen=True)
class CounterReference:
    """How a counter's scale is obtained: estimator and reference energy, or another counter."""

    estimator: str = "mip_peak"
    reference_GeV: float = float("nan")
    same_as: str | None = None


def load_counter_references(path: str | Path = REFERENCES_PATH) -> dict[str, CounterReference]:
    doc = yaml.safe_load(Path(path).read_text())["counters"]
    return {name: CounterReference(**spec) for name, spec in doc.items()}


@dataclass(frozen=True)
class CounterCalibrationConfig:
    time_window_ns: float = 50.0
    min_signals: int = 50


@dataclass(frozen=True)
class CounterCalibration:
    """The ``counter_calibration`` condition, ordered by counter id."""

    names: tuple[str, ...]
    scale_GeV_per_adc: np.ndarray
    t0_ns: np.ndarray
    record: ConditionRecord | None = None

    @classmethod
    def from_data(cls, data: dict[str, Any],
                  record: ConditionRecord | None = None) -> CounterCalibration:
        scale = np.array(data["scale_GeV_per_adc"], dtype=np.float64)
        if not np.isfinite(scale).all():
            missing = [n for n, s in zip(data["names"], scale, strict=True) if not np.isfinite(s)]
            raise ConditionsError(f"counter calibration has no scale for {missing}")
        return cls(tuple(data["names"]), scale, np.array(data["t0_ns"], dtype=np.float64), record)


def _counter_scale(amplitude, t_ns, flags, reference,
                   config) -> tuple[float, float, PeakFit | None, int]:
    """(scale, t0, peak fit or None, signals used) of one counter."""
    clean = (flags & _BAD) == 0
    signal = clean & ((flags & WaveformFlag.NO_SIGNAL) == 0)
    signal &= np.abs(t_ns) < config.time_window_ns
    t0 = float(np.median(t_ns[signal])) if signal.any() else 0.0
    if reference.estimator == "mean":
        n = int(clean.sum())
        ok = n >= config.min_signals and amplitude[clean].mean() > 0
        return (reference.reference_GeV / amplitude[clean].mean() if ok else np.nan), t0, None, n
    peak = fit_mip_peak(amplitude[signal], min_entries=config.min_signals)
    return (reference.reference_GeV / peak.mu if peak.ok else np.nan), t0, peak, int(signal.sum())


def _describe(reference: CounterReference) -> str:
    return f"same_as {reference.same_as}" if reference.same_as else reference.estimator


def derive_counter_calibration(electrons: tuple[np.ndarray, np.ndarray, np.ndarray],
                               muons: tuple[np.ndarray, np.ndarray, np.ndarray],
                               names: tuple[str, ...], references: dict[str, CounterReference],
                               config: CounterCalibrationConfig = CounterCalibrationConfig(),
                               ) -> tuple[CounterCalibration, dict[str, Any], list]:
    """Scales of all counters (pure core).

    ``electrons`` and ``muons``: (amplitude_adc, t_ns, flags), each dense
    (n_events, n_counters), of an electron calibration run (for the ``mean``
    estimator: the SRD) and of a muon run (``mip_peak``: the scintillators).
    Returns the calibration, its condition ``data`` (NaN where a counter could
    not be calibrated) and the peak fits (None for ``mean`` / ``same_as``).
    """
    n = len(names)
    scale, t0, n_signals = np.full(n, np.nan), np.zeros(n), np.zeros(n, dtype=np.int64)
    fits: list = [None] * n
    for k, name in enumerate(names):  # eleven counters
        reference = references[name]
        if reference.same_as is None:
            amplitude, t_ns, flags = electrons if reference.estimator == "mean" else muons
            scale[k], t0[k], fits[k], n_signals[k] = _counter_scale(
                amplitude[:, k], t_ns[:, k], flags[:, k], reference, config)
    for k, name in enumerate(names):
        if references[name].same_as is not None:
            other = names.index(references[name].same_as)
            scale[k], t0[k] = scale[other], t0[other]
    data = {
        "names": list(names),
        "scale_GeV_per_adc": scale,
        "t0_ns": np.round(t0, 4),
        "estimator": [_describe(references[n]) for n in names],
        "reference_GeV": [references[n].reference_GeV for n in names],
        "n_signals": n_signals,
    }
    return CounterCalibration(tuple(names), scale, t0), data, fits


def load_counter_calibration(db: ConditionsDB, setup: str, run: int) -> CounterCalibration:
    data, record = db.data(KIND, setup, run)
    return CounterCalibration.from_data(data, record)


def counter_columns(hits: SadcHits, amplitude_adc: np.ndarray, t_ns: np.ndarray,
                    calibration: CounterCalibration) -> dict[str, np.ndarray]:
    """Per-event ``<name>_GeV`` and ``<name>_t_ns`` columns (0 GeV and NaN if not read out)."""
    n = len(calibration.names)
    energy = hits.dense(amplitude_adc * calibration.scale_GeV_per_adc[hits.channel_index], n)
    time = hits.dense(t_ns - calibration.t0_ns[hits.channel_index], n, fill=np.nan)
    columns = {}
    for k, name in enumerate(calibration.names):
        columns[f"{name.lower()}_GeV"] = energy[:, k].astype(np.float32)
        columns[f"{name.lower()}_t_ns"] = time[:, k].astype(np.float32)
    return columns
