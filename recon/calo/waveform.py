"""SADC waveform reconstruction: pedestals, amplitude, time, fit quality and flags.

One numba kernel processes every SADC channel of a chunk, given as a
``(n_channels, n_samples)`` uint16 array of raw counts (pedestal included).
Per channel:

1. **Pedestals.** The two interleaved ADCs of the SADC give even and odd
   samples different pedestals. They are the means of the even and odd samples
   among the first ``n_pedestal_samples`` (pre-pulse) samples. If those
   samples are not flat (a sample further than ``pedestal_flatness_sigma``
   noise sigmas from its parity mean) or their mean moved by more than
   ``pedestal_shift_sigma`` noise sigmas from the pedestal-run reference (a
   pulse sits early), the reference values of the ``sadc_pedestals``
   condition are used instead (flag ``PEDESTAL_FALLBACK``). When they agree
   with the references within ``pedestal_agree_sigma`` times their statistical
   error, the references are used too (less noise, no flag).
2. **Maximum.** ``amplitude_max_adc`` is the largest pedestal-subtracted sample.
3. **Template fit.** The pulse is modelled as ``s_k = A T(t_k - t_peak)`` with
   ``T`` the detector's pulse template (peak 1 at ``tau = 0``, condition
   ``pulse_template``). For a grid of peak times around the maximum sample
   the amplitude is the linear least-squares solution
   ``A = sum(s_k T_k) / sum(T_k^2)`` and ``chi2 = (sum s_k^2 - A sum s_k T_k) / sigma^2``
   over the fit window (``fit_samples_before``/``after`` the maximum,
   saturated samples excluded, so a saturated pulse is extrapolated by its
   template). The chi2 minimum of the grid is refined by a parabola through
   its two neighbours, then (above ``newton_min_sigma``) by Gauss-Newton steps
   on amplitude and time; the amplitude is that of the refined time.
   ``t_ns`` is the peak time relative to the trigger: the fitted peak time
   minus ``in_time_sample * sample_period_ns`` (0 for an in-time pulse).
4. **No signal.** Below ``signal_threshold_sigma`` noise sigmas the channel
   has no pulse: its amplitude is fitted at the nominal in-time position (an
   unbiased estimate of zero, unlike the maximum of noise) and ``t_ns`` is NaN.
5. **Flags** (bitmask :class:`WaveformFlag`): ``SATURATED`` any sample at
   ``adc_max``; ``PILEUP`` a sample exceeds the fitted pulse by more than
   ``pileup_threshold_sigma`` sigmas plus ``pileup_threshold_fraction`` of
   the amplitude (a second pulse); ``PEDESTAL_FALLBACK``; ``NO_SIGNAL``;
   ``AT_WINDOW_EDGE`` the maximum is on the first or last sample.

Units: ADC counts, ns. The SADC facts (samples, period, ``adc_max``, in-time
sample) come from the ``daq`` condition. The grid-and-parabola fit follows the
usual digital pulse-shape analysis of sampling-ADC calorimeters (e.g. the
COMPASS/NA64 SADC reconstruction; W.E. Cleland, E.G. Stern, NIM A338 (1994)
467 for optimal-filter amplitude estimation).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag
from typing import Any, NamedTuple

import numba as nb
import numpy as np

__all__ = [
    "PulseShapes",
    "SadcTiming",
    "WaveformConfig",
    "WaveformFlag",
    "WaveformResult",
    "amplitude_noise_factor",
    "reconstruct_waveforms",
]


_FAST = {"contract", "reassoc", "arcp", "nsz"}  # no "nnan"/"ninf": NaN references are meaningful


class WaveformFlag(IntFlag):
    """Bits of the per-channel ``flags`` column."""

    SATURATED = 1
    PILEUP = 2
    PEDESTAL_FALLBACK = 4
    NO_SIGNAL = 8
    AT_WINDOW_EDGE = 16


@dataclass(frozen=True)
class SadcTiming:
    """SADC digitiser facts from the ``daq`` condition (``data["sadc"]``)."""

    n_samples: int
    sample_period_ns: float
    adc_max: int
    in_time_sample: int

    @classmethod
    def from_daq(cls, daq: dict[str, Any]) -> SadcTiming:
        sadc = daq["sadc"]
        return cls(
            n_samples=int(sadc["n_samples"]),
            sample_period_ns=float(sadc["sample_period_ns"]),
            adc_max=int(sadc["adc_max"]),
            in_time_sample=int(sadc["in_time_sample"]),
        )

    @property
    def nominal_peak_ns(self) -> float:
        """Peak time of an in-time pulse from the first sample."""
        return self.in_time_sample * self.sample_period_ns


@dataclass(frozen=True)
class WaveformConfig:
    """Settings of the waveform reconstruction (sample counts, noise sigmas, ns)."""

    n_pedestal_samples: int = 6
    pedestal_flatness_sigma: float = 5.0
    pedestal_shift_sigma: float = 8.0
    pedestal_agree_sigma: float = 3.0
    signal_threshold_sigma: float = 5.0
    fit_samples_before: int = 3
    fit_samples_after: int = 5
    scan_half_range_ns: float = 10.0
    scan_step_ns: float = 5.0
    refine_step_ns: float = 2.5
    n_newton: int = 4
    newton_tolerance_ns: float = 0.01
    newton_min_sigma: float = 20.0
    pileup_threshold_sigma: float = 6.0
    pileup_threshold_fraction: float = 0.08


@dataclass(frozen=True)
class PulseShapes:
    """Pulse templates ``T(tau)`` on a uniform grid, one row per template.

    ``values[m, i]`` is template ``m`` at ``tau = t_first_ns + i * step_ns``
    (time from the pulse peak); each row peaks at 1 at ``tau = 0``; zero outside.
    """

    values: np.ndarray
    t_first_ns: float
    step_ns: float

    def evaluate(self, template: int, tau_ns: np.ndarray) -> np.ndarray:
        grid = self.t_first_ns + self.step_ns * np.arange(self.values.shape[1])
        return np.interp(tau_ns, grid, self.values[template], left=0.0, right=0.0)


@dataclass
class WaveformResult:
    """Per-channel outputs (ADC counts above pedestal, ns relative to the trigger)."""

    pedestal_even_adc: np.ndarray
    pedestal_odd_adc: np.ndarray
    amplitude_max_adc: np.ndarray
    amplitude_adc: np.ndarray
    t_ns: np.ndarray
    chi2_ndf: np.ndarray
    flags: np.ndarray


def amplitude_noise_factor(shapes: PulseShapes, rows: np.ndarray, timing: SadcTiming,
                           config: WaveformConfig = WaveformConfig()) -> np.ndarray:
    """Noise of a fitted amplitude per unit of sample noise, for templates ``rows``.

    The least-squares amplitude at the nominal in-time position,
    ``A = sum s_k T_k / sum T_k^2`` over the fit window, has the noise
    ``sigma / sqrt(sum T_k^2)`` for white sample noise ``sigma``.
    """
    table = _scan_table(shapes, timing, config)
    j_zero = table.shape[1] // 2
    return 1.0 / np.sqrt((table[np.asarray(rows), j_zero] ** 2).sum(axis=-1))


def _scan_shifts_ns(config: WaveformConfig) -> np.ndarray:
    n_half = round(config.scan_half_range_ns / config.scan_step_ns)
    return config.scan_step_ns * np.arange(-n_half, n_half + 1, dtype=np.float64)


def _scan_table(shapes: PulseShapes, timing: SadcTiming, config: WaveformConfig) -> np.ndarray:
    """``table[m, j, r] = T_m((r - before) * period - shift_j)``, the fit grid of every template."""
    offsets = np.arange(-config.fit_samples_before, config.fit_samples_after + 1)
    tau = offsets[None, :] * timing.sample_period_ns - _scan_shifts_ns(config)[:, None]
    # linear interpolation of every template at once (as PulseShapes.evaluate), zero outside
    n_points = shapes.values.shape[1]
    x = (tau - shapes.t_first_ns) / shapes.step_ns
    inside = (x >= 0.0) & (x <= n_points - 1)
    i = np.clip(np.floor(x).astype(np.int64), 0, n_points - 2)
    f = np.where(inside, x - i, 0.0)
    values = np.asarray(shapes.values, dtype=np.float64)
    table = values[:, i] * (1.0 - f) + values[:, i + 1] * f
    # C order for the kernel (advanced indexing leaves the template axis innermost in memory)
    return np.ascontiguousarray(np.where(inside, table, 0.0))


@nb.njit(cache=True, nogil=True, fastmath=_FAST)
def _template_at(pulse, m, tau, t_first, inv_step):
    x = (tau - t_first) * inv_step
    if x < 0.0 or x >= pulse.shape[1] - 1:
        return 0.0
    i = int(x)
    f = x - i
    return pulse[m, i, 0] + f * (pulse[m, i + 1, 0] - pulse[m, i, 0])


@nb.njit(cache=True, nogil=True, fastmath=_FAST)
def _pedestals(samples, i, n_ped, ref_even, ref_odd, noise, flat_sigma, shift_sigma,
               agree_even, agree_odd):
    """Even and odd pedestals of waveform ``i`` (ADC) and whether the fallback was used.

    The pre-sample means (``n_ped`` samples, half per parity) are replaced by
    the pedestal-run references (a) as a fallback when the pre-samples are not
    flat or moved by more than ``shift_sigma`` noise sigmas, and (b) when they
    agree with the references within ``agree_sigma`` times their own
    statistical error ``noise / sqrt(n_ped / 2)``: a per-event mean of 3
    samples per parity carries ``sigma / sqrt(3)`` of noise into every sample
    of the fit window (fully correlated), the dominant electronics-noise term
    of a 72-cell ECAL sum. A genuine pedestal shift (beyond ``agree_sigma``)
    still uses the event's own estimate. ``agree_even``/``agree_odd`` are
    ``agree_sigma / sqrt(n)`` of each parity (precomputed; 0 disables (b)).
    """
    sum_e = 0.0
    sum_o = 0.0
    for k in range(0, n_ped, 2):
        sum_e += samples[i, k]
    for k in range(1, n_ped, 2):
        sum_o += samples[i, k]
    ped_e = sum_e / ((n_ped + 1) // 2)
    ped_o = sum_o / (n_ped // 2) if n_ped > 1 else ped_e
    if np.isnan(ref_even) or np.isnan(ref_odd):
        return ped_e, ped_o, False
    worst = 0.0
    for k in range(0, n_ped, 2):
        worst = max(worst, abs(samples[i, k] - ped_e))
    for k in range(1, n_ped, 2):
        worst = max(worst, abs(samples[i, k] - ped_o))
    shifted = max(abs(ped_e - ref_even), abs(ped_o - ref_odd)) > shift_sigma * noise
    if worst > flat_sigma * noise or shifted:
        return ref_even, ref_odd, True
    if abs(ped_e - ref_even) < agree_even * noise and abs(ped_o - ref_odd) < agree_odd * noise:
        # the pre-samples agree with the reference within their own statistical error:
        # the (much more precise) reference is the better estimate of this event's pedestal
        return ref_even, ref_odd, False
    return ped_e, ped_o, False


@nb.njit(cache=True, nogil=True, fastmath=_FAST)
def _fit_on_grid(s, usable, first, last, centre, before, table, m, j):
    """Least squares at grid shift ``j``: (A, sum s^2 - A sum sT, n used)."""
    s_t = 0.0
    t_t = 0.0
    s_s = 0.0
    n = 0
    for k in range(first, last + 1):
        if usable[k]:
            t = table[m, j, k - centre + before]
            s_t += s[k] * t
            t_t += t * t
            s_s += s[k] * s[k]
            n += 1
    if t_t <= 0.0:
        return 0.0, np.inf, n
    a = s_t / t_t
    return a, s_s - a * s_t, n


@nb.njit(cache=True, nogil=True, fastmath=_FAST)
def _scan(s, usable, first, last, centre, before, table, table_norm, m, full_window, chi2):
    """Fill ``chi2`` over the shift grid; return the index of its minimum.

    With the whole window usable (no saturation, not clipped at the ends) the
    template norms are precomputed and only ``sum s_k T_k`` is evaluated.
    """
    best = 0
    if not full_window:
        for j in range(chi2.size):
            chi2[j] = _fit_on_grid(s, usable, first, last, centre, before, table, m, j)[1]
            if chi2[j] < chi2[best]:
                best = j
        return best
    width = last - first + 1
    s_s = 0.0
    for r in range(width):
        s_s += s[first + r] * s[first + r]
    for j in range(chi2.size):
        s_t = 0.0
        for r in range(width):
            s_t += s[first + r] * table[m, j, r]
        chi2[j] = s_s - s_t * s_t / table_norm[m, j]
        if chi2[j] < chi2[best]:
            best = j
    return best


@nb.njit(cache=True, nogil=True, fastmath=_FAST)
def _refine(best, chi2, shifts):
    """Parabolic interpolation of the chi2 minimum between grid points."""
    if best == 0 or best == shifts.size - 1:
        return shifts[best]
    c_m, c_0, c_p = chi2[best - 1], chi2[best], chi2[best + 1]
    curvature = c_m - 2.0 * c_0 + c_p
    if curvature <= 0.0:
        return shifts[best]
    step = shifts[1] - shifts[0]
    return shifts[best] + 0.5 * step * (c_m - c_p) / curvature


@nb.njit(cache=True, nogil=True, fastmath=_FAST)
def _gauss_newton(s, usable, first, last, centre, shift, period, pulse, m, t_first,
                  inv_step, max_step, n_iterations, tolerance):
    """Gauss-Newton refinement of amplitude and peak shift: (A, shift, resid, n).

    Model ``s_k = A T(tau_k)``, ``tau_k = (k - centre) P - shift``; Jacobian
    ``[T_k, -A T'_k]`` (``T'`` from the derivative table); the 2x2 normal
    equations are solved per iteration, the shift step clipped to
    ``max_step``; stops when the step is below ``tolerance`` ns. Every sample
    of the window sits at the same fractional grid position (the grid step
    divides the period): one interpolation weight per iteration.
    """
    stride = round(period * inv_step)
    n_points = pulse.shape[1]
    a = 0.0
    converged = False
    for it in range(n_iterations + 1):
        x = ((first - centre) * period - shift - t_first) * inv_step
        i0 = int(np.floor(x))
        f = x - i0
        s_t = 0.0
        t_t = 0.0
        s_d = 0.0
        t_d = 0.0
        d_d = 0.0
        s_s = 0.0
        n = 0
        for k in range(first, last + 1):
            if usable[k]:
                i = i0 + (k - first) * stride
                t = 0.0
                d = 0.0
                if 0 <= i < n_points - 1:
                    t = pulse[m, i, 0] + f * (pulse[m, i + 1, 0] - pulse[m, i, 0])
                    d = pulse[m, i, 1] + f * (pulse[m, i + 1, 1] - pulse[m, i, 1])
                s_t += s[k] * t
                t_t += t * t
                s_d += s[k] * d
                t_d += t * d
                d_d += d * d
                s_s += s[k] * s[k]
                n += 1
        if t_t <= 0.0:
            return 0.0, shift, 0.0, n
        a = s_t / t_t
        if it == n_iterations or converged:
            break
        # with A at its optimum for this shift: d chi2/d shift = 2 A (s_d - A t_d),
        # Gauss-Newton curvature A^2 (d_d - t_d^2 / t_t) (A profiled out)
        curvature = a * a * (d_d - t_d * t_d / t_t)
        if curvature <= 0.0:
            break
        step = -a * (s_d - a * t_d) / curvature
        step = min(max(step, -max_step), max_step)
        shift += step
        converged = abs(step) < tolerance  # one more pass: the sums at the final shift
    return a, shift, s_s - a * s_t, n


@nb.njit(cache=True, nogil=True, fastmath=_FAST)
def _has_second_pulse(s, usable, a, t_peak, period, pulse, m, t_first, inv_step, threshold):
    """Whether any sample exceeds the fitted pulse by more than ``threshold``."""
    for k in range(s.size):
        # the fitted pulse is >= 0, so only samples above the threshold can exceed it by that much
        if usable[k] and s[k] > threshold and (
            s[k] - a * _template_at(pulse, m, k * period - t_peak, t_first, inv_step) > threshold
        ):
            return True
    return False


@nb.njit(cache=True, nogil=True, fastmath=_FAST)
def _raw_maxima(samples, i):
    """Largest raw even and odd samples of waveform ``i`` (ADC counts, integers).

    Accumulated in the samples' own integer type (no widening per sample).
    """
    row = samples[i]
    max_e = row[0]
    max_o = row[1] if row.size > 1 else row[0]
    for k in range(2, row.size - 1, 2):
        max_e = max(max_e, row[k])
        max_o = max(max_o, row[k + 1])
    if row.size & 1:
        max_e = max(max_e, row[row.size - 1])
    return np.int64(max_e), np.int64(max_o)


@nb.njit(cache=True, nogil=True, fastmath=_FAST)
def _subtract(samples, i, ped_e, ped_o, s):
    """Pedestal-subtracted samples into ``s``; index and value of their maximum."""
    n_samples = s.size
    for k in range(0, n_samples, 2):
        s[k] = samples[i, k] - ped_e
    for k in range(1, n_samples, 2):
        s[k] = samples[i, k] - ped_o
    k_max = 0
    s_max = s[0]
    for k in range(n_samples):
        if s[k] > s_max:
            s_max = s[k]
            k_max = k
    return k_max, s_max


@nb.njit(cache=True, nogil=True, fastmath=_FAST)
def _fit_quiet(samples, i, ped_e, ped_o, first, last, table_first, table, norm, m, j):
    """Least squares of a channel without a pulse at grid shift ``j`` over samples
    ``first..last`` (all usable), ``norm`` the precomputed ``sum T^2`` there, straight from
    the raw samples: (A, sum s^2 - A sum sT, n)."""
    s_t = 0.0
    s_s = 0.0
    for k in range(first, last + 1):
        v = samples[i, k] - (ped_o if k & 1 else ped_e)
        s_t += v * table[m, j, k - table_first]
        s_s += v * v
    if norm <= 0.0:
        return 0.0, np.inf, last - first + 1
    a = s_t / norm
    return a, s_s - a * s_t, last - first + 1


class _Settings(NamedTuple):
    """Scalars of the kernel (a numba-typed record)."""

    period: float
    adc_max: int
    in_time_sample: int
    n_ped: int
    flat_sigma: float
    shift_sigma: float
    agree_even: float
    agree_odd: float
    signal_sigma: float
    before: int
    after: int
    refine_step: float
    pileup_sigma: float
    pileup_fraction: float
    n_newton: int
    newton_tolerance: float
    newton_min_sigma: float
    t_first: float
    inv_step: float


@nb.njit(cache=True, nogil=True, fastmath=_FAST)
def _fit_pulse(s, usable, centre, k_max, s_max, n_samples, m, noise, saturated, cfg, pulse,
               table, table_norm, shifts, chi2):
    """Template fit of a pulse around ``centre``: (A, t_peak_ns, resid, n, flags).

    Gauss-Newton refinement only for pulses above ``newton_min_sigma`` noise
    sigmas (or saturated): below, the noise (> 3 % of A) dominates the
    ~0.5 % amplitude error of the grid-and-parabola time.
    """
    n_newton = cfg.n_newton if (saturated or s_max >= cfg.newton_min_sigma * noise) else 0
    flags = 16 if k_max == 0 or k_max == n_samples - 1 else 0
    first = max(centre - cfg.before, 0)
    last = min(centre + cfg.after, n_samples - 1)
    full_window = not saturated and first == centre - cfg.before and last == centre + cfg.after
    best = _scan(s, usable, first, last, centre, cfg.before, table, table_norm, m, full_window,
                 chi2)
    a, shift, resid, n = _gauss_newton(s, usable, first, last, centre,
                                       _refine(best, chi2, shifts), cfg.period, pulse, m,
                                       cfg.t_first, cfg.inv_step, cfg.refine_step,
                                       n_newton, cfg.newton_tolerance)
    t_peak = centre * cfg.period + shift
    threshold = cfg.pileup_sigma * noise + cfg.pileup_fraction * abs(a)
    if _has_second_pulse(s, usable, a, t_peak, cfg.period, pulse, m, cfg.t_first, cfg.inv_step,
                         threshold):
        flags |= 2
    return a, t_peak, resid, n, flags


@nb.njit(cache=True, nogil=True, fastmath=_FAST)
def _waveform_kernel(samples, template_index, template_stride, template_by_channel, channel_index,
                     ref_ped, ref_noise, pulse, table, table_norm, shifts, cfg, out_ped_e,
                     out_ped_o, out_amax, out_amp, out_t, out_chi2, out_flags):
    """Every channel ``i``: template row ``template_index[channel_index[i]]`` if
    ``template_by_channel`` else ``template_index[i * template_stride]``, references
    ``ref_ped[channel_index[i]]`` (even, odd) and ``ref_noise[channel_index[i]]``."""
    n_samples = samples.shape[1]
    s = np.empty(n_samples)
    usable = np.ones(n_samples, dtype=np.bool_)
    chi2 = np.empty(shifts.size)
    j_zero = shifts.size // 2
    k0 = cfg.in_time_sample
    first0 = max(k0 - cfg.before, 0)
    last0 = min(k0 + cfg.after, n_samples - 1)
    quiet_norm = np.zeros(table.shape[0])  # sum T^2 of each template over the in-time window
    for t_row in range(table.shape[0]):
        for k in range(first0, last0 + 1):
            quiet_norm[t_row] += table[t_row, j_zero, k - k0 + cfg.before] ** 2
    for i in range(samples.shape[0]):
        c = channel_index[i]
        m = template_index[c] if template_by_channel else template_index[i * template_stride]
        noise = ref_noise[c]
        ped_e, ped_o, fallback = _pedestals(samples, i, cfg.n_ped, ref_ped[c, 0], ref_ped[c, 1],
                                            noise, cfg.flat_sigma, cfg.shift_sigma,
                                            cfg.agree_even, cfg.agree_odd)
        flags = 4 if fallback else 0
        out_ped_e[i] = ped_e
        out_ped_o[i] = ped_o
        max_e, max_o = _raw_maxima(samples, i)
        if max(max_e - ped_e, max_o - ped_o) < cfg.signal_sigma * noise and max(
                max_e, max_o) < cfg.adc_max:
            # no pulse (the majority of channels, ~75 % in a 100 GeV shower event): the
            # amplitude at the nominal in-time position, only the fit window subtracted
            a, resid, n = _fit_quiet(samples, i, ped_e, ped_o, first0, last0, k0 - cfg.before,
                                     table, quiet_norm[m], m, j_zero)
            out_amax[i] = max(max_e - ped_e, max_o - ped_o)
            out_amp[i] = a
            out_t[i] = np.nan
            out_chi2[i] = resid / (noise * noise) / max(n - 1, 1)
            out_flags[i] = flags | 8
            continue
        k_max, s_max = _subtract(samples, i, ped_e, ped_o, s)
        out_amax[i] = s_max
        saturated = max(max_e, max_o) >= cfg.adc_max
        centre = k_max
        if saturated:
            flags |= 1
            for k in range(n_samples):
                usable[k] = samples[i, k] < cfg.adc_max
            while centre + 1 < n_samples and not usable[centre + 1]:
                centre += 1
            centre = (k_max + centre) // 2  # middle of the saturated plateau
        a, t_peak, resid, n, fit_flags = _fit_pulse(s, usable, centre, k_max, s_max, n_samples, m,
                                                    noise, saturated, cfg, pulse, table,
                                                    table_norm, shifts, chi2)
        out_amp[i] = a
        out_t[i] = t_peak - cfg.in_time_sample * cfg.period
        out_chi2[i] = max(resid, 0.0) / (noise * noise) / max(n - 2, 1)
        out_flags[i] = flags | fit_flags
        if saturated:
            usable[:] = True


def reconstruct_waveforms(samples: np.ndarray, template_index: np.ndarray | int,
                          reference_pedestal_adc: np.ndarray, reference_noise_adc: np.ndarray,
                          shapes: PulseShapes, timing: SadcTiming,
                          config: WaveformConfig = WaveformConfig(),
                          channel_index: np.ndarray | None = None,
                          template_of_channel: np.ndarray | None = None) -> WaveformResult:
    """Reconstruct every SADC channel of a chunk.

    Parameters
    ----------
    samples
        (n, n_samples) uint16 raw counts.
    template_index
        (n,) row of ``shapes.values`` to fit each channel with, or one int for all.
    reference_pedestal_adc
        (n, 2) even and odd pedestal-run references (ADC counts); NaN disables the
        fallback. With ``channel_index``: a (n_table, 2) table indexed by it.
    reference_noise_adc
        (n,) pedestal noise sigma (counts), the unit of every threshold and of the
        chi2; with ``channel_index`` a (n_table,) table.
    channel_index
        optional (n,) row of the reference tables of each channel (avoids gathering
        per-channel copies of the conditions).
    template_of_channel
        optional (n_table,) row of ``shapes.values`` of each entry of the reference
        tables (per-channel templates, with ``channel_index``); replaces ``template_index``.
    """
    samples = np.ascontiguousarray(samples, dtype=np.uint16)
    n = samples.shape[0]
    stride = timing.sample_period_ns / shapes.step_ns
    if abs(stride - round(stride)) > 1e-9:
        raise ValueError("the template grid step must divide the SADC sample period")
    if samples.ndim != 2 or samples.shape[1] != timing.n_samples:
        raise ValueError(f"samples must have shape (n, {timing.n_samples}), got {samples.shape}")
    table = _scan_table(shapes, timing, config)
    result = WaveformResult(
        pedestal_even_adc=np.empty(n, np.float32),
        pedestal_odd_adc=np.empty(n, np.float32),
        amplitude_max_adc=np.empty(n, np.float32),
        amplitude_adc=np.empty(n, np.float32),
        t_ns=np.empty(n, np.float32),
        chi2_ndf=np.empty(n, np.float32),
        flags=np.empty(n, np.uint8),
    )
    settings = _Settings(
        period=timing.sample_period_ns, adc_max=timing.adc_max,
        in_time_sample=timing.in_time_sample, n_ped=config.n_pedestal_samples,
        flat_sigma=config.pedestal_flatness_sigma, shift_sigma=config.pedestal_shift_sigma,
        agree_even=config.pedestal_agree_sigma / np.sqrt((config.n_pedestal_samples + 1) // 2),
        agree_odd=config.pedestal_agree_sigma / np.sqrt(max(config.n_pedestal_samples // 2, 1)),
        signal_sigma=config.signal_threshold_sigma, before=config.fit_samples_before,
        after=config.fit_samples_after, refine_step=config.refine_step_ns,
        pileup_sigma=config.pileup_threshold_sigma,
        pileup_fraction=config.pileup_threshold_fraction, n_newton=config.n_newton,
        newton_tolerance=config.newton_tolerance_ns, newton_min_sigma=config.newton_min_sigma,
        t_first=float(shapes.t_first_ns),
        inv_step=1.0 / shapes.step_ns,
    )
    values = np.ascontiguousarray(shapes.values, dtype=np.float64)
    by_channel = template_of_channel is not None
    templates = np.ascontiguousarray(
        np.atleast_1d(template_of_channel if by_channel else template_index), dtype=np.int64)
    if templates.size and (templates.min() < 0 or templates.max() >= values.shape[0]):
        raise ValueError(f"template rows outside 0..{values.shape[0] - 1}")
    if channel_index is None:
        channel_index = np.arange(n, dtype=np.int64)
    _waveform_kernel(
        samples, templates, 0 if templates.size == 1 and np.ndim(template_index) == 0 else 1,
        by_channel, np.ascontiguousarray(channel_index),
        np.ascontiguousarray(reference_pedestal_adc, dtype=np.float64),
        np.ascontiguousarray(reference_noise_adc, dtype=np.float64),
        np.stack([values, np.gradient(values, shapes.step_ns, axis=1)], axis=2),
        table,
        (table**2).sum(axis=2),
        _scan_shifts_ns(config), settings,
        result.pedestal_even_adc, result.pedestal_odd_adc, result.amplitude_max_adc,
        result.amplitude_adc, result.t_ns, result.chi2_ndf, result.flags,
    )
    return result
