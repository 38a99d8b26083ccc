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
    return ndtri((np.arange(_N_QUANTILES) + 0.5) / _N_QUANTILES).astype(np.float32)


def sadc_time_to_peak_ns(rise_ns: np.ndarray, decay_ns: np.ndarray) -> np.ndarray:
    """Time from pulse start to maximum of the difference-of-exponentials shape."""
    return rise_ns * decay_ns / (decay_ns - rise_ns) * np.log(decay_ns / rise_ns)


def _sadc_norm(rise_ns: np.ndarray, decay_ns: np.ndarray) -> np.ndarray:
    t_peak = sadc_time_to_peak_ns(rise_ns, decay_ns)
    return 1.0 / (np.exp(-t_peak / decay_ns) - np.exp(-t_peak / rise_ns))


@nb.njit(cache=True, nogil=True)
def _adc_code(value, adc_max):
    """``value`` rounded to the nearest integer and clipped to [0, adc_max], as uint16.

    Truncation of ``value + 0.5`` after clipping equals ``floor(value + 0.5)`` clipped.
    """
    return np.uint16(min(max(value + 0.5, 0.0), adc_max))


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
def _sadc_kernel(e_in, e_pu, pu_dt, t_shift, noise_code, quantiles, gain, norm, pedestal,
                 noise, rise, decay, t_start, period, adc_max, out, n_saturated):
    """Samples of every (event, channel); ``pedestal`` (n_ch, n_samples) even/odd per sample."""
    n, n_ch = e_in.shape
    n_samples = out.shape[2]
    buf = np.empty(n_samples)
    top = np.uint16(adc_max)
    f_rise = np.exp(-period / rise)
    f_decay = np.exp(-period / decay)
    for i in range(n):
        has_pu = pu_dt[i] == pu_dt[i]
        n_sat = 0
        for c in range(n_ch):
            sigma = noise[c]
            code = noise_code[i, c]
            ped = pedestal[c]
            for s in range(n_samples):
                buf[s] = ped[s] + sigma * quantiles[code[s]]
            t0 = t_start[c] + t_shift[i, c]
            scale = gain[c] * norm[c]
            if e_in[i, c] > 0.0:
                _add_sadc_pulse(buf, e_in[i, c] * scale, t0, period, rise[c], decay[c],
                                f_rise[c], f_decay[c])
            if has_pu and e_pu[i, c] > 0.0:
                _add_sadc_pulse(buf, e_pu[i, c] * scale, t0 + pu_dt[i], period, rise[c],
                                decay[c], f_rise[c], f_decay[c])
            row = out[i, c]
            n_top = 0
            for s in range(n_samples):
                v = _adc_code(buf[s], adc_max)
                row[s] = v
                n_top += v == top
            n_sat += n_top > 0
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
        np.where(np.arange(config.n_samples) % 2 == 0, channels.pedestal_even_adc[:, None],
                 channels.pedestal_odd_adc[:, None]).astype(np.float64),
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
def _deposit_plane(u_mm, t_hit, charge, i, p, pitch, half_window, scale, sample_t, shaping,
                   amp, touched, touched_list, time_factor):
    """Add the charge of every hit of event ``i`` in plane ``p`` to the strip amplitudes.

    The charge cloud is Gaussian (``scale`` = 1 / (sqrt 2 sigma)); each strip gets
    its erf fraction times the CR-RC sample shape. Strips touched for the first
    time are appended to ``touched_list``; returns how many there are.
    """
    n_hits = u_mm.shape[1]
    n_strips = amp.shape[0]
    n_samples = sample_t.size
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
        erf_lo = math.erf((k_lo * pitch - u) * scale)
        for k in range(k_lo, k_hi):
            erf_hi = math.erf(((k + 1) * pitch - u) * scale)
            frac = 0.5 * (erf_hi - erf_lo)
            erf_lo = erf_hi
            for s in range(n_samples):
                amp[k, s] += q * frac * time_factor[s]
            if not touched[k]:
                touched[k] = True
                touched_list[n_touched] = k
                n_touched += 1
    return n_touched


@nb.njit(cache=True, nogil=True)
def _strip_signal_kernel(u_mm, t_hit, charge, pitch, n_strips, cloud_sigma, half_window,
                         sample_t, shaping, channel_of_strip, out_event, out_channel, out_amp):
    """Noiseless strip amplitudes of the hits of every event, merged per strip.

    ``u_mm`` (n, hits, 2 planes) local coordinate from the plane edge (NaN: no
    hit); ``t_hit`` (n, hits); ``charge`` (n, hits, 2). Writes rows sorted by
    event then strip channel and returns their number.
    """
    n, _, n_planes = u_mm.shape
    n_samples = sample_t.size
    amp = np.zeros((n_strips, n_samples))
    touched = np.zeros(n_strips, dtype=np.bool_)
    touched_list = np.empty(n_strips, dtype=np.int64)
    time_factor = np.empty(n_samples)
    scale = 1.0 / (math.sqrt(2.0) * cloud_sigma)
    m = 0
    for i in range(n):
        for p in range(n_planes):
            n_touched = _deposit_plane(u_mm, t_hit, charge, i, p, pitch, half_window, scale,
                                       sample_t, shaping, amp, touched, touched_list, time_factor)
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


