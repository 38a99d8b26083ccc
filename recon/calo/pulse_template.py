"""Pulse templates per detector group from calibration data: derivation and loader.

The template ``T(tau)`` of a detector group (``ecal``, ``hcal``, ``counters``)
is the average normalised SADC pulse as a function of the time from its peak,
on a fine uniform grid (default 0.5 ns, which must divide the 12.5 ns sample
period). Because the trigger is asynchronous to the 80 MHz sampling clock,
pulses are sampled at all phases and their samples, placed at their own time
from the pulse peak, fill the fine grid (the "phase folding" technique used
for sampling-ADC calorimeters).

Derivation, per group, on clean pulses (maximum above ``min_amplitude_sigma``
pedestal-noise sigmas, no saturated sample):

1. pedestal-subtract with the ``sadc_pedestals`` references;
2. time each pulse by its centroid (over ``centroid_before`` to
   ``centroid_after`` samples around the maximum, to limit the noise) made
   uniform in sampling phase (:func:`_uniform_phase_time`, with the phase
   distribution of the pulses above ``reliable_sigma`` noise sigmas, or of
   all if fewer than ``min_pulses``; near the selection threshold the cut on
   the maximum sample favours some phases): the
   phase-dependent bias of any simple time estimator would otherwise smear the
   template;
3. alternate, ``n_iterations`` times, (a) the least-squares template on the
   grid given amplitudes and times (each sample split linearly between its two
   nearest grid nodes), moved so that its maximum (a parabola through
   ``2 peak_fit_points + 1`` nodes) sits at ``tau = 0``, and (b) the
   least-squares amplitudes given the template, from which a factor periodic
   in the sampling phase (``phase_harmonics`` Fourier terms of log A) is
   removed. Phase folding leaves exactly such a factor undetermined between
   template and amplitudes; physics amplitudes do not depend on the phase.
   The first amplitudes are the pulse areas;
4. empty grid nodes are filled by linear interpolation; the template is scaled
   to 1 at its peak.

The result is best from pulses of a narrow amplitude spectrum (e.g. the
central cell of the ECAL cell scan, muons in the HCAL), where step 3(b) is
precise; with a broad spectrum the residual phase modulation of the template
is larger (see ``docs/calorimetry.md``).

5. ``method = "parametric"`` (default): the folded template of steps 1-4 only
   seeds a fit of the shaper model ``T(tau) = N [exp(-t/tau_d) - exp(-t/tau_r)]``
   (``t = tau + t_peak``, zero for ``t < 0``, peak 1; a scintillator decay
   ``tau_d`` integrated by an RC stage ``tau_r``: W.R. Leo, *Techniques for
   Nuclear and Particle Physics Experiments*, 2nd ed. (1994), ch. 17). The
   two constants minimise the summed chi2 of the reconstruction's own
   amplitude-and-time fit (:func:`reconstruct_waveforms`) over up to
   ``fit_pulses`` clean pulses (Nelder-Mead in log tau). Why: step 2 needs
   the sampling phase to be uniform. With a trigger (nearly) synchronous to
   the sampling clock (the simulation: 2 ns jitter around a fixed phase) the
   pulses cover a few ns of phase only, and phase folding leaves the time
   axis undetermined up to a warp periodic in the sample period (measured on
   the simulated cell scan: rising edge 3 ns too steep, amplitude scatter 3 %
   against 1 % with the fitted model). A parametric shape has no such
   freedom, whatever the phase distribution. The model replaces the folded
   template only when (a) the premise of folding fails: the Kuiper distance
   (rotation invariant) of the fitted sampling phases from uniform exceeds
   ``max_phase_nonuniformity`` (simulated runs: 0.27-0.36), and (b) the
   model describes the pulses: its summed chi2 is below ``max_chi2_ratio``
   times the folded template's (simulated runs: 0.66-1.15; pulses of another
   shape: > 100). The chi2 alone cannot prefer the model: the warp leaves it
   unchanged.

6. **Per-channel shapes** (groups in ``channel_groups``, default ECAL, and only
   where the group template is the fitted model): the channels of one group
   differ in shape (the simulation draws rise and decay constants with a 5 %
   spread per channel), and a common template fits each channel's pulses with
   an amplitude error that depends on the sampling phase: ~1 % per pulse for
   the ECAL, the largest term of the reconstructed energy resolution above
   30 GeV. The model constants of each channel are fitted as in step 5 on its
   ``channel_fit_pulses`` largest pulses above ``reliable_sigma`` (started
   from the group's constants); a channel with fewer than
   ``channel_min_pulses`` such pulses keeps the group template. Measured on
   the simulated 7200-event cell scan (127-200 pulses per channel): rise
   within 0.8 %, decay within 0.1 % (rms over the 36 main cells) of the true
   per-channel constants.

Condition ``pulse_template`` (JSON), ``data``: ``t_first_ns``, ``step_ns``,
``templates: {group: [values]}``, ``n_pulses: {group: n}`` and (optional, absent
from files written before per-channel shapes, which stay readable and mean "the
group template for every channel") ``channel_shapes: {group: {rise_ns, decay_ns,
n_pulses}}``, flat arrays over the group's dense channel index (``sadc_channels``),
``null`` for a channel that uses the group template.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import awkward as ak
import numba as nb
import numpy as np

from recon.calo.sadc_channels import GROUPS, SadcLayout, sadc_hits
from recon.calo.sadc_pedestals import SadcPedestals
from recon.calo.waveform import PulseShapes, SadcTiming, WaveformConfig, reconstruct_waveforms
from recon.conditions import ConditionRecord, ConditionsDB

__all__ = [
    "ChannelShapes",
    "PulseTemplates",
    "TemplateConfig",
    "derive_channel_shapes",
    "derive_group_template",
    "derive_pulse_templates",
    "fit_shaper_constants",
    "load_pulse_templates",
    "plot_pulse_templates",
    "shaper_pulse",
    "template_summary",
]

KIND = "pulse_template"
log = logging.getLogger("na64.pulse_template")


@dataclass(frozen=True)
class TemplateConfig:
    """Template derivation settings (ns, noise sigmas)."""

    t_first_ns: float = -150.0
    t_last_ns: float = 250.0
    step_ns: float = 0.5
    min_amplitude_sigma: float = 30.0
    peak_fit_points: int = 2
    centroid_before: int = 3
    centroid_after: int = 8
    reliable_sigma: float = 150.0
    n_iterations: int = 6
    phase_harmonics: int = 2
    max_pulses: int = 50_000
    min_pulses: int = 200
    method: str = "parametric"
    fit_pulses: int = 3000
    max_phase_nonuniformity: float = 0.25
    max_chi2_ratio: float = 1.5
    channel_groups: tuple[str, ...] = ("ecal",)
    channel_fit_pulses: int = 200
    channel_min_pulses: int = 50


@dataclass(frozen=True)
class ChannelShapes:
    """Shaper constants (ns) of every channel of one group over its dense channel index;
    NaN for a channel that uses the group template. ``n_pulses``: pulses fitted."""

    rise_ns: np.ndarray
    decay_ns: np.ndarray
    n_pulses: np.ndarray

    @property
    def own(self) -> np.ndarray:
        """Channels with their own template."""
        return np.isfinite(self.rise_ns) & np.isfinite(self.decay_ns)

    def to_data(self) -> dict[str, list]:
        own = self.own
        return {"rise_ns": [round(float(v), 5) if k else None for v, k in zip(
                    self.rise_ns, own, strict=True)],
                "decay_ns": [round(float(v), 4) if k else None for v, k in zip(
                    self.decay_ns, own, strict=True)],
                "n_pulses": [int(v) for v in self.n_pulses]}

    @classmethod
    def from_data(cls, data: dict[str, list]) -> ChannelShapes:
        def column(key):
            return np.array([np.nan if v is None else v for v in data[key]], dtype=np.float64)

        return cls(column("rise_ns"), column("decay_ns"),
                   np.asarray(data["n_pulses"], dtype=np.int64))


@dataclass(frozen=True)
class PulseTemplates:
    """The ``pulse_template`` condition: named group templates on one grid, optionally
    per-channel shaper constants of some groups.

    ``shapes.values`` holds the group templates (row ``index(group)``) followed by the
    per-channel templates (built from ``channels`` by :meth:`build`); :meth:`rows`
    gives the row of every channel of a group.
    """

    names: tuple[str, ...]
    shapes: PulseShapes
    n_pulses: dict[str, int]
    record: ConditionRecord | None = None
    channels: dict[str, ChannelShapes] = field(default_factory=dict)

    @classmethod
    def build(cls, names: tuple[str, ...], group_shapes: PulseShapes, n_pulses: dict[str, int],
              channels: dict[str, ChannelShapes] | None = None,
              record: ConditionRecord | None = None) -> PulseTemplates:
        """Group templates plus one row per channel with its own shaper constants."""
        channels = dict(channels or {})
        grid = group_shapes.t_first_ns + group_shapes.step_ns * np.arange(
            group_shapes.values.shape[1])
        rows = [group_shapes.values]
        for name in channels:  # a group or two
            shape = channels[name]
            own = shape.own
            rows.append(shaper_pulse(grid[None, :], shape.rise_ns[own][:, None],
                                     shape.decay_ns[own][:, None]))
        shapes = PulseShapes(np.concatenate(rows), group_shapes.t_first_ns, group_shapes.step_ns)
        return cls(tuple(names), shapes, dict(n_pulses), record, channels)

    def index(self, group: str) -> int:
        if group not in self.names:
            raise KeyError(f"no pulse template for '{group}' (have {', '.join(self.names)})")
        return self.names.index(group)

    @cached_property
    def _first_channel_row(self) -> dict[str, int]:
        first, out = len(self.names), {}
        for name, shape in self.channels.items():
            out[name] = first
            first += int(shape.own.sum())
        return out

    def rows(self, group: str, n_channels: int) -> np.ndarray:
        """Template row (into ``shapes.values``) of each of the group's ``n_channels``."""
        rows = np.full(n_channels, self.index(group), dtype=np.int64)
        shape = self.channels.get(group)
        if shape is not None:
            if shape.rise_ns.size != n_channels:
                raise ValueError(f"{group}: {shape.rise_ns.size} channel shapes for "
                                 f"{n_channels} channels")
            own = shape.own
            rows[own] = self._first_channel_row[group] + np.arange(int(own.sum()))
        return rows

    @cached_property
    def _views(self) -> dict[tuple[str, int], tuple[PulseShapes, np.ndarray]]:
        return {}

    def group_view(self, group: str, n_channels: int) -> tuple[PulseShapes, np.ndarray]:
        """The templates a group uses (its own row, then its channels') and the row of each
        of its channels in them: the waveform kernel gets no other group's rows (its tables
        are built per call). Cached."""
        key = (group, n_channels)
        if key not in self._views:
            rows = self.rows(group, n_channels)
            used, local = np.unique(rows, return_inverse=True)
            shapes = PulseShapes(self.shapes.values[used], self.shapes.t_first_ns,
                                 self.shapes.step_ns)
            self._views[key] = (shapes, local.astype(np.int64))
        return self._views[key]

    def to_data(self) -> dict[str, Any]:
        data = {
            "t_first_ns": self.shapes.t_first_ns,
            "step_ns": self.shapes.step_ns,
            "templates": {n: np.round(self.shapes.values[i], 6) for i, n in enumerate(self.names)},
            "n_pulses": dict(self.n_pulses),
        }
        if self.channels:
            data["channel_shapes"] = {n: c.to_data() for n, c in self.channels.items()}
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any],
                  record: ConditionRecord | None = None) -> PulseTemplates:
        names = tuple(data["templates"])
        values = np.array([data["templates"][n] for n in names], dtype=np.float64)
        shapes = PulseShapes(values=values, t_first_ns=float(data["t_first_ns"]),
                             step_ns=float(data["step_ns"]))
        channels = {n: ChannelShapes.from_data(c)
                    for n, c in data.get("channel_shapes", {}).items()}
        return cls.build(names, shapes, {k: int(v) for k, v in data.get("n_pulses", {}).items()},
                         channels, record)


