"""Thin I/O of the calorimetry derivations: digits in, condition + plot + summary files out.

Each ``run_*`` function takes the decoded digits of the calibration data (one
awkward array; concatenate chunks or runs beforehand), the conditions it needs
(through a :class:`~recon.conditions.ConditionsDB`), the identity of the
condition to write (:class:`ConditionHeader`) and an output root; it writes

* ``<root>/<setup>/<kind>/<version>.json``: the condition (loadable by the DB),
* ``<plots>/<kind>_<version>.png``: the plot of its fits,
* ``<plots>/<kind>_<version>.summary.json``: the JSON summary,

and returns the three paths. Kinds: ``sadc_pedestals``, ``pulse_template``,
``ecal_calibration``, ``hcal_calibration``, ``counter_calibration``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from recon.calo.condition_files import ConditionHeader, condition_path, json_ready, write_condition
from recon.calo.counters import derive_counter_calibration, load_counter_references
from recon.calo.ecal_calibration import (
    EcalCalibrationConfig,
    derive_ecal_calibration,
    event_time_amplitudes,
    event_time_offsets,
    fit_preshower_mips,
    fixed_time_ratio,
    plot_ecal_calibration,
    preshower_pulse_times,
)
from recon.calo.hcal_calibration import (
    HcalCalibrationConfig,
    derive_hcal_calibration,
    plot_hcal_calibration,
)
from recon.calo.pulse_template import (
    TemplateConfig,
    derive_pulse_templates,
    load_pulse_templates,
    plot_pulse_templates,
    template_summary,
)
from recon.calo.sadc_channels import SadcLayout, sadc_hits
from recon.calo.sadc_pedestals import (
    PedestalConfig,
    derive_sadc_pedestals,
    load_sadc_pedestals,
    pedestal_summary,
    plot_pedestals,
)
from recon.calo.shower_model import DEFAULT_MODEL_PATH, ShowerModel
from recon.calo.waveform import (
    SadcTiming,
    WaveformConfig,
    amplitude_noise_factor,
    reconstruct_waveforms,
)
from recon.conditions import ConditionsDB
from recon.io.tables import write_json

__all__ = [
    "fixed_time_preshower",
    "group_fit",
    "muon_event_offsets",
    "run_counter_calibration",
    "run_ecal_calibration",
    "run_hcal_calibration",
    "run_pulse_templates",
    "run_sadc_pedestals",
]

Paths = tuple[Path, Path, Path]


def _setup(db: ConditionsDB, header: ConditionHeader, run: int):
    geometry = db.geometry(header.setup, run)
    return geometry, SadcLayout.from_geometry(geometry), SadcTiming.from_daq(
        db.data("daq", header.setup, run)[0])


def _write(kind: str, header: ConditionHeader, data: dict[str, Any], summary: dict[str, Any],
           root: Path, plots: Path, plot) -> Paths:
    condition = write_condition(condition_path(root, header.setup, kind, header.version), kind,
                                header, data)
    plots.mkdir(parents=True, exist_ok=True)
    figure = plot(plots / f"{kind}_{header.version}.png")
    summary_path = plots / f"{kind}_{header.version}.summary.json"
    write_json(summary_path, json_ready(summary))
    return condition, figure, summary_path


def group_fit(digits: ak.Array, group: str, db: ConditionsDB, setup: str, run: int,
              config: WaveformConfig | None = None) -> list[np.ndarray]:
    """Dense (n_events, *group_shape) amplitude, time and flags of one group of ``digits``."""
    geometry = db.geometry(setup, run)
    layout = SadcLayout.from_geometry(geometry)
    timing = SadcTiming.from_daq(db.data("daq", setup, run)[0])
    pedestals = load_sadc_pedestals(db, setup, run).groups[group]
    templates = load_pulse_templates(db, setup, run)
    hits = sadc_hits(digits, group, layout)
    index = hits.channel_index
    fit = reconstruct_waveforms(hits.samples, templates.index(group), pedestals.pedestal_adc,
                                pedestals.channel_noise_adc, templates.shapes, timing,
                                config or WaveformConfig(), channel_index=index,
                                template_of_channel=templates.rows(group, layout.size(group)))
    shape = (hits.n_events, *layout.shape(group))
    return [hits.dense(values, layout.size(group), fill).reshape(shape)
            for values, fill in ((fit.amplitude_adc, 0), (fit.t_ns, np.nan), (fit.flags, 8))]


def fixed_time_preshower(digits: ak.Array, db: ConditionsDB, setup: str, run: int,
                         t0_pre_ns: np.ndarray, config: WaveformConfig | None = None,
                         event_offset_ns: np.ndarray | None = None) -> list[np.ndarray]:
    """Dense ECAL amplitude, time and flags (n_events, 2, n_x, n_y) for MIP calibration.

    As :func:`group_fit`, except the preshower amplitudes: fits at each cell's pulse
    time ``t0_pre_ns`` (n_cells,) ns plus the event's time offset ``event_offset_ns``
    (n_events,) ns (:func:`event_time_amplitudes`, over the fit window of ``config``,
    reference pedestals; None: no offset; NaN: amplitude NaN). The waveform
    reconstruction fits a MIP of the preshower (~7 counts) at the nominal time when
    it is below its signal threshold and at a free time above: its response then
    follows the channel's cable delay, 1.2 % rms cell to cell on the simulated scan
    (0.5 % at the fixed time).
    """
    config = config or WaveformConfig()
    geometry = db.geometry(setup, run)
    layout = SadcLayout.from_geometry(geometry)
    timing = SadcTiming.from_daq(db.data("daq", setup, run)[0])
    pedestals = load_sadc_pedestals(db, setup, run).groups["ecal"]
    templates = load_pulse_templates(db, setup, run)
    rows = templates.rows("ecal", layout.size("ecal"))
    amplitude, t, flags = group_fit(digits, "ecal", db, setup, run, config)
    n_events, n_cells = amplitude.shape[0], int(np.prod(layout.shape("ecal")[1:]))
    k = np.arange(timing.n_samples)
    window = ((k >= timing.in_time_sample - config.fit_samples_before)
              & (k <= timing.in_time_sample + config.fit_samples_after))
    tau = (k - timing.in_time_sample) * timing.sample_period_ns
    hits = sadc_hits(digits, "ecal", layout)
    preshower = hits.channel_index < n_cells   # section 0 first: the flat cell index
    channel = hits.channel_index[preshower]
    event = hits.event_of_channel()[preshower]
    shift = np.zeros(event.size) if event_offset_ns is None else event_offset_ns[event]
    pre = amplitude[:, 0].reshape(n_events, n_cells)
    pre[event, channel] = event_time_amplitudes(
        hits.samples[preshower], channel, shift, pedestals.pedestal_adc,
        templates.shapes.values[rows[:n_cells]], templates.shapes.t_first_ns,
        templates.shapes.step_ns, tau, window, t0_pre_ns)
    amplitude[:, 0] = pre.reshape(amplitude[:, 0].shape)
    return [amplitude, t, flags]


def muon_event_offsets(digits: ak.Array, db: ConditionsDB, setup: str, run: int,
                       config: EcalCalibrationConfig | None = None) -> np.ndarray:
    """Event time offset (ns, NaN without one) of every muon of ``digits`` from its HCAL
    pulses (:func:`event_time_offsets`; a MIP of ~60 counts in each of the four modules)."""
    config = config or EcalCalibrationConfig()
    amplitude, t, flags = group_fit(digits, "hcal", db, setup, run)
    return event_time_offsets(t, flags, amplitude, config.event_time_min_adc_muons, config)


def run_sadc_pedestals(digits: ak.Array, db: ConditionsDB, run: int, header: ConditionHeader,
                       root: Path, plots: Path) -> Paths:
    """Pedestals from a pedestal run (random triggers)."""
    _, layout, timing = _setup(db, header, run)
    pedestals = derive_sadc_pedestals(digits, layout, timing.adc_max,
                                      PedestalConfig(adc_max=timing.adc_max))
    return _write("sadc_pedestals", header, pedestals.to_data(), pedestal_summary(pedestals),
                  root, plots, lambda p: plot_pedestals(pedestals, p))


def run_pulse_templates(digits: ak.Array, db: ConditionsDB, run: int, header: ConditionHeader,
                        root: Path, plots: Path, groups: tuple[str, ...] = ("ecal", "hcal",
                                                                           "counters"),
                        config: TemplateConfig | None = None) -> Paths:
    """Pulse templates from calibration data (needs ``sadc_pedestals``)."""
    _, layout, timing = _setup(db, header, run)
    pedestals = load_sadc_pedestals(db, header.setup, run)
    templates = derive_pulse_templates(digits, layout, pedestals, timing, groups,
                                       config or TemplateConfig())
    return _write("pulse_template", header, templates.to_data(), template_summary(templates),
                  root, plots, lambda p: plot_pulse_templates(templates, p))


def run_ecal_calibration(digits: ak.Array, db: ConditionsDB, run: int, header: ConditionHeader,
                         root: Path, plots: Path,
                         config: EcalCalibrationConfig | None = None,
                         shower_model: Path = DEFAULT_MODEL_PATH,
                         muon_digits: Iterable[ak.Array] | None = None) -> Paths:
    """ECAL gains from the cell scan (needs pedestals and templates); with ``muon_digits``
    (the chunks of a muon cell scan, read one at a time: 4.6 kB of ECAL and 2.3 kB of
    HCAL samples per event, the HCAL MIPs giving each muon's event time) the preshower
    cells are intercalibrated with their MIP responses, fitted at each cell's delay plus
    the event time (:func:`fixed_time_preshower`, :func:`muon_event_offsets`); the
    summary's ``preshower_mip.event_time`` records the timed fractions and the fixed- over
    free-time ratio."""
    config = config or EcalCalibrationConfig()
    geometry, layout, timing = _setup(db, header, run)
    amplitude, t, flags = group_fit(digits, "ecal", db, header.setup, run)
    templates = load_pulse_templates(db, header.setup, run)
    noise_adc = load_sadc_pedestals(db, header.setup, run).groups["ecal"].channel_noise_adc * (
        amplitude_noise_factor(templates.shapes, templates.rows("ecal", layout.size("ecal")),
                               timing))
    mips = None
    timing_summary = None
    if muon_digits is not None:
        # the preshower MIPs are fitted at each cell's delay plus the event's time offset,
        # from the main-section showers (electrons) and the HCAL MIPs (muons)
        offset = event_time_offsets(t[:, 1], flags[:, 1], amplitude[:, 1],
                                    config.event_time_min_adc_showers, config)
        t0_pre = preshower_pulse_times(amplitude, t, flags, config, offset)
        fixed = fixed_time_preshower(digits, db, header.setup, run, t0_pre,
                                     event_offset_ns=offset)[0]
        ratio = fixed_time_ratio(amplitude, fixed[:, 0].reshape(len(fixed), -1), flags, config)
        chunks, n_muons, n_timed = [], 0, 0
        for chunk in muon_digits:  # chunks of the muon scan, one at a time
            muon_offset = muon_event_offsets(chunk, db, header.setup, run, config)
            amplitude_mu, t_mu, flags_mu = fixed_time_preshower(chunk, db, header.setup, run,
                                                                t0_pre,
                                                                event_offset_ns=muon_offset)
            # float32 (1e-7 relative): the 360 000-muon scan's dense arrays, 0.4 GB in float64
            chunks.append((amplitude_mu.astype(np.float32), t_mu.astype(np.float32), flags_mu))
            n_muons += muon_offset.size
            n_timed += int(np.isfinite(muon_offset).sum())
        mips = fit_preshower_mips(*(np.concatenate(column) for column in zip(*chunks,
                                                                             strict=True)),
                                  config, ratio)
        timing_summary = {
            "showers_with_event_time": float(np.isfinite(offset).mean()),
            "muons_with_event_time": n_timed / max(n_muons, 1),
            "event_time_rms_ns_showers": float(np.nanstd(offset)),
            "fixed_over_free_mean": float(np.nanmean(ratio)),
            "fixed_over_free_rms": float(np.nanstd(ratio)),
        }
    fit = derive_ecal_calibration(amplitude, t, flags, geometry.ecal,
                                  ShowerModel.load(shower_model), config,
                                  amplitude_noise_adc=noise_adc.reshape(layout.shape("ecal")),
                                  preshower_mips=mips)
    if timing_summary is not None:
        fit.summary["preshower_mip"]["event_time"] = timing_summary
    return _write("ecal_calibration", header, fit.calibration.to_data(), fit.summary, root,
                  plots, lambda p: plot_ecal_calibration(fit, geometry.ecal.n_x,
                                                         geometry.ecal.n_y, p))


def run_hcal_calibration(digits: ak.Array, db: ConditionsDB, run: int, header: ConditionHeader,
                         root: Path, plots: Path,
                         config: HcalCalibrationConfig | None = None) -> Paths:
    """HCAL gains from muons (needs pedestals and templates)."""
    amplitude, t, flags = group_fit(digits, "hcal", db, header.setup, run)
    fit = derive_hcal_calibration(amplitude, t, flags, config or HcalCalibrationConfig())
    return _write("hcal_calibration", header, fit.data, fit.summary, root, plots,
                  lambda p: plot_hcal_calibration(fit, p))


def _plot_counters(amplitude: np.ndarray, names: tuple[str, ...], fits: list, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 4, figsize=(12, 7))
    for k, (name, ax) in enumerate(zip(names, axes.flat, strict=False)):
        values = amplitude[:, k]
        top = max(float(np.percentile(values, 99.5)), 1.0)
        ax.hist(values, bins=60, range=(0.0, top), histtype="step")
        if fits[k] is not None and fits[k].ok:
            ax.axvline(fits[k].mu, color="r")
        ax.set_title(name, fontsize=8)
    fig.suptitle("Counter amplitudes [ADC] and MIP peaks")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def run_counter_calibration(electron_digits: ak.Array, muon_digits: ak.Array, db: ConditionsDB,
                            run: int, header: ConditionHeader, root: Path, plots: Path) -> Paths:
    """Counter and SRD scales from an electron and a muon run (needs pedestals and templates);
    references in ``params/calo_references.yaml``."""
    _, layout, _ = _setup(db, header, run)
    electrons = group_fit(electron_digits, "counters", db, header.setup, run)
    muons = group_fit(muon_digits, "counters", db, header.setup, run)
    calibration, data, fits = derive_counter_calibration(
        tuple(electrons), tuple(muons), layout.counter_names, load_counter_references())
    summary = {"missing": [n for n, s in zip(calibration.names, calibration.scale_GeV_per_adc,
                                             strict=True) if not np.isfinite(s)],
               "n_signals": dict(zip(calibration.names, data["n_signals"].tolist(), strict=True))}
    amplitude = np.concatenate([electrons[0], muons[0]])
    return _write("counter_calibration", header, data, summary, root, plots,
                  lambda p: _plot_counters(amplitude, layout.counter_names, fits, p))
