"""Digitisation: true deposits -> SADC waveforms and APV strip samples (raw blocks).

SADC (ECAL, HCAL, counters; ``daq.sadc``: 32 samples, 12.5 ns, 12 bits).
Every channel is read in every event. Sample ``s`` (time ``t_s = s T``) is

    A_s = round(P_{s mod 2} + sigma n_s + sum_hits g E f(t_s - t_hit)),  clipped to [0, 4095]

with per-channel true gain ``g`` (ADC counts of pulse amplitude per GeV),
even/odd pedestals ``P_0, P_1``, noise ``sigma`` and the pulse shape

    f(t) = N [exp(-t/tau_d) - exp(-t/tau_r)]  (t > 0),  N such that max f = 1,

which peaks at ``t_p = tau_r tau_d / (tau_d - tau_r) ln(tau_d / tau_r)``. An
in-time pulse starts at ``t_in = s_0 T - t_p + dt_chan + dt_event + dt_hit``
(``s_0 = daq.sadc.in_time_sample``, true channel offset, common trigger jitter,
per-hit jitter), so it peaks near sample 12; a pile-up pulse starts
``pileup_dt_ns`` later. Noise ``n_s`` is standard normal, drawn by inverse
CDF from 16-bit uniforms through a table of 2^16 normal quantiles (tails cut
at 4.3 sigma: immaterial for 1..3 counts of noise, and ten times faster); four
codes are cut from each full-range 64-bit random integer.

APV (MM1, MM2, GEM3, GEM4; ``daq.apv``: 3 samples, 25 ns). Per station and
plane, a crossing at local coordinate ``u`` (from the plane edge; strip ``k``
spans ``[k p, (k+1) p]``, i.e. centre ``(k + 0.5) p - size/2`` from the plane
centre) is kept with probability ``plane_efficiency``, smeared by
``intrinsic_sigma_mm`` and spread as a Gaussian charge cloud of width
``cloud_sigma_mm``; strip ``k`` gets the fraction

    F_k = [erf(((k+1) p - u) / (sqrt2 s_c)) - erf((k p - u) / (sqrt2 s_c))] / 2

of a Moyal-distributed total charge ``Q = Q_mpv + w X``, ``X = -ln(Z^2)``,
``Z ~ N(0, 1)`` (the Moyal approximation of the Landau distribution, J. E.
Moyal, Phil. Mag. 46 (1955) 263). Sample ``j`` at ``t_j = t_first + j T``
is ``Q F_k c(t_j - t_hit)`` with the CR-RC response ``c(t) = (t/tau) e^(1 - t/tau)``
(M. J. French et al., NIM A 466 (2001) 359, the APV25), plus the strip
pedestal and Gaussian noise. With zero suppression (physics and calibration
runs) a strip is sent when its pedestal-subtracted maximum exceeds
``zs_threshold_sigma`` times its noise; strips without signal pass by noise
alone with probability ``1 - Phi(k)^3``, and are drawn directly from that
conditional distribution instead of simulating every strip. Pedestal runs
send every strip.

Units: GeV, ns, mm, ADC counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import numba as nb
import numpy as np
from scipy.special import ndtr, ndtri

from recon.conditions import ConditionsDB
from recon.io.rawformat import Block, BlockType
from sim.deposits import Deposits, TrueEvents
from sim.true_constants import ApvStrips, SadcChannels, TrueConstants

__all__ = [
    "ApvConfig",
    "DigitizedEvents",
    "Digitizer",
    "SadcConfig",
    "SadcGroupReadout",
    "StationReadout",
    "apv_station_hits",
    "noise_only_strips",
    "sadc_samples",
    "sadc_time_to_peak_ns",
]

#: Deposits field carrying each SADC group's energies (interface of ``sim.deposits``).
_DEPOSIT_FIELD = {"ecal": "ecal_GeV", "hcal": "hcal_GeV", "counters": "counters_GeV"}
_N_QUANTILES = 1 << 16
_HITS = 2  # in-time particle and pile-up particle


@dataclass(frozen=True)
class SadcConfig:
    n_samples: int
    sample_period_ns: float
    adc_max: int
    in_time_sample: float
    event_time_jitter_ns: float
    hit_time_jitter_ns: float


@dataclass(frozen=True)
class ApvConfig:
    n_samples: int
    sample_period_ns: float
    adc_max: int
    shaping_ns: float
    first_sample_ns: float
    hit_time_jitter_ns: float
    plane_efficiency: float
    zs_threshold_sigma: float


@dataclass(frozen=True, eq=False)
class SadcGroupReadout:
    """Where the channels of one SADC source take their energies from."""

    name: str
    source: int
    deposit_field: str            # attribute of Deposits
    flat_index: np.ndarray        # (n_channels,) index into the flattened per-event deposit array


@dataclass(frozen=True, eq=False)
class StationReadout:
    """One APV tracker station: strip geometry, charge model and channel numbering."""

    detector: str
    source: int
    station: int                  # index into Deposits.track_x_mm / track_y_mm
    centre_mm: tuple[float, float]
    size_mm: float
    pitch_mm: float
    n_strips: int
    cloud_sigma_mm: float
    intrinsic_sigma_mm: float
    charge_mpv_adc: float
    charge_width_adc: float
    channel_of_strip: np.ndarray  # (2, n_strips) strip channel of (plane, strip)


@dataclass
class DigitizedEvents:
    """The raw blocks of a batch of events and the digitiser's per-event truth."""

    blocks: list[Block]
    t_event_ns: np.ndarray        # (n,) common trigger-time jitter applied to the event
    n_saturated: np.ndarray       # (n,) SADC channels with a sample at adc_max