@nb.njit(cache=True, nogil=True)
def _profile_kernel(s, scale, tau, t_first, step, sums, weights):
    """Least-squares template nodes: sums += scale * s, weights += scale^2, each point split
    linearly (cloud-in-cell) between its two neighbouring grid nodes."""
    for i in range(s.shape[0]):
        a = scale[i]
        for k in range(s.shape[1]):
            x = (tau[i, k] - t_first) / step
            b = int(np.floor(x))
            if 0 <= b < sums.size - 1:
                f = x - b
                sums[b] += (1.0 - f) * a * s[i, k]
                weights[b] += (1.0 - f) * a * a
                sums[b + 1] += f * a * s[i, k]
                weights[b + 1] += f * a * a


def _profile(s: np.ndarray, scale: np.ndarray, tau: np.ndarray, config: TemplateConfig,
             n_points: int) -> tuple[np.ndarray, float]:
    """Least-squares template ``T`` of ``s_ik = scale_i T(tau_ik)`` on the grid.

    Gaps are interpolated; the result is moved to peak at 0 and scaled to 1.
    Returns it and the ``tau`` of its peak before the move.
    """
    sums = np.zeros(n_points)
    counts = np.zeros(n_points)
    _profile_kernel(np.ascontiguousarray(s), np.ascontiguousarray(scale, dtype=np.float64),
                    np.ascontiguousarray(tau), config.t_first_ns, config.step_ns, sums, counts)
    grid = config.t_first_ns + config.step_ns * np.arange(n_points)
    filled = counts > 0
    values = np.interp(grid, grid[filled], sums[filled] / counts[filled])
    edge = config.peak_fit_points
    j = int(np.clip(np.argmax(values), edge, n_points - 1 - edge))
    near = slice(j - config.peak_fit_points, j + config.peak_fit_points + 1)
    c2, c1, _ = np.polyfit(grid[near], values[near], 2)
    t_peak = -c1 / (2.0 * c2) if c2 < 0 else grid[j]
    centred = np.interp(grid + t_peak, grid, values, left=0.0, right=values[-1])
    return centred / centred.max(), float(t_peak)


