"""Synthetic SADC data for the calorimetry tests: pulses, pedestals, showers, muons.

Everything here is the tests' own generator (the project's simulation is not
used): an analytic pulse shape, interleaved even/odd pedestals with Gaussian
noise, 12-bit clipping, and simple shower and MIP models with known truth.
Units: ADC counts, ns, GeV, mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np
from scipy import special

from recon.calo.sadc_channels import SadcHits
from recon.calo.waveform import PulseShapes, SadcTiming

TIMING = SadcTiming(n_samples=32, sample_period_ns=12.5, adc_max=4095, in_time_sample=12)
SHAPE_ORDER = 3
RISE_NS = {"ecal": 20.0, "hcal": 28.0, "counters": 14.0}


def pulse(tau_ns: np.ndarray, rise_ns: float) -> np.ndarray:
    """Unipolar shaper pulse peaking at 1 at ``tau = 0``: x^n exp(-n (x - 1)), x = 1 + tau/rise."""
    x = np.clip(1.0 + np.asarray(tau_ns, dtype=np.float64) / rise_ns, 0.0, None)
    return x**SHAPE_ORDER * np.exp(-SHAPE_ORDER * (x - 1.0))


def analytic_shapes(step_ns: float = 0.5) -> PulseShapes:
    """The true pulse shapes as templates, rows in the order ecal, hcal, counters."""
    grid = np.arange(-150.0, 250.0 + step_ns / 2, step_ns)
    values = np.stack([pulse(grid, RISE_NS[g]) for g in ("ecal", "hcal", "counters")])
    return PulseShapes(values=values, t_first_ns=-150.0, step_ns=step_ns)


def waveforms(amplitude_adc, t_ns, pedestal_adc, noise_adc, rise_ns, rng,
              timing: SadcTiming = TIMING) -> np.ndarray:
    """Raw uint16 samples (n, 32): pulses of ``amplitude_adc`` peaking at ``t_ns`` from in-time.

    ``pedestal_adc`` (n, 2) even/odd pedestals, ``noise_adc`` (n,) Gaussian sigma;
    amplitude and time may be (n, k) for k superposed pulses (NaN time = none).
    """
    amplitude = np.atleast_2d(np.asarray(amplitude_adc, dtype=np.float64).T).T
    t = np.atleast_2d(np.asarray(t_ns, dtype=np.float64).T).T
    n = amplitude.shape[0]
    k = np.arange(timing.n_samples) * timing.sample_period_ns
    signal = np.zeros((n, timing.n_samples))
    for p in range(amplitude.shape[1]):  # one or two superposed pulses
        peak = timing.nominal_peak_ns + np.nan_to_num(t[:, p], nan=1e9)
        signal += amplitude[:, p, None] * pulse(k[None, :] - peak[:, None], rise_ns)
    even = np.arange(timing.n_samples) % 2 == 0
    pedestal = np.where(even, pedestal_adc[:, :1], pedestal_adc[:, 1:2])
    values = pedestal + signal + rng.normal(size=signal.shape) * np.asarray(noise_adc)[:, None]
    return np.clip(np.rint(values), 0, timing.adc_max).astype(np.uint16)


@dataclass
class Channels:
    """True per-channel constants of one SADC group (flat condition-array order)."""

    pedestal_adc: np.ndarray   # (n, 2) even, odd
    noise_adc: np.ndarray      # (n,)
    gain_adc_per_GeV: np.ndarray  # (n,)


def make_channels(n: int, rng, gain_adc_per_GeV: float, gain_spread: float = 0.10) -> Channels:
    return Channels(
        pedestal_adc=rng.uniform(100.0, 300.0, size=(n, 2)),
        noise_adc=rng.uniform(1.0, 3.0, size=n),
        gain_adc_per_GeV=gain_adc_per_GeV * (1.0 + gain_spread * rng.standard_normal(n)),
    )


def group_digits(energy_GeV: np.ndarray, channels: Channels, rise_ns: float, rng,
                 t_ns: np.ndarray | None = None) -> np.ndarray:
    """Samples (n_events * n_channels, 32) of a dense (n_events, n_channels) deposit array."""
    n_events = energy_GeV.shape[0]
    amplitude = (energy_GeV * channels.gain_adc_per_GeV[None, :]).reshape(-1)
    t = np.zeros(energy_GeV.shape) if t_ns is None else np.broadcast_to(t_ns, energy_GeV.shape)
    t = t.reshape(-1)
    ped = np.tile(channels.pedestal_adc, (n_events, 1))
    noise = np.tile(channels.noise_adc, n_events)
    return waveforms(amplitude, t, ped, noise, rise_ns, rng)


def _jagged(n_events: int, columns: dict[str, np.ndarray]) -> ak.Array:
    n_total = next(iter(columns.values())).shape[0]
    per_event = n_total // n_events
    contents = {}
    for name, values in columns.items():
        contents[name] = values.reshape(n_events, per_event, *values.shape[1:])
    return ak.zip({k: ak.from_numpy(v) for k, v in contents.items()}, depth_limit=2)


def digits(ecal_samples=None, hcal_samples=None, counter_samples=None, n_events=0,
           ecal_shape=(2, 6, 6), hcal_shape=(4, 3, 3), n_counters=11) -> ak.Array:
    """Decoded-digits-like awkward array: every channel of each group in every event."""
    fields = {}
    if ecal_samples is not None:
        sec, ix, iy = np.unravel_index(np.arange(np.prod(ecal_shape)), ecal_shape)
        rep = ecal_samples.shape[0] // sec.size
        fields["ecal"] = _jagged(n_events, {
            "section": np.tile(sec, rep).astype(np.uint8), "ix": np.tile(ix, rep).astype(np.uint8),
            "iy": np.tile(iy, rep).astype(np.uint8), "samples": ecal_samples})
    if hcal_samples is not None:
        mod, ix, iy = np.unravel_index(np.arange(np.prod(hcal_shape)), hcal_shape)
        rep = hcal_samples.shape[0] // mod.size
        fields["hcal"] = _jagged(n_events, {
            "module": np.tile(mod, rep).astype(np.uint8), "ix": np.tile(ix, rep).astype(np.uint8),
            "iy": np.tile(iy, rep).astype(np.uint8), "samples": hcal_samples})
    if counter_samples is not None:
        rep = counter_samples.shape[0] // n_counters
        fields["counters"] = _jagged(n_events, {
            "counter": np.tile(np.arange(n_counters), rep).astype(np.uint8),
            "samples": counter_samples})
    return ak.zip(fields, depth_limit=1)


# --- electromagnetic showers in a 6x6 two-section ECAL ---------------------------------

@dataclass(frozen=True)
class ShowerTruthModel:
    """The tests' shower model: two-component radial profile and a gamma longitudinal profile."""

    cell_mm: float = 38.2
    moliere_mm: float = 35.0
    core_fraction: float = 0.92
    core_radius_rm: float = 0.2
    tail_radius_rm: float = 2.0
    preshower_X0: float = 4.0
    critical_GeV: float = 0.0115
    b: float = 0.5
    stochastic: float = 0.10
    constant: float = 0.01
    n_spots: int = 400


