"""The calorimetry stage: decoded SADC digits -> calibrated cells -> per-event summaries.

Pure core :func:`calo_events`: the flat ECAL, HCAL and counter hits of a chunk
(:class:`~recon.calo.sadc_channels.SadcHits`) and the conditions in,
per-event numpy columns and per-cell arrays out:

1. every SADC channel of the chunk (the three groups concatenated) goes
   through one waveform kernel (:func:`reconstruct_waveforms`) with its own
   pulse template (per-channel shapes where the ``pulse_template`` condition
   has them, else its group's) and its pedestal-run references;
2. cell energy = gain * template-fit amplitude; cell time = pulse time - t0;
3. ECAL and HCAL summaries by numba kernels over the flat cells
   (:mod:`recon.calo.ecal_summary`, :mod:`recon.calo.hcal_summary`; the ECAL
   shower energy with the outer-energy calibration of ``ecal_calibration`` and
   the cells' amplitude noise from the pedestals and templates); counter
   columns by a dense scatter (:func:`counter_columns`).

Conditions (:class:`CaloConditions.load`): ``geometry``, ``daq``,
``sadc_pedestals``, ``pulse_template``, ``ecal_calibration``,
``hcal_calibration``, ``counter_calibration``, and the shower model parameter
file. :func:`calo_from_digits` is the thin wrapper from a decoded digits chunk
to an awkward array of events (event identity, summaries and jagged cells).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import awkward as ak
import numba as nb
import numpy as np

from recon.calo.counters import CounterCalibration, counter_columns, load_counter_calibration
from recon.calo.ecal_calibration import EcalCalibration, load_ecal_calibration
from recon.calo.ecal_summary import EcalShape, OuterEnergy, ecal_summary
from recon.calo.hcal_calibration import HcalCalibration, load_hcal_calibration
from recon.calo.hcal_summary import hcal_summary
from recon.calo.pulse_template import PulseTemplates, load_pulse_templates
from recon.calo.sadc_channels import GROUPS, SadcHits, SadcLayout, sadc_hits
from recon.calo.sadc_pedestals import SadcPedestals, load_sadc_pedestals
from recon.calo.shower_model import DEFAULT_MODEL_PATH, ShowerModel
from recon.calo.waveform import (
    SadcTiming,
    WaveformConfig,
    WaveformResult,
    amplitude_noise_factor,
    reconstruct_waveforms,
)
from recon.conditions import ConditionsDB
from recon.conditions.geometry import Geometry

__all__ = ["CaloConditions", "CaloConfig", "CaloOutput", "calo_events", "calo_from_digits"]


@dataclass(frozen=True)
class CaloConfig:
    """Stage settings: waveform fit, in-time window (ns), log-weight cut-off, HCAL veto modules."""

    waveform: WaveformConfig = field(default_factory=WaveformConfig)
    intime_window_ns: float = 25.0
    log_weight_w0: float = 4.0
    hcal_modules_in_sum: int = 2


@dataclass(frozen=True)
class CaloConditions:
    """Everything the stage reads from the conditions, typed."""

    geometry: Geometry
    layout: SadcLayout
    timing: SadcTiming
    pedestals: SadcPedestals
    templates: PulseTemplates
    ecal: EcalCalibration
    hcal: HcalCalibration
    counters: CounterCalibration
    shower_model: ShowerModel

    @classmethod
    def load(cls, db: ConditionsDB, setup: str, run: int,
             shower_model_path: str | Path = DEFAULT_MODEL_PATH) -> CaloConditions:
        geometry = db.geometry(setup, run)
        return cls(
            geometry=geometry,
            layout=SadcLayout.from_geometry(geometry),
            timing=SadcTiming.from_daq(db.data("daq", setup, run)[0]),
            pedestals=load_sadc_pedestals(db, setup, run),
            templates=load_pulse_templates(db, setup, run),
            ecal=load_ecal_calibration(db, setup, run),
            hcal=load_hcal_calibration(db, setup, run),
            counters=load_counter_calibration(db, setup, run),
            shower_model=ShowerModel.load(shower_model_path),
        )

    def provenance(self) -> dict[str, dict[str, str]]:
        """Versions and checksums of the conditions used (those loaded from files)."""
        items = {"geometry": self.geometry, "sadc_pedestals": self.pedestals,
                 "pulse_template": self.templates, "ecal_calibration": self.ecal,
                 "hcal_calibration": self.hcal, "counter_calibration": self.counters}
        out = {k: v.record.provenance() for k, v in items.items() if v.record is not None}
        out["ecal_shower_model"] = {"version": self.shower_model.version}
        return out

    def ecal_shape(self) -> EcalShape:
        return EcalShape(
            profile_mean=self.ecal.profile_mean,
            profile_sigma=self.ecal.profile_sigma,
            preshower_fraction_mean=self.ecal.preshower_fraction_mean,
            preshower_fraction_sigma=self.ecal.preshower_fraction_sigma,
            reference_energy_GeV=self.ecal.reference_energy_GeV,
            preshower_depth_X0=float(self.geometry.ecal.extra["sections"][0]["depth_X0"]),
        )


@dataclass
class CaloOutput:
    """Per-event columns and per-cell arrays (flat, with ``offsets``) of a chunk."""

    events: dict[str, np.ndarray]
    cells: dict[str, dict[str, np.ndarray]]

    def to_awkward(self) -> ak.Array:
        """Events with ``ecal_cells``, ``hcal_cells``: var * {index, e_GeV, t_ns, flags}."""
        fields = {name: ak.from_numpy(values) for name, values in self.events.items()}
        for group, cells in self.cells.items():
            record = ak.zip({k: v for k, v in cells.items() if k != "offsets"}, depth_limit=1)
            counts = np.diff(cells["offsets"])
            fields[f"{group}_cells"] = ak.unflatten(record, counts)
        return ak.zip(fields, depth_limit=1)


def _waveforms(hits: dict[str, SadcHits], conditions: CaloConditions,
               config: CaloConfig) -> dict[str, WaveformResult]:
    """The channels of each group through the waveform kernel (conditions and template row by
    channel index)."""
    out = {}
    for g in GROUPS:
        pedestals = conditions.pedestals.groups[g]
        shapes, rows = conditions.templates.group_view(g, conditions.layout.size(g))
        out[g] = reconstruct_waveforms(hits[g].samples, 0, pedestals.pedestal_adc,
                                       pedestals.channel_noise_adc, shapes, conditions.timing,
                                       config.waveform, channel_index=hits[g].channel_index,
                                       template_of_channel=rows)
    return out


@nb.njit(cache=True, nogil=True)
def _calibrate_cells(amplitude_adc, t_ns, index, gain, t0, e_out, t_out):
    """``e = A * gain[c]``, ``t = t - t0[c]`` per cell (float64 arithmetic, float32 out)."""
    for h in range(index.size):
        c = index[h]
        e_out[h] = np.float64(amplitude_adc[h]) * gain[c]
        t_out[h] = np.float64(t_ns[h]) - t0[c]


def _calibrated(hits: SadcHits, fit: WaveformResult, gain: np.ndarray,
                t0: np.ndarray) -> dict[str, np.ndarray]:
    index = hits.channel_index
    e_GeV = np.empty(index.size, np.float32)
    t_ns = np.empty(index.size, np.float32)
    _calibrate_cells(fit.amplitude_adc, fit.t_ns, index,
                     np.ascontiguousarray(gain, np.float64).reshape(-1),
                     np.ascontiguousarray(t0, np.float64).reshape(-1), e_GeV, t_ns)
    return {"offsets": hits.offsets, "index": index, "e_GeV": e_GeV, "t_ns": t_ns,
            "flags": fit.flags}


def _outer_energy(conditions: CaloConditions, noise_GeV: np.ndarray,
                  config: CaloConfig) -> OuterEnergy | None:
    """The ``e_ecal_shower_GeV`` inputs: outer-energy calibration and amplitude noise (GeV)."""
    ecal = conditions.ecal
    if ecal.outer_ratio is None:
        return None
    shapes, rows = conditions.templates.group_view("ecal", conditions.layout.size("ecal"))
    factor = amplitude_noise_factor(shapes, rows, conditions.timing, config.waveform)
    return OuterEnergy(ecal.outer_ratio, ecal.outer_kappa_GeV, noise_GeV * factor)


def calo_events(ecal: SadcHits, hcal: SadcHits, counters: SadcHits, conditions: CaloConditions,
                config: CaloConfig = CaloConfig()) -> CaloOutput:
    """Calibrated cells and per-event calorimeter columns of one chunk (pure core)."""
    hits = {"ecal": ecal, "hcal": hcal, "counters": counters}
    fits = _waveforms(hits, conditions, config)
    ecal_cells = _calibrated(ecal, fits["ecal"], conditions.ecal.gain_GeV_per_adc,
                             conditions.ecal.t0_ns)
    hcal_cells = _calibrated(hcal, fits["hcal"], conditions.hcal.gain_GeV_per_adc,
                             conditions.hcal.t0_ns)
    geometry = conditions.geometry.ecal
    ecal_noise_GeV = (conditions.pedestals.groups["ecal"].channel_noise_adc
                      * conditions.ecal.gain_GeV_per_adc.reshape(-1))
    events = ecal_summary(
        ecal.offsets, ecal.channel_index, ecal_cells["e_GeV"], ecal_cells["t_ns"],
        ecal_cells["flags"], geometry.n_x, geometry.n_y, geometry.cell_x(np.arange(geometry.n_x)),
        geometry.cell_y(np.arange(geometry.n_y)), ecal_noise_GeV, conditions.ecal_shape(),
        conditions.shower_model, config.intime_window_ns, config.log_weight_w0,
        _outer_energy(conditions, ecal_noise_GeV, config))
    n_modules, n_x, n_y = conditions.layout.hcal
    events |= hcal_summary(hcal.offsets, hcal.channel_index, hcal_cells["e_GeV"],
                           hcal_cells["t_ns"], hcal_cells["flags"], n_modules, n_x * n_y,
                           config.intime_window_ns, config.hcal_modules_in_sum)
    events |= counter_columns(counters, fits["counters"].amplitude_adc, fits["counters"].t_ns,
                              conditions.counters)
    flags = fits["counters"].flags
    events["counters_saturated"] = np.zeros(counters.n_events, bool)
    events["counters_pileup"] = np.zeros(counters.n_events, bool)
    rows = counters.event_of_channel()
    events["counters_saturated"][rows[(flags & 1) != 0]] = True
    events["counters_pileup"][rows[(flags & 2) != 0]] = True
    return CaloOutput(events, {"ecal": ecal_cells, "hcal": hcal_cells})


def calo_from_digits(digits: ak.Array, conditions: CaloConditions,
                     config: CaloConfig = CaloConfig()) -> ak.Array:
    """Thin wrapper: a decoded digits chunk -> calo events (identity fields kept)."""
    hits = {g: sadc_hits(digits, g, conditions.layout) for g in GROUPS}
    output = calo_events(hits["ecal"], hits["hcal"], hits["counters"], conditions, config)
    events = output.to_awkward()
    identity = [f for f in ("run", "spill", "event", "trigger_time_ns", "trigger_mask")
                if f in digits.fields]
    return ak.zip({**{f: digits[f] for f in identity}, **{f: events[f] for f in events.fields}},
                  depth_limit=1)
