"""Fast pulses with a (nearly) synchronous trigger: Gauss-Newton fit and parametric template."""

import numpy as np
import pytest

from recon.calo.pulse_template import TemplateConfig, derive_group_template, shaper_pulse
from recon.calo.waveform import PulseShapes, reconstruct_waveforms
from tests.calo.calo_synthetic import TIMING

GRID = np.arange(-150.0, 250.25, 0.5)


def _pulses(rng, n, rise, decay, amplitude, jitter_ns=2.0, noise=0.0):
    t_peak = TIMING.nominal_peak_ns + jitter_ns * rng.standard_normal(n)
    k = np.arange(TIMING.n_samples) * TIMING.sample_period_ns
    wave = amplitude[:, None] * shaper_pulse(k[None, :] - t_peak[:, None], rise, decay)
    wave += 200.0 + noise * rng.standard_normal(wave.shape)
    return np.clip(np.rint(wave), 0, 4095).astype(np.uint16), t_peak


def test_gauss_newton_fit_of_a_fast_pulse_is_exact_without_noise():
    rng = np.random.default_rng(11)
    n = 500
    amplitude = np.full(n, 3000.0)
    samples, t_peak = _pulses(rng, n, 4.0, 40.0, amplitude, jitter_ns=4.0)
    shapes = PulseShapes(shaper_pulse(GRID, 4.0, 40.0)[None, :], -150.0, 0.5)
    fit = reconstruct_waveforms(samples, np.zeros(n, np.int64), np.full((n, 2), 200.0),
                                np.ones(n), shapes, TIMING)
    ratio = fit.amplitude_adc / amplitude
    assert np.abs(ratio - 1).max() < 0.01  # a few pulses with a sample at the onset kink
    assert ratio.std() < 0.0015
    assert np.std(fit.t_ns - (t_peak - TIMING.nominal_peak_ns)) < 0.1


def test_parametric_template_from_narrow_phase_pulses():
    rng = np.random.default_rng(12)
    n = 3000
    samples, _ = _pulses(rng, n, 4.0, 40.0, rng.uniform(500, 3000, n), noise=2.0)
    values, used = derive_group_template(samples, np.full((n, 2), 200.0), np.full(n, 2.0),
                                         TIMING, TemplateConfig(fit_pulses=1500))
    truth = shaper_pulse(GRID, 4.0, 40.0)
    assert used == n
    assert np.abs(values - truth).max() < 0.02
    folded, _ = derive_group_template(samples, np.full((n, 2), 200.0), np.full(n, 2.0), TIMING,
                                      TemplateConfig(method="folded"))
    # phase folding with a 2 ns phase spread distorts the rising edge (the reason for the model)
    assert np.abs(folded - truth).max() > 0.1


def test_unknown_template_method():
    rng = np.random.default_rng(13)
    samples, _ = _pulses(rng, 300, 4.0, 40.0, np.full(300, 1000.0), noise=2.0)
    with pytest.raises(ValueError, match="method"):
        derive_group_template(samples, np.full((300, 2), 200.0), np.full(300, 2.0), TIMING,
                              TemplateConfig(method="spline"))