@nb.njit(cache=True, nogil=True)
def _normal_below(rng, k):
    """Standard normal truncated to ``x < k`` (rejection: 0.13 % of draws for k = 3)."""
    while True:
        z = rng.standard_normal()
        if z < k:
            return z


@nb.njit(cache=True, nogil=True)
def _normal_above(rng, k):
    """Standard normal truncated to ``x > k``, exactly.

    For ``k >= 0.5`` the exponential-proposal rejection of C. P. Robert, Stat. Comput.
    5 (1995) 121 (rate ``(k + sqrt(k^2 + 4)) / 2``, 92 % accepted at k = 3); plain
    rejection from the normal below.
    """
    if k < 0.5:
        while True:
            z = rng.standard_normal()
            if z > k:
                return z
    rate = 0.5 * (k + math.sqrt(k * k + 4.0))
    while True:
        x = k - math.log(1.0 - rng.random()) / rate
        d = x - rate
        if rng.random() <= math.exp(-0.5 * d * d):
            return x


@nb.njit(cache=True, nogil=True)
def _noise_pass_samples(rng, k, cum_first, x):
    """Fill ``x`` (n_samples, sigma units) from the normal conditioned on ``max(x) > k``.

    The first sample above ``k`` is ``j`` with cumulative probabilities ``cum_first``;
    samples before it are truncated below ``k``, sample ``j`` above ``k``, later ones free.
    """
    n_samples = x.shape[0]
    u = rng.random()
    j = 0
    while j < n_samples - 1 and u > cum_first[j]:
        j += 1
    for s in range(j):
        x[s] = _normal_below(rng, k)
    x[j] = _normal_above(rng, k)
    for s in range(j + 1, n_samples):
        x[s] = rng.standard_normal()


def _first_pass_cdf(threshold_sigma: float, n_samples: int) -> tuple[float, np.ndarray]:
    """(probability ``1 - Phi(k)^n`` that a noise-only strip passes, cumulative P(first = j))."""
    phi = float(ndtr(threshold_sigma))
    p_pass = 1.0 - phi**n_samples
    return p_pass, np.cumsum(phi ** np.arange(n_samples) * (1.0 - phi) / p_pass)


@nb.njit(cache=True, nogil=True)
def _noise_only_kernel(rng, count, channels, threshold, cum_first, out_event, out_channel,
                       out_x):
    """Noise-only strips of every event, rows sorted by event then channel; returns their number."""
    n_ch = channels.shape[0]
    stamp = np.full(channels.max() + 1, -1, dtype=np.int64)
    m = 0
    for i in range(count.shape[0]):
        first = m
        for _ in range(count[i]):
            ch = channels[min(int(rng.random() * n_ch), n_ch - 1)]
            if stamp[ch] == i:
                continue
            stamp[ch] = i
            out_event[m] = i
            out_channel[m] = ch
            _noise_pass_samples(rng, threshold, cum_first, out_x[m])
            m += 1
        _sort_rows(out_channel, out_x, first, m)
    return m


@nb.njit(cache=True, nogil=True)
def _sort_rows(channel, rows, lo, hi):
    """Insertion sort of rows lo..hi-1 by channel (a few tens of rows, mostly in order)."""
    for a in range(lo + 1, hi):
        b = a
        while b > lo and channel[b - 1] > channel[b]:
            channel[b - 1], channel[b] = channel[b], channel[b - 1]
            for s in range(rows.shape[1]):
                rows[b - 1, s], rows[b, s] = rows[b, s], rows[b - 1, s]
            b -= 1