def _uniform_phase_time(t_ns: np.ndarray, period: float, reliable: np.ndarray) -> np.ndarray:
    """Monotonic re-mapping of a time estimate so that its phase in the sampling period is uniform.

    The trigger is asynchronous to the sampling clock, so the true pulse phases
    are uniform. Any estimator monotonic in the true time (here the centroid,
    whose phase-dependent bias would smear the template) becomes, through the
    empirical distribution function ``F`` of its phase, the true time up to a
    constant: ``t = period * (floor(t / period) + F(phase))``. ``F`` is taken
    from the ``reliable`` (high signal-to-noise) pulses only.
    """
    cycles = np.floor(t_ns / period)
    phase = t_ns / period - cycles
    reference = np.sort(phase[reliable])
    rank = (np.searchsorted(reference, phase) + 0.5) / (reference.size + 1.0)
    return period * (cycles + rank)


def _centroid_ns(s: np.ndarray, k_max: np.ndarray, period: float, before: int,
                 after: int) -> np.ndarray:
    """Centroid (ns from sample 0) of the samples ``k_max - before .. k_max + after``."""
    k = np.arange(s.shape[1])
    window = (k[None, :] >= (k_max - before)[:, None]) & (k[None, :] <= (k_max + after)[:, None])
    weights = np.where(window, s, 0.0)
    return period * (weights * k).sum(axis=1) / weights.sum(axis=1)


