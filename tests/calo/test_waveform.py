"""Waveform reconstruction on synthetic SADC pulses with known truth."""

import numpy as np
import pytest

from recon.calo.waveform import WaveformConfig, WaveformFlag, reconstruct_waveforms
from tests.calo.calo_synthetic import RISE_NS, TIMING, analytic_shapes, waveforms

NOISE_ADC = 2.0


def _reconstruct(amplitude, t_ns, rng, rise=RISE_NS["ecal"], pedestal=None, reference=None):
    n = np.shape(amplitude)[0]
    pedestal = rng.uniform(100.0, 300.0, size=(n, 2)) if pedestal is None else pedestal
    noise = np.full(n, NOISE_ADC)
    raw = waveforms(amplitude, t_ns, pedestal, noise, rise, rng)
    reference = pedestal if reference is None else reference
    result = reconstruct_waveforms(raw, np.zeros(n, dtype=np.int64), reference, noise,
                                   analytic_shapes(), TIMING)
    return result, pedestal, raw


def test_pedestals_from_pre_samples_are_unbiased():
    rng = np.random.default_rng(11)
    result, pedestal, _ = _reconstruct(rng.uniform(50, 2000, 4000), rng.uniform(-5, 5, 4000), rng)
    for got, true in ((result.pedestal_even_adc, pedestal[:, 0]),
                      (result.pedestal_odd_adc, pedestal[:, 1])):
        residual = got - true
        assert abs(residual.mean()) < 0.1  # counts; 3 samples per parity: sigma 2/sqrt(3)
        assert residual.std() == pytest.approx(NOISE_ADC / np.sqrt(3), rel=0.1)


def test_early_pulse_falls_back_to_reference_pedestals():
    rng = np.random.default_rng(12)
    n = 500
    amplitude = np.column_stack([np.full(n, 800.0), np.full(n, 300.0)])
    t = np.column_stack([np.zeros(n), np.full(n, -110.0)])  # second pulse inside the pre-samples
    result, pedestal, _ = _reconstruct(amplitude, t, rng)
    assert np.all(result.flags & WaveformFlag.PEDESTAL_FALLBACK)
    np.testing.assert_allclose(result.pedestal_even_adc, pedestal[:, 0], atol=1e-3)
    assert np.all(result.flags & WaveformFlag.PILEUP)


@pytest.mark.parametrize(("low", "high", "max_rel_sigma", "max_t_sigma"),
                         [(50, 150, 0.03, 0.6), (500, 1500, 0.004, 0.1), (2000, 3500, 0.002, 0.05)])
def test_amplitude_and_time_resolution(low, high, max_rel_sigma, max_t_sigma):
    rng = np.random.default_rng(13)
    n = 3000
    amplitude, t = rng.uniform(low, high, n), rng.uniform(-8.0, 8.0, n)  # random sampling phase
    result, _, _ = _reconstruct(amplitude, t, rng)
    rel = result.amplitude_adc / amplitude - 1.0
    dt = result.t_ns - t
    assert abs(rel.mean()) < 0.2 * max_rel_sigma + 5e-4
    assert rel.std() < max_rel_sigma
    assert abs(dt.mean()) < 0.2 * max_t_sigma + 0.02
    assert dt.std() < max_t_sigma
    assert np.median(result.chi2_ndf) < 1.6
    assert np.mean(result.flags != 0) < 0.01  # clean pulses are not flagged


def test_noise_only_channels_have_no_signal_and_unbiased_amplitude():
    rng = np.random.default_rng(14)
    result, _, _ = _reconstruct(np.zeros(5000), np.zeros(5000), rng)
    assert np.mean((result.flags & WaveformFlag.NO_SIGNAL) != 0) > 0.99
    amplitude = result.amplitude_adc
    assert abs(amplitude.mean()) < 4 * amplitude.std() / np.sqrt(amplitude.size)
    assert np.isnan(result.t_ns[(result.flags & WaveformFlag.NO_SIGNAL) != 0]).all()
    assert (result.amplitude_max_adc.mean()) > 1.0  # the maximum of noise would be biased


def test_saturated_pulses_are_flagged_and_extrapolated():
    rng = np.random.default_rng(15)
    n = 1000
    amplitude = rng.uniform(4200.0, 4800.0, n)  # above the 12-bit range with the pedestal
    result, _, raw = _reconstruct(amplitude, rng.uniform(-2, 2, n), rng)
    assert (raw.max(axis=1) == TIMING.adc_max).all()
    assert np.all(result.flags & WaveformFlag.SATURATED)
    rel = result.amplitude_adc / amplitude - 1.0
    assert abs(np.median(rel)) < 0.02  # the template fit over unsaturated samples
    assert np.all(result.amplitude_max_adc < amplitude)


def test_second_pulses_are_flagged():
    rng = np.random.default_rng(16)
    n = 1000
    amplitude = np.column_stack([rng.uniform(300, 2000, n), np.zeros(n)])
    amplitude[:, 1] = rng.uniform(0.2, 1.0, n) * amplitude[:, 0]
    t = np.column_stack([np.zeros(n), rng.choice([-1, 1], n) * rng.uniform(60.0, 120.0, n)])
    result, _, _ = _reconstruct(amplitude, t, rng)
    assert np.mean((result.flags & WaveformFlag.PILEUP) != 0) > 0.97


def test_other_templates_and_config():
    rng = np.random.default_rng(17)
    n = 1000
    amplitude, t = rng.uniform(300, 2000, n), rng.uniform(-6, 6, n)
    raw = waveforms(amplitude, t, np.full((n, 2), 200.0), np.full(n, NOISE_ADC),
                    RISE_NS["counters"], rng)
    result = reconstruct_waveforms(raw, np.full(n, 2), np.full((n, 2), 200.0),
                                   np.full(n, NOISE_ADC), analytic_shapes(), TIMING,
                                   WaveformConfig(fit_samples_before=2, fit_samples_after=4))
    assert np.abs(result.amplitude_adc / amplitude - 1).max() < 0.02
    assert np.abs(result.t_ns - t).max() < 1.0