@cache
def _normal_quantiles() -> np.ndarray:
    """Mid-point quantiles of the standard normal for 16-bit uniform codes."""
    return ndtri((np.arange(_N_QUANTILES) + 0.5) / _N_QUANTILES)


def sadc_time_to_peak_ns(rise_ns: np.ndarray, decay_ns: np.ndarray) -> np.ndarray:
    """Time from pulse start to maximum of the difference-of-exponentials shape."""
    return rise_ns * decay_ns / (decay_ns - rise_ns) * np.log(decay_ns / rise_ns)


def _sadc_norm(rise_ns: np.ndarray, decay_ns: np.ndarray) -> np.ndarray:
    t_peak = sadc_time_to_peak_ns(rise_ns, decay_ns)
    return 1.0 / (np.exp(-t_peak / decay_ns) - np.exp(-t_peak / rise_ns))


@nb.njit(cache=True, nogil=True)
def _add_sadc_pulse(buf, amplitude, t_start, period, rise, decay, f_rise, f_decay):
    """Add ``amplitude [exp(-t/decay) - exp(-t/rise)]`` sampled at ``s * period``.

    ``f_rise``, ``f_decay``: ``exp(-period/rise)``, ``exp(-period/decay)`` (per channel).
    """
    s0 = max(0, math.floor(t_start / period) + 1)
    if s0 >= buf.size:
        return
    dt = s0 * period - t_start
    e_decay = amplitude * math.exp(-dt / decay)
    e_rise = amplitude * math.exp(-dt / rise)
    for s in range(s0, buf.size):
        buf[s] += e_decay - e_rise
        e_decay *= f_decay
        e_rise *= f_rise


@nb.njit(cache=True, nogil=True)
def _sadc_kernel(e_in, e_pu, pu_dt, t_shift, noise_code, quantiles, gain, norm, ped_even,
                 ped_odd, noise, rise, decay, t_start, period, adc_max, out, n_saturated):
    n, n_ch = e_in.shape
    n_samples = out.shape[2]
    buf = np.empty(n_samples)
    f_rise = np.exp(-period / rise)
    f_decay = np.exp(-period / decay)
    for i in range(n):
        has_pu = pu_dt[i] == pu_dt[i]
        n_sat = 0
        for c in range(n_ch):
            sigma = noise[c]
            p_even = ped_even[c]
            p_odd = ped_odd[c]
            for s in range(0, n_samples - 1, 2):
                buf[s] = p_even + sigma * quantiles[noise_code[i, c, s]]
                buf[s + 1] = p_odd + sigma * quantiles[noise_code[i, c, s + 1]]
            if n_samples % 2:
                s = n_samples - 1
                buf[s] = p_even + sigma * quantiles[noise_code[i, c, s]]
            t0 = t_start[c] + t_shift[i, c]
            scale = gain[c] * norm[c]
            if e_in[i, c] > 0.0:
                _add_sadc_pulse(buf, e_in[i, c] * scale, t0, period, rise[c], decay[c],
                                f_rise[c], f_decay[c])
            if has_pu and e_pu[i, c] > 0.0:
                _add_sadc_pulse(buf, e_pu[i, c] * scale, t0 + pu_dt[i], period, rise[c],
                                decay[c], f_rise[c], f_decay[c])
            saturated = False
            for s in range(n_samples):
                v = min(max(math.floor(buf[s] + 0.5), 0.0), adc_max)
                out[i, c, s] = np.uint16(v)
                saturated |= v == adc_max
            n_sat += saturated
        n_saturated[i] += n_sat