def noise_only_strips(n_events: int, channels: np.ndarray, threshold_sigma: float, n_samples: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Strips passing zero suppression on noise alone: (event, channel, x) with x in sigma units.

    A strip passes when the largest of its ``n_samples`` standard-normal noise
    values exceeds ``k = threshold_sigma``, probability ``1 - Phi(k)^n``. The
    number per event is binomial; the values are drawn exactly from the
    conditional distribution: the first exceeding sample ``j`` has probability
    ``Phi(k)^j (1 - Phi(k)) / (1 - Phi(k)^n)``, samples before it are normal
    truncated below ``k``, sample ``j`` normal above ``k``, later ones free.
    A strip drawn twice in one event is kept once. Rows are sorted by event, channel.
    (The zero-suppressed APV readout draws its noise strips the same way, inside
    :func:`_apv_zs_kernel`.)
    """
    p_pass, cum_first = _first_pass_cdf(threshold_sigma, n_samples)
    count = rng.binomial(channels.size, p_pass, size=n_events)
    total = int(count.sum())
    event = np.empty(total, dtype=np.int64)
    channel = np.empty(total, dtype=np.int64)
    x = np.empty((total, n_samples))
    m = _noise_only_kernel(rng, count, np.ascontiguousarray(channels, dtype=np.int64),
                           float(threshold_sigma), cum_first, event, channel, x)
    return event[:m], channel[:m], x[:m]


@nb.njit(cache=True, nogil=True)
def _apv_zs_kernel(rng, u_mm, t_hit, charge, pitch, n_strips, cloud_sigma, half_window, sample_t,
                   shaping, channel_of_strip, pedestal, noise, channels, noise_count, threshold,
                   cum_first, adc_max, out_event, out_channel, out_samples):
    """Zero-suppressed APV hits of one station in one pass; returns the number of rows.

    Per event: the noiseless amplitudes of the strips touched by the hits (as
    :func:`_strip_signal_kernel`), their noise (standard normals) and the
    threshold test ``max_j (signal + noise) > threshold sigma``; then
    ``noise_count[i]`` noise-only strip draws (:func:`noise_only_strips`),
    those landing on a strip with signal or drawn twice being dropped; rows are
    written as ADC codes (pedestal added, rounded, clipped) and sorted by channel.
    """
    n, _, n_planes = u_mm.shape
    n_samples = sample_t.size
    n_ch = channels.shape[0]
    amp = np.zeros((n_strips, n_samples))
    touched = np.zeros(n_strips, dtype=np.bool_)
    touched_list = np.empty(n_strips, dtype=np.int64)
    time_factor = np.empty(n_samples)
    value = np.empty(n_samples)
    x = np.empty(n_samples)
    stamp = np.full(pedestal.shape[0], -1, dtype=np.int64)
    scale = 1.0 / (math.sqrt(2.0) * cloud_sigma)
    m = 0
    for i in range(n):
        first = m
        for p in range(n_planes):
            n_touched = _deposit_plane(u_mm, t_hit, charge, i, p, pitch, half_window, scale,
                                       sample_t, shaping, amp, touched, touched_list, time_factor)
            for t in range(n_touched):
                k = touched_list[t]
                touched[k] = False
                ch = channel_of_strip[p, k]
                stamp[ch] = i
                sigma = noise[ch]
                peak = -np.inf
                for s in range(n_samples):
                    v = amp[k, s] + sigma * rng.standard_normal()
                    amp[k, s] = 0.0
                    value[s] = v
                    peak = max(peak, v)
                if peak > threshold * sigma:
                    out_event[m] = i
                    out_channel[m] = ch
                    for s in range(n_samples):
                        out_samples[m, s] = _adc_code(value[s] + pedestal[ch], adc_max)
                    m += 1
        for _ in range(noise_count[i]):
            ch = channels[min(int(rng.random() * n_ch), n_ch - 1)]
            if stamp[ch] == i:
                continue
            stamp[ch] = i
            _noise_pass_samples(rng, threshold, cum_first, x)
            out_event[m] = i
            out_channel[m] = ch
            sigma = noise[ch]
            ped = pedestal[ch]
            for s in range(n_samples):
                out_samples[m, s] = _adc_code(ped + sigma * x[s], adc_max)
            m += 1
        _sort_rows(out_channel, out_samples, first, m)
    return m


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
    pedestal = strips.dense(strips.pedestal_adc)
    noise = strips.dense(strips.noise_adc)
    if zero_suppression:
        p_pass, cum_first = _first_pass_cdf(config.zs_threshold_sigma, config.n_samples)
        count = rng.binomial(strips.channel.size, p_pass, size=n)
        capacity += int(count.sum())
        event = np.empty(capacity, dtype=np.int64)
        channel = np.empty(capacity, dtype=np.int64)
        samples = np.empty((capacity, config.n_samples), dtype=np.uint16)
        m = _apv_zs_kernel(rng, np.ascontiguousarray(u_mm, dtype=np.float64),
                           np.ascontiguousarray(t_hit_ns, dtype=np.float64),
                           np.ascontiguousarray(charge_adc, dtype=np.float64), station.pitch_mm,
                           station.n_strips, station.cloud_sigma_mm, half_window, sample_t,
                           config.shaping_ns, station.channel_of_strip, pedestal, noise,
                           np.ascontiguousarray(strips.channel, dtype=np.int64), count,
                           float(config.zs_threshold_sigma), cum_first, float(config.adc_max),
                           event, channel, samples)
        return event[:m], channel[:m], samples[:m]
    sig_event = np.empty(capacity, dtype=np.int64)
    sig_channel = np.empty(capacity, dtype=np.int64)
    sig_amp = np.empty((capacity, config.n_samples))
    m = _strip_signal_kernel(u_mm, t_hit_ns, charge_adc, station.pitch_mm, station.n_strips,
                             station.cloud_sigma_mm, half_window, sample_t, config.shaping_ns,
                             station.channel_of_strip, sig_event, sig_channel, sig_amp)
    event, channel, value = _all_strips(n, sig_event[:m], sig_channel[:m], sig_amp[:m], pedestal,
                                        noise, strips.channel, config, rng)
    samples = np.clip(np.floor(value + 0.5), 0, config.adc_max).astype(np.uint16)
    return event, channel, samples


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
