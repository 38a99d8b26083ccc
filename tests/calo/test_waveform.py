"""Waveform reconstruction on synthetic SADC pulses with known truth."""

import numpy as np
import pytest

from recon.calo.waveform import WaveformConfig, WaveformFlag, reconstruct_waveforms
from tests.calo.calo_synthetic import RISE_NS, TIMING, analytic_shapes, waveforms

NOISE_ADC = 2.0


def _reconstruct(amplitude, t_ns, rng, rise=RISE_NS["ecal"], pedestal=None, reference=None,
                 config=None):
    n = np.shape(amplitude)[0]
    pedestal = rng.uniform(100.0, 300.0, size=(n, 2)) if pedestal is None else pedestal
    noise = np.full(n, NOISE_ADC)
    raw = waveforms(amplitude, t_ns, pedestal, noise, rise, rng)
    reference = pedestal if reference is None else reference
    result = reconstruct_waveforms(raw, np.zeros(n, dtype=np.int64), reference, noise,
                                   analytic_shapes(), TIMING, config or WaveformConfig())
    return result, pedestal, raw


def test_pedestals_from_pre_samples_are_unbiased():
    rng = np.random.default_rng(11)
    result, pedestal, _ = _reconstruct(rng.uniform(50, 2000, 4000), rng.uniform(-5, 5, 4000), rng,
                                       config=WaveformConfig(pedestal_agree_sigma=0.0))
    for got, true in ((result.pedestal_even_adc, pedestal[:, 0]),
                      (result.pedestal_odd_adc, pedestal[:, 1])):
        residual = got - true
        assert abs(residual.mean()) < 0.1  # counts; 3 samples per parity: sigma 2/sqrt(3)
        assert residual.std() == pytest.approx(NOISE_ADC / np.sqrt(3), rel=0.1)


def test_reference_pedestals_used_when_pre_samples_agree():
    rng = np.random.default_rng(14)
    n = 4000
    amplitude, t = rng.uniform(50, 2000, n), rng.uniform(-5, 5, n)
    result, pedestal, _ = _reconstruct(amplitude, t, rng)
    exact = np.abs(result.pedestal_even_adc - pedestal[:, 0]) < 1e-3
    assert exact.mean() > 0.98  # 3 sigma agreement on both parities: ~99.5 %
    assert not np.any(result.flags & WaveformFlag.PEDESTAL_FALLBACK)
    # a reference 5 counts off (4.3 sigma of the 3-sample mean, below the 8-sigma fallback):
    # the event's own pre-samples are used
    shifted = pedestal + 5.0
    result, pedestal, _ = _reconstruct(amplitude, t, rng, pedestal=pedestal, reference=shifted)
    residual = result.pedestal_even_adc - pedestal[:, 0]
    assert abs(np.median(residual)) < 0.2
    assert np.mean(np.abs(residual) > 4.0) < 0.2
    assert not np.any(result.flags & WaveformFlag.PEDESTAL_FALLBACK)


def test_reference_pedestals_lower_the_amplitude_noise():
    rng = np.random.default_rng(15)
    n = 4000
    zeros = np.zeros(n)
    pedestal = rng.uniform(100.0, 300.0, size=(n, 2))
    default, _, _ = _reconstruct(zeros, zeros, np.random.default_rng(16), pedestal=pedestal)
    own, _, _ = _reconstruct(zeros, zeros, np.random.default_rng(16), pedestal=pedestal,
                             config=WaveformConfig(pedestal_agree_sigma=0.0))
    # the per-event pedestal error (sigma/sqrt(3), correlated over the window) is gone
    assert default.amplitude_adc.std() < 0.8 * own.amplitude_adc.std()
    assert abs(default.amplitude_adc.mean()) < 0.1


def test_channel_index_tables_and_scalar_template_match_per_channel_inputs():
    rng = np.random.default_rng(17)
    n_table, n = 10, 3000
    table_ped = rng.uniform(100.0, 300.0, size=(n_table, 2))
    table_noise = rng.uniform(1.0, 3.0, n_table)
    index = rng.integers(0, n_table, n).astype(np.int32)
    raw = waveforms(rng.uniform(0, 1500, n), rng.uniform(-5, 5, n), table_ped[index],
                    table_noise[index], RISE_NS["ecal"], rng)
    a = reconstruct_waveforms(raw, np.zeros(n, dtype=np.int64), table_ped[index],
                              table_noise[index], analytic_shapes(), TIMING)
    b = reconstruct_waveforms(raw, 0, table_ped, table_noise, analytic_shapes(), TIMING,
                              channel_index=index)
    for name in ("amplitude_adc", "t_ns", "flags", "pedestal_even_adc", "chi2_ndf"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


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