def sadc_samples(e_in_GeV: np.ndarray, e_pileup_GeV: np.ndarray, pileup_dt_ns: np.ndarray,
                 t_event_ns: np.ndarray, channels: SadcChannels, config: SadcConfig,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """SADC samples (n, n_channels, n_samples) uint16 of one source, saturated channels (n,).

    ``e_in_GeV``/``e_pileup_GeV`` (n, n_channels): visible energies of the
    in-time and pile-up particle per channel; ``pileup_dt_ns`` (n,) NaN if
    none; ``t_event_ns`` (n,) common time shift of each event.
    """
    n, n_ch = e_in_GeV.shape
    t_peak = sadc_time_to_peak_ns(channels.rise_ns, channels.decay_ns)
    t_start = config.in_time_sample * config.sample_period_ns - t_peak + channels.time_offset_ns
    t_shift = t_event_ns[:, None] + config.hit_time_jitter_ns * rng.standard_normal((n, n_ch))
    # 16-bit uniform codes: four per full-range 64-bit integer (no rejection sampling)
    n_codes = n * n_ch * config.n_samples
    words = rng.integers(0, np.iinfo(np.uint64).max, (n_codes + 3) // 4, dtype=np.uint64,
                         endpoint=True)
    noise_code = words.view(np.uint16)[:n_codes].reshape(n, n_ch, config.n_samples)
    out = np.empty((n, n_ch, config.n_samples), dtype=np.uint16)
    n_saturated = np.zeros(n, dtype=np.int64)
    _sadc_kernel(
        np.ascontiguousarray(e_in_GeV, dtype=np.float64),
        np.ascontiguousarray(e_pileup_GeV, dtype=np.float64),
        np.asarray(pileup_dt_ns, dtype=np.float64),
        t_shift,
        noise_code,
        _normal_quantiles(),
        channels.gain_adc_per_GeV.astype(np.float64),
        _sadc_norm(channels.rise_ns, channels.decay_ns),
        channels.pedestal_even_adc.astype(np.float64),
        channels.pedestal_odd_adc.astype(np.float64),
        channels.noise_adc.astype(np.float64),
        channels.rise_ns.astype(np.float64),
        channels.decay_ns.astype(np.float64),
        t_start,
        float(config.sample_period_ns),
        float(config.adc_max),
        out,
        n_saturated,
    )
    return out, n_saturated


@nb.njit(cache=True, nogil=True)
def _crrc(t, tau):
    return t / tau * math.exp(1.0 - t / tau) if t > 0.0 else 0.0


@nb.njit(cache=True, nogil=True)
def _strip_signal_kernel(u_mm, t_hit, charge, pitch, n_strips, cloud_sigma, half_window,
                         sample_t, shaping, channel_of_strip, out_event, out_channel, out_amp):
    """Noiseless strip amplitudes of the hits of every event, merged per strip.

    ``u_mm`` (n, hits, 2 planes) local coordinate from the plane edge (NaN: no
    hit); ``t_hit`` (n, hits); ``charge`` (n, hits, 2). Writes rows sorted by
    event then strip channel and returns their number.
    """
    n, n_hits, n_planes = u_mm.shape
    n_samples = sample_t.size
    amp = np.zeros((n_strips, n_samples))
    touched = np.zeros(n_strips, dtype=np.bool_)
    touched_list = np.empty(n_strips, dtype=np.int64)
    time_factor = np.empty(n_samples)
    scale = 1.0 / (math.sqrt(2.0) * cloud_sigma)
    m = 0
    for i in range(n):
        for p in range(n_planes):
            n_touched = 0
            for h in range(n_hits):
                u = u_mm[i, h, p]
                q = charge[i, h, p]
                if not (q > 0.0 and u == u):
                    continue
                for s in range(n_samples):
                    time_factor[s] = _crrc(sample_t[s] - t_hit[i, h], shaping)
                k_centre = int(u / pitch)
                k_lo = max(0, k_centre - half_window)
                k_hi = min(n_strips, k_centre + half_window + 1)
                for k in range(k_lo, k_hi):
                    frac = 0.5 * (math.erf(((k + 1) * pitch - u) * scale)
                                  - math.erf((k * pitch - u) * scale))
                    for s in range(n_samples):
                        amp[k, s] += q * frac * time_factor[s]
                    if not touched[k]:
                        touched[k] = True
                        touched_list[n_touched] = k
                        n_touched += 1
            strips = np.sort(touched_list[:n_touched])
            for k in strips:
                out_event[m] = i
                out_channel[m] = channel_of_strip[p, k]
                for s in range(n_samples):
                    out_amp[m, s] = amp[k, s]
                    amp[k, s] = 0.0
                touched[k] = False
                m += 1
    return m


def noise_only_strips(n_events: int, channels: np.ndarray, threshold_sigma: float, n_samples: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Strips passing zero suppression on noise alone: (event, channel, x) with x in sigma units.

    A strip passes when the largest of its ``n_samples`` standard-normal noise
    values exceeds ``k = threshold_sigma``, probability ``1 - Phi(k)^n``. The
    number per event is binomial; the values are drawn exactly from the
    conditional distribution: the first exceeding sample ``j`` has probability
    ``Phi(k)^j (1 - Phi(k)) / (1 - Phi(k)^n)``, samples before it are normal
    truncated below ``k``, sample ``j`` normal above ``k``, later ones free.
    A strip drawn twice in one event is kept once.
    """
    phi = float(ndtr(threshold_sigma))
    tail = 1.0 - phi
    p_pass = 1.0 - phi**n_samples
    count = rng.binomial(channels.size, p_pass, size=n_events)
    event = np.repeat(np.arange(n_events, dtype=np.int64), count)
    channel = channels[rng.integers(0, channels.size, event.size)]
    key = event * (int(channels.max()) + 1) + channel
    _, first = np.unique(key, return_index=True)
    event, channel = event[first], channel[first]
    m = event.size
    p_first = phi ** np.arange(n_samples) * tail / p_pass
    j = np.minimum(np.searchsorted(np.cumsum(p_first), rng.random(m)), n_samples - 1)
    below = ndtri((1.0 - rng.random((m, n_samples))) * phi)   # truncated below k
    above = -ndtri((1.0 - rng.random(m)) * tail)               # truncated above k
    free = rng.standard_normal((m, n_samples))
    index = np.arange(n_samples)[None, :]
    x = np.where(index < j[:, None], below, free)
    x[np.arange(m), j] = above
    return event, channel, x


def _crossings(station: StationReadout, events: TrueEvents, config: ApvConfig,
               t_event_ns: np.ndarray, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local coordinates (n, 2 hits, 2 planes), hit times (n, 2) and charges (n, 2, 2)."""
    n = len(events)
    s = station.station
    u = np.empty((n, _HITS, 2))
    u[:, 0, 0] = events.intime.track_x_mm[:, s] - station.centre_mm[0]
    u[:, 0, 1] = events.intime.track_y_mm[:, s] - station.centre_mm[1]
    u[:, 1, 0] = events.pileup.track_x_mm[:, s] - station.centre_mm[0]
    u[:, 1, 1] = events.pileup.track_y_mm[:, s] - station.centre_mm[1]
    u += 0.5 * station.size_mm + station.intrinsic_sigma_mm * rng.standard_normal(u.shape)
    outside = ~((u >= 0.0) & (u < station.size_mm))
    u[outside] = np.nan
    u[np.isnan(events.pileup_dt_ns), 1, :] = np.nan
    dt = np.stack([np.zeros(n), np.nan_to_num(events.pileup_dt_ns)], axis=1)
    t_hit = t_event_ns[:, None] + dt
    t_hit += config.hit_time_jitter_ns * rng.standard_normal((n, _HITS))
    moyal = -np.log(np.square(rng.standard_normal(u.shape)))
    charge = np.maximum(station.charge_mpv_adc + station.charge_width_adc * moyal, 0.0)
    charge[rng.random(u.shape) >= config.plane_efficiency] = 0.0
    return u, t_hit, charge


def apv_station_hits(u_mm: np.ndarray, t_hit_ns: np.ndarray, charge_adc: np.ndarray,
                     station: StationReadout, strips: ApvStrips, config: ApvConfig,
                     rng: np.random.Generator, *, zero_suppression: bool = True
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """APV hits of one station: (event index, strip channel, samples uint16), sorted.

    Inputs as returned by the crossing model: local coordinates ``u_mm``
    (n, hits, 2), hit times ``t_hit_ns`` (n, hits) relative to the in-time
    particle and total charges ``charge_adc`` (n, hits, 2), zero if the plane
    was inefficient.
    """
    n = u_mm.shape[0]
    sample_t = config.first_sample_ns + config.sample_period_ns * np.arange(config.n_samples)
    half_window = math.ceil(4.0 * station.cloud_sigma_mm / station.pitch_mm) + 1
    capacity = u_mm.size * (2 * half_window + 1)
    sig_event = np.empty(capacity, dtype=np.int64)
    sig_channel = np.empty(capacity, dtype=np.int64)
    sig_amp = np.empty((capacity, config.n_samples))
    m = _strip_signal_kernel(u_mm, t_hit_ns, charge_adc, station.pitch_mm, station.n_strips,
                             station.cloud_sigma_mm, half_window, sample_t, config.shaping_ns,
                             station.channel_of_strip, sig_event, sig_channel, sig_amp)
    sig_event, sig_channel, sig_amp = sig_event[:m], sig_channel[:m], sig_amp[:m]
    pedestal = strips.dense(strips.pedestal_adc)
    noise = strips.dense(strips.noise_adc)
    fill = _zero_suppressed if zero_suppression else _all_strips
    event, channel, value = fill(n, sig_event, sig_channel, sig_amp, pedestal, noise,
                                 strips.channel, config, rng)
    samples = np.clip(np.floor(value + 0.5), 0, config.adc_max).astype(np.uint16)
    return event, channel, samples


def _zero_suppressed(n, sig_event, sig_channel, sig_amp, pedestal, noise, channels, config, rng):
    sig_noise = noise[sig_channel][:, None] * rng.standard_normal(sig_amp.shape)
    signal_over_ped = sig_amp + sig_noise
    keep = signal_over_ped.max(axis=1) > config.zs_threshold_sigma * noise[sig_channel]
    n_event, n_channel, x = noise_only_strips(n, channels, config.zs_threshold_sigma,
                                              config.n_samples, rng)
    width = int(channels.max()) + 1
    sig_key = sig_event * width + sig_channel          # sorted: the kernel emits in key order
    noise_key = n_event * width + n_channel
    at = np.minimum(np.searchsorted(sig_key, noise_key), max(sig_key.size - 1, 0))
    clash = sig_key[at] == noise_key if sig_key.size else np.zeros(noise_key.size, dtype=bool)
    n_event, n_channel, x = n_event[~clash], n_channel[~clash], x[~clash]
    event = np.concatenate([sig_event[keep], n_event])
    channel = np.concatenate([sig_channel[keep], n_channel])
    value = np.concatenate([signal_over_ped[keep], noise[n_channel][:, None] * x])
    value += pedestal[channel][:, None]
    order = np.argsort(event * width + channel, kind="stable")
    return event[order], channel[order], value[order]


def _all_strips(n, sig_event, sig_channel, sig_amp, pedestal, noise, channels, config, rng):
    n_ch = channels.size
    value = pedestal[channels] + noise[channels] * rng.standard_normal((n, config.n_samples, n_ch))
    value = np.ascontiguousarray(value.transpose(0, 2, 1))
    position = np.full(int(channels.max()) + 1, -1, dtype=np.int64)
    position[channels] = np.arange(n_ch)
    np.add.at(value, (sig_event, position[sig_channel]), sig_amp)
    event = np.repeat(np.arange(n, dtype=np.int64), n_ch)
    channel = np.tile(channels, n)
    return event, channel, value.reshape(n * n_ch, config.n_samples)


@dataclass(frozen=True, eq=False)
class Digitizer:
    """The SADC and APV readout of a setup for one run, from conditions and parameters."""

    sadc: SadcConfig
    apv: ApvConfig
    sadc_groups: tuple[SadcGroupReadout, ...]
    stations: tuple[StationReadout, ...]

    @classmethod
    def from_conditions(cls, db: ConditionsDB, setup: str, run: int,
                        params: dict[str, Any]) -> Digitizer:
        daq, _ = db.data("daq", setup, run)
        geometry = db.geometry(setup, run)
        channel_map = db.channel_map(setup, run)
        sp, ap = params["sadc"], params["apv"]
        sadc = SadcConfig(
            n_samples=int(daq["sadc"]["n_samples"]),
            sample_period_ns=float(daq["sadc"]["sample_period_ns"]),
            adc_max=int(daq["sadc"]["adc_max"]),
            in_time_sample=float(daq["sadc"]["in_time_sample"]),
            event_time_jitter_ns=float(sp["event_time_jitter_ns"]),
            hit_time_jitter_ns=float(sp["hit_time_jitter_ns"]),
        )
        apv = ApvConfig(
            n_samples=int(daq["apv"]["n_samples"]),
            sample_period_ns=float(daq["apv"]["sample_period_ns"]),
            adc_max=int(daq["apv"]["adc_max"]),
            shaping_ns=float(ap["shaping_ns"]),
            first_sample_ns=float(ap["first_sample_ns"]),
            hit_time_jitter_ns=float(ap["hit_time_jitter_ns"]),
            plane_efficiency=float(ap["plane_efficiency"]),
            zs_threshold_sigma=float(ap["zs_threshold_sigma"]),
        )
        groups = []
        for group in channel_map.groups:
            table = channel_map.sadc_fields[group.source]
            field = _DEPOSIT_FIELD[group.name]
            shape = _deposit_shape(field)
            index = np.ravel_multi_index(tuple(table[:, : len(group.fields)].T), shape)
            groups.append(SadcGroupReadout(group.name, group.source, field, index))
        stations = []
        for source, table in sorted(channel_map.apv_tables.items()):
            det_id = int(channel_map.apv_detector[source])
            st = geometry.tracker_by_id(det_id)
            tech = ap["technologies"][st.technology]
            channel_of_strip = np.full((2, st.n_strips), -1, dtype=np.int64)
            rows = np.flatnonzero(table[:, 0] >= 0)
            channel_of_strip[table[rows, 0], table[rows, 1]] = rows
            if (channel_of_strip < 0).any():
                raise ValueError(f"{st.name}: the channel map does not cover every strip")
            stations.append(StationReadout(
                detector=st.name, source=int(source), station=det_id, centre_mm=(st.x, st.y),
                size_mm=st.size, pitch_mm=st.pitch, n_strips=st.n_strips,
                cloud_sigma_mm=float(tech["cloud_sigma_mm"]),
                intrinsic_sigma_mm=float(tech["intrinsic_sigma_mm"]),
                charge_mpv_adc=float(tech["charge_mpv_adc"]),
                charge_width_adc=float(tech["charge_width_adc"]),
                channel_of_strip=channel_of_strip,
            ))
        return cls(sadc=sadc, apv=apv, sadc_groups=tuple(groups), stations=tuple(stations))

    def digitize(self, events: TrueEvents, constants: TrueConstants, rng: np.random.Generator,
                 *, zero_suppression: bool = True) -> DigitizedEvents:
        """Raw blocks (SADC sources, then APV stations) of ``events``."""
        n = len(events)
        t_event = self.sadc.event_time_jitter_ns * rng.standard_normal(n)
        blocks = []
        n_saturated = np.zeros(n, dtype=np.int64)
        for group in self.sadc_groups:
            e_in = _per_channel(getattr(events.intime, group.deposit_field), group.flat_index)
            e_pu = _per_channel(getattr(events.pileup, group.deposit_field), group.flat_index)
            channels = constants.sadc[group.name]
            samples, saturated = sadc_samples(e_in, e_pu, events.pileup_dt_ns, t_event, channels,
                                              self.sadc, rng)
            n_saturated += saturated
            n_ch = len(channels)
            blocks.append(Block(
                source=group.source, type=BlockType.SADC,
                event_index=np.repeat(np.arange(n), n_ch), channel=np.tile(channels.channel, n),
                samples=samples.reshape(n * n_ch, self.sadc.n_samples),
            ))
        for station in self.stations:
            u, t_hit, charge = _crossings(station, events, self.apv, t_event, rng)
            event, channel, samples = apv_station_hits(u, t_hit, charge, station,
                                                       constants.apv[station.detector], self.apv,
                                                       rng, zero_suppression=zero_suppression)
            blocks.append(Block(source=station.source, type=BlockType.APV, event_index=event,
                                channel=channel, samples=samples))
        return DigitizedEvents(blocks=blocks, t_event_ns=t_event, n_saturated=n_saturated)


def _per_channel(deposits: np.ndarray, flat_index: np.ndarray) -> np.ndarray:
    """(n, ...) per-event deposit array -> (n, n_channels) in channel order."""
    n = deposits.shape[0]
    return deposits.reshape(n, int(np.prod(deposits.shape[1:])))[:, flat_index]


def _deposit_shape(field: str) -> tuple[int, ...]:
    return getattr(Deposits.zeros(0), field).shape[1:]