def _phase_modulation(amplitude: np.ndarray, t_ns: np.ndarray, period: float, harmonics: int,
                      reliable: np.ndarray) -> np.ndarray:
    """Phase-periodic factor of the amplitudes: exp of a Fourier series fitted to log(A).

    Phase folding determines the template only up to a factor periodic in the
    sampling phase (it can move between the template and the amplitudes
    without changing the fit). Physics amplitudes do not depend on the phase of
    the sampling clock, so that factor is removed from the amplitudes. It is
    fitted on the ``reliable`` pulses, far above the selection threshold (near
    it, the selection on the maximum sample favours some phases).
    """
    phase = 2.0 * np.pi * np.mod(t_ns / period, 1.0)
    columns = [np.ones_like(phase)]
    for h in range(1, harmonics + 1):
        columns += [np.cos(h * phase), np.sin(h * phase)]
    design = np.column_stack(columns)
    log_amplitude = np.log(np.maximum(amplitude[reliable], 1e-9))
    coefficients = np.linalg.lstsq(design[reliable], log_amplitude, rcond=None)[0]
    return np.exp(design[:, 1:] @ coefficients[1:])


def _pulse_maxima(samples: np.ndarray, pedestal_adc: np.ndarray, parity: np.ndarray,
                  block: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Sample index and value (ADC above pedestal) of every waveform's maximum, computed in
    blocks of rows (a float64 copy of a large run's samples would dominate the memory)."""
    k_max = np.empty(samples.shape[0], np.int64)
    a_max = np.empty(samples.shape[0])
    for start in range(0, samples.shape[0], block):  # a few blocks per run
        rows = slice(start, start + block)
        s = samples[rows].astype(np.float64) - pedestal_adc[rows][:, parity]
        k_max[rows] = np.argmax(s, axis=1)
        a_max[rows] = s[np.arange(s.shape[0]), k_max[rows]]
    return k_max, a_max


def _spread_subset(rows: np.ndarray, n_max: int) -> np.ndarray:
    """At most ``n_max`` of ``rows``, evenly spread over them (deterministic).

    A calibration run is ordered (a cell scan visits the cells one after the
    other): the first ``n_max`` pulses of a large run would come from a few
    channels only, whose own shapes and time offsets would then make the template.
    """
    if rows.size <= n_max:
        return rows
    return rows[np.linspace(0, rows.size - 1, n_max).astype(np.int64)]


def derive_group_template(samples: np.ndarray, pedestal_adc: np.ndarray, noise_adc: np.ndarray,
                          timing: SadcTiming,
                          config: TemplateConfig = TemplateConfig()) -> tuple[np.ndarray, int]:
    """Template values on the config grid and the number of pulses used (pure core).

    ``samples`` (n, n_samples) raw counts of one group; ``pedestal_adc`` (n, 2)
    and ``noise_adc`` (n,) the per-channel references of those rows.
    """
    group = _derive_group(samples, pedestal_adc, noise_adc, timing, config)
    return group.values, group.n_pulses


@dataclass(frozen=True)
class _GroupTemplate:
    """A group's template, its shaper constants (None: the folded template was kept) and the
    selection of its clean pulses (row mask, maximum above the pedestal in ADC counts)."""

    values: np.ndarray
    n_pulses: int
    constants_ns: tuple[float, float] | None
    clean: np.ndarray
    a_max: np.ndarray


def _derive_group(samples: np.ndarray, pedestal_adc: np.ndarray, noise_adc: np.ndarray,
                  timing: SadcTiming, config: TemplateConfig) -> _GroupTemplate:
    period = timing.sample_period_ns
    parity = np.arange(timing.n_samples) % 2
    k_max, a_max = _pulse_maxima(samples, pedestal_adc, parity)
    clean = (a_max > config.min_amplitude_sigma * noise_adc) & (k_max > 1)
    clean &= (k_max < timing.n_samples - 2) & (samples.max(axis=1) < timing.adc_max)
    rows = _spread_subset(np.flatnonzero(clean), config.max_pulses)
    if rows.size < config.min_pulses:
        raise ValueError(f"only {rows.size} clean pulses (need {config.min_pulses})")
    s = samples[rows].astype(np.float64) - pedestal_adc[rows][:, parity]
    area = s.sum(axis=1)
    sample_t = np.arange(timing.n_samples) * period
    t_centroid = _centroid_ns(s, k_max[rows], period, config.centroid_before,
                              config.centroid_after)
    reliable = a_max[rows] > config.reliable_sigma * noise_adc[rows]
    if reliable.sum() < config.min_pulses:
        reliable[:] = True
    t_peak = _uniform_phase_time(t_centroid, period, reliable)
    n_points = round((config.t_last_ns - config.t_first_ns) / config.step_ns) + 1
    grid = config.t_first_ns + config.step_ns * np.arange(n_points)
    amplitude = area
    for _ in range(config.n_iterations):
        values, offset = _profile(s, amplitude, sample_t[None, :] - t_peak[:, None], config,
                                  n_points)
        t_peak += offset
        shape = np.interp(sample_t[None, :] - t_peak[:, None], grid, values, left=0.0, right=0.0)
        amplitude = (s * shape).sum(axis=1) / (shape * shape).sum(axis=1)
        amplitude /= _phase_modulation(amplitude, t_peak, period, config.phase_harmonics,
                                       reliable)
    values, _ = _profile(s, amplitude, sample_t[None, :] - t_peak[:, None], config, n_points)
    constants = None
    if config.method == "parametric":
        chosen = rows[np.argsort(-a_max[rows], kind="stable")[: config.fit_pulses]]
        rise, decay, chi2_model = fit_shaper_constants(samples[chosen], pedestal_adc[chosen],
                                                       noise_adc[chosen], timing, grid, values)
        model = shaper_pulse(grid, rise, decay)
        chi2_folded = _summed_chi2(values, samples[chosen], pedestal_adc[chosen],
                                   noise_adc[chosen], timing, grid)
        kuiper = _phase_nonuniformity(model, samples[chosen], pedestal_adc[chosen],
                                      noise_adc[chosen], timing, grid)
        log.info("template: rise %.2f decay %.2f chi2 model/folded %.3f "
                                       "kuiper %.3f", rise, decay, chi2_model / chi2_folded, kuiper)
        if (kuiper > config.max_phase_nonuniformity
                and chi2_model < config.max_chi2_ratio * chi2_folded):
            values, constants = model, (rise, decay)
    elif config.method != "folded":
        raise ValueError(f"unknown template method {config.method!r}")
    return _GroupTemplate(values, int(rows.size), constants, clean, a_max)


def derive_channel_shapes(samples: np.ndarray, pedestal_adc: np.ndarray, noise_adc: np.ndarray,
                          channel_index: np.ndarray, n_channels: int, timing: SadcTiming,
                          start_ns: tuple[float, float],
                          config: TemplateConfig = TemplateConfig(),
                          usable: np.ndarray | None = None) -> ChannelShapes:
    """Shaper constants of every channel from its own pulses (pure core).

    Rows as :func:`derive_group_template`, ``channel_index`` (n,) their dense
    channel; per channel, its ``channel_fit_pulses`` largest pulses above
    ``reliable_sigma`` noise sigmas (among ``usable`` rows: clean, unsaturated)
    are fitted by :func:`fit_shaper_constants` started at ``start_ns`` (rise,
    decay). Channels with fewer than ``channel_min_pulses`` get NaN.
    """
    _, a_max = _pulse_maxima(samples, pedestal_adc, np.arange(timing.n_samples) % 2)
    good = a_max > config.reliable_sigma * noise_adc
    if usable is not None:
        good &= usable
    return _channel_shapes(samples, pedestal_adc, noise_adc, channel_index, n_channels, timing,
                           start_ns, config, good, a_max)


def _channel_shapes(samples, pedestal_adc, noise_adc, channel_index, n_channels, timing,
                    start_ns, config, good, a_max) -> ChannelShapes:
    """:func:`derive_channel_shapes` given the selected rows ``good`` and the pulse maxima."""
    rows = np.flatnonzero(good)
    rows = rows[np.lexsort((-a_max[rows], channel_index[rows]))]  # by channel, largest first
    starts = np.searchsorted(channel_index[rows], np.arange(n_channels + 1))
    grid = config.t_first_ns + config.step_ns * np.arange(
        round((config.t_last_ns - config.t_first_ns) / config.step_ns) + 1)
    rise = np.full(n_channels, np.nan)
    decay = np.full(n_channels, np.nan)
    counts = np.diff(starts)
    for c in np.flatnonzero(counts >= config.channel_min_pulses):  # tens of channels
        chosen = rows[starts[c]: starts[c] + min(counts[c], config.channel_fit_pulses)]
        rise[c], decay[c], _ = fit_shaper_constants(samples[chosen], pedestal_adc[chosen],
                                                    noise_adc[chosen], timing, grid, None,
                                                    start_ns=start_ns)
    return ChannelShapes(rise, decay, np.minimum(counts, config.channel_fit_pulses))


def shaper_pulse(tau_ns: np.ndarray, rise_ns: float, decay_ns: float) -> np.ndarray:
    """``N [exp(-t/decay) - exp(-t/rise)]`` at ``tau`` ns from its peak (``t = tau + t_peak``,
    0 before the start), peak 1 at ``tau = 0``."""
    t_peak = rise_ns * decay_ns / (decay_ns - rise_ns) * np.log(decay_ns / rise_ns)
    norm = 1.0 / (np.exp(-t_peak / decay_ns) - np.exp(-t_peak / rise_ns))
    t = np.clip(np.asarray(tau_ns, dtype=np.float64) + t_peak, 0.0, None)
    return norm * (np.exp(-t / decay_ns) - np.exp(-t / rise_ns))


def fit_shaper_constants(samples: np.ndarray, pedestal_adc: np.ndarray, noise_adc: np.ndarray,
                         timing: SadcTiming, grid: np.ndarray, seed_values: np.ndarray | None,
                         start_ns: tuple[float, float] | None = None
                         ) -> tuple[float, float, float]:
    """Rise and decay constants (ns) of :func:`shaper_pulse` minimising the summed fit chi2
    (returned third).

    Each evaluation fits every pulse (amplitude and time) with the candidate
    shape through :func:`reconstruct_waveforms`; the start values are
    ``start_ns`` (rise, decay) or come from the seed template's width (rise ~
    FWHM / 10, decay ~ FWHM).
    """
    from scipy.optimize import minimize

    if start_ns is None:
        step = float(grid[1] - grid[0])
        above = np.flatnonzero(seed_values >= 0.5)
        fwhm = max(float(grid[above[-1]] - grid[above[0]]), 4 * step) if above.size else 40.0
        start_ns = (0.1 * fwhm, fwhm)

    def chi2(log_tau):
        rise, decay = np.exp(log_tau)
        if not (0.05 < rise < 0.9 * decay):
            return 1e30
        return _summed_chi2(shaper_pulse(grid, rise, decay), samples, pedestal_adc, noise_adc,
                            timing, grid)

    start = np.log(start_ns)
    best = minimize(chi2, start, method="Nelder-Mead",
                    options={"xatol": 1e-3, "fatol": 1e-3, "maxiter": 200,
                             "initial_simplex": [start, start + np.array([0.3, 0.0]),
                                                start + np.array([0.0, 0.3])]})
    rise, decay = np.exp(best.x)
    return float(rise), float(decay), float(best.fun)


# the template derivation judges shapes by the reconstruction's fit: the full-precision
# variant (fine time grid, Gauss-Newton for every pulse; the stage's defaults skip it below
# 20 sigma for speed, which would bias the phases and the chi2 of small pulses)
_PRECISE_FIT = WaveformConfig(scan_step_ns=2.5, scan_half_range_ns=12.5, newton_min_sigma=0.0)


def _phase_nonuniformity(values, samples, pedestal_adc, noise_adc, timing, grid) -> float:
    """Kuiper distance (N.H. Kuiper, Proc. KNAW A63 (1960) 38) between the pulses' sampling
    phases (peak time modulo the period, from the fit with template ``values``) and a uniform
    distribution on the circle."""
    shapes = PulseShapes(np.asarray(values, dtype=np.float64)[None, :], float(grid[0]),
                         float(grid[1] - grid[0]))
    fit = reconstruct_waveforms(samples, np.zeros(samples.shape[0], dtype=np.int64), pedestal_adc,
                                noise_adc, shapes, timing, _PRECISE_FIT)
    phase = np.sort(np.mod(fit.t_ns[np.isfinite(fit.t_ns)], timing.sample_period_ns))
    if phase.size == 0:
        return 0.0
    phase /= timing.sample_period_ns
    ecdf = np.arange(1, phase.size + 1) / phase.size
    # Kuiper's statistic V = D+ + D-: invariant under rotations of the circle of phases
    return float((ecdf - phase).max() + (phase - (ecdf - 1.0 / phase.size)).max())


def _summed_chi2(values, samples, pedestal_adc, noise_adc, timing, grid) -> float:
    """Summed chi2/ndf (each capped at 1e4) of the reconstruction's fit with template ``values``."""
    shapes = PulseShapes(np.asarray(values, dtype=np.float64)[None, :], float(grid[0]),
                         float(grid[1] - grid[0]))
    fit = reconstruct_waveforms(samples, np.zeros(samples.shape[0], dtype=np.int64), pedestal_adc,
                                noise_adc, shapes, timing, _PRECISE_FIT)
    return float(np.sum(np.minimum(fit.chi2_ndf, 1e4)))


def derive_pulse_templates(digits: ak.Array, layout: SadcLayout, pedestals: SadcPedestals,
                           timing: SadcTiming, groups: tuple[str, ...] = GROUPS,
                           config: TemplateConfig = TemplateConfig()) -> PulseTemplates:
    """Templates of ``groups`` from calibration-run digits (e.g. the ECAL cell scan), with
    per-channel shapes for the ``config.channel_groups`` whose template is the fitted model."""
    rows, counts, channels = [], {}, {}
    for group in groups:  # a handful of detector groups
        hits = sadc_hits(digits, group, layout)
        reference = pedestals.groups[group]
        pedestal_adc = reference.pedestal_adc[hits.channel_index]
        noise_adc = reference.channel_noise_adc[hits.channel_index]
        fit = _derive_group(hits.samples, pedestal_adc, noise_adc, timing, config)
        rows.append(fit.values)
        counts[group] = fit.n_pulses
        if group in config.channel_groups and fit.constants_ns is not None:
            good = fit.clean & (fit.a_max > config.reliable_sigma * noise_adc)
            channels[group] = _channel_shapes(
                hits.samples, pedestal_adc, noise_adc, hits.channel_index, layout.size(group),
                timing, fit.constants_ns, config, good, fit.a_max)
            own = channels[group].own
            log.info("%s: own shapes for %d of %d channels, rise %.2f +- %.2f, decay %.2f +- "
                     "%.2f ns", group, own.sum(), own.size,
                     np.mean(channels[group].rise_ns[own]), np.std(channels[group].rise_ns[own]),
                     np.mean(channels[group].decay_ns[own]),
                     np.std(channels[group].decay_ns[own]))
        elif group in config.channel_groups:
            log.info("%s: folded template kept, no per-channel shapes", group)
    shapes = PulseShapes(values=np.array(rows), t_first_ns=config.t_first_ns,
                         step_ns=config.step_ns)
    return PulseTemplates.build(tuple(groups), shapes, counts, channels)


def load_pulse_templates(db: ConditionsDB, setup: str, run: int) -> PulseTemplates:
    data, record = db.data(KIND, setup, run)
    return PulseTemplates.from_data(data, record)


def _width_at(grid: np.ndarray, values: np.ndarray, level: float) -> tuple[float, float]:
    above = np.flatnonzero(values >= level)
    return float(grid[above[0]]), float(grid[above[-1]])


def template_summary(templates: PulseTemplates) -> dict[str, Any]:
    """Rise time (10-90 %), FWHM and pulse counts per template (ns)."""
    grid = templates.shapes.t_first_ns + templates.shapes.step_ns * np.arange(
        templates.shapes.values.shape[1])
    summary = {}
    for i, name in enumerate(templates.names):
        values = templates.shapes.values[i]
        t10, _ = _width_at(grid, values, 0.1)
        t90, _ = _width_at(grid, values, 0.9)
        half_lo, half_hi = _width_at(grid, values, 0.5)
        summary[name] = {"n_pulses": templates.n_pulses.get(name, 0), "rise_10_90_ns": t90 - t10,
                         "fwhm_ns": half_hi - half_lo}
        channels = templates.channels.get(name)
        if channels is not None:
            own = channels.own
            summary[name]["channel_shapes"] = {
                "n_own": int(own.sum()), "n_channels": int(own.size),
                "rise_ns": _mean_rms(channels.rise_ns[own]),
                "decay_ns": _mean_rms(channels.decay_ns[own]),
                "pulses_per_channel_min": int(channels.n_pulses[own].min()) if own.any() else 0}
    return summary


def _mean_rms(values: np.ndarray) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "rms": float(np.std(values))} if values.size else {}


def plot_pulse_templates(templates: PulseTemplates, path: str | Path) -> Path:
    """The templates of every group against the time from the peak."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = templates.shapes.t_first_ns + templates.shapes.step_ns * np.arange(
        templates.shapes.values.shape[1])
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, name in enumerate(templates.names):
        label = f"{name} ({templates.n_pulses.get(name, 0)} pulses)"
        ax.plot(grid, templates.shapes.values[i], label=label)
    ax.set_xlabel("time from peak [ns]")
    ax.set_ylabel("normalised amplitude")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