def _radial_cdf_1d(u, radius):
    """Fraction of a 2D Lorentzian-squared profile with x < u (integrated over y)."""
    return 0.5 + 0.5 * u / np.sqrt(u * u + radius * radius)


def cell_fractions(x_mm, y_mm, edges_x, edges_y, model: ShowerTruthModel) -> np.ndarray:
    """Mean fraction per cell (n, n_x, n_y) of a shower at (x, y): separable approximation.

    Uses the exact marginal of each radial component in x and y, multiplied (the
    product of marginals; accurate to the per-mil level for these cell sizes).
    """
    out = 0.0
    for weight, r_rm in ((model.core_fraction, model.core_radius_rm),
                         (1.0 - model.core_fraction, model.tail_radius_rm)):
        r = r_rm * model.moliere_mm
        fx = np.diff(_radial_cdf_1d(edges_x[None, :] - np.asarray(x_mm)[:, None], r), axis=1)
        fy = np.diff(_radial_cdf_1d(edges_y[None, :] - np.asarray(y_mm)[:, None], r), axis=1)
        out = out + weight * fx[:, :, None] * fy[:, None, :]
    return out


def showers(energy_GeV, x_mm, y_mm, rng, model: ShowerTruthModel = ShowerTruthModel(),
            n_x: int = 6, n_y: int = 6, x_centre_mm: float = 0.0, centre_index: int = 3):
    """Deposits (n, 2, n_x, n_y) GeV of electron showers with fluctuating lateral and
    longitudinal splits.

    The total visible energy fluctuates by ``stochastic/sqrt(E) (+) constant``;
    the lateral split is a sum of ``n_spots`` energy spots drawn from the radial
    profile (so the cell fractions fluctuate); the preshower fraction follows a
    gamma profile with a fluctuating shower maximum.
    """
    energy = np.broadcast_to(np.asarray(energy_GeV, dtype=np.float64), np.shape(x_mm))
    n = energy.size
    sigma = np.hypot(model.stochastic / np.sqrt(energy), model.constant)
    visible = energy * (1.0 + sigma * rng.standard_normal(n))
    t_max = np.log(energy / model.critical_GeV) - 0.5
    a = 1.0 + model.b * t_max * rng.normal(1.0, 0.12, size=n)
    f_pre = special.gammainc(a, model.b * model.preshower_X0)
    # lateral: spots from the two-component profile (radius r: u = r^2/(r^2+R^2) uniform)
    core = rng.random((n, model.n_spots)) < model.core_fraction
    radius = np.where(core, model.core_radius_rm, model.tail_radius_rm) * model.moliere_mm
    u = rng.random((n, model.n_spots))
    r = radius * np.sqrt(u / (1.0 - u))
    phi = rng.uniform(0.0, 2 * np.pi, size=(n, model.n_spots))
    edges_x = (np.arange(n_x + 1) - centre_index - 0.5) * model.cell_mm + x_centre_mm
    edges_y = (np.arange(n_y + 1) - centre_index - 0.5) * model.cell_mm
    sx = np.asarray(x_mm)[:, None] + r * np.cos(phi)
    sy = np.asarray(y_mm)[:, None] + r * np.sin(phi)
    ix = np.searchsorted(edges_x, sx) - 1
    iy = np.searchsorted(edges_y, sy) - 1
    inside = (ix >= 0) & (ix < n_x) & (iy >= 0) & (iy < n_y)
    flat = np.where(inside, ix * n_y + iy, n_x * n_y)
    rows = np.repeat(np.arange(n), model.n_spots)
    counts = np.zeros((n, n_x * n_y + 1))
    np.add.at(counts, (rows, flat.reshape(-1)), 1.0)
    lateral = counts[:, :-1] / model.n_spots
    out = np.empty((n, 2, n_x, n_y))
    out[:, 0] = (visible * f_pre)[:, None, None] * lateral.reshape(n, n_x, n_y)
    out[:, 1] = (visible * (1.0 - f_pre))[:, None, None] * lateral.reshape(n, n_x, n_y)
    return out


def moyal(mpv: float, width: float, size, rng) -> np.ndarray:
    """Moyal (Landau approximation) deviates with most probable value ``mpv``."""
    u = rng.random(size)
    return mpv - width * 2.0 * np.log(np.sqrt(2.0) * special.erfcinv(u))


def hits(samples: np.ndarray, n_events: int) -> SadcHits:
    """Flat hits of a group where every event has every channel, in channel order."""
    n_channels = samples.shape[0] // n_events
    return SadcHits(offsets=np.arange(n_events + 1, dtype=np.int64) * n_channels,
                    channel_index=np.tile(np.arange(n_channels, dtype=np.int32), n_events),
                    samples=samples)
