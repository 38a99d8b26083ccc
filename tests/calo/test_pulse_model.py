"""Fast pulses with a (nearly) synchronous trigger: Gauss-Newton fit, parametric template and
per-channel shapes."""

import json

import numpy as np
import pytest

from recon.calo.condition_files import json_ready
from recon.calo.pulse_template import (
    ChannelShapes,
    PulseTemplates,
    TemplateConfig,
    derive_channel_shapes,
    derive_group_template,
    shaper_pulse,
)
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


def _channel_pulses(rng, rise, decay, per_channel, noise=2.0):
    """``per_channel`` pulses of each channel (its own shaper constants), 2 ns trigger jitter:
    raw samples, channel index, true amplitudes."""
    amplitude = [rng.uniform(500, 3000, k) for k in per_channel]
    parts = [_pulses(rng, k, r, d, a, noise=noise)[0]
             for r, d, k, a in zip(rise, decay, per_channel, amplitude, strict=True)]
    index = np.repeat(np.arange(len(rise)), per_channel).astype(np.int32)
    return np.concatenate(parts), index, np.concatenate(amplitude)


def test_channel_shapes_recover_each_channel_and_remove_the_shape_scatter():
    rng = np.random.default_rng(14)
    n_ch = 6
    rise = 4.0 * (1 + 0.05 * rng.standard_normal(n_ch))
    decay = 40.0 * (1 + 0.05 * rng.standard_normal(n_ch))
    per_channel = np.array([150] * (n_ch - 1) + [20])  # the last one: too few pulses
    samples, index, _ = _channel_pulses(rng, rise, decay, per_channel)
    n = samples.shape[0]
    config = TemplateConfig(reliable_sigma=100.0, channel_min_pulses=50)
    shapes = derive_channel_shapes(samples, np.full((n, 2), 200.0), np.full(n, 2.0), index,
                                   n_ch, TIMING, (4.0, 40.0), config)
    own = shapes.own
    assert own.tolist() == [True] * (n_ch - 1) + [False]
    # noise 2 counts on 500-3000 count pulses, 150 per channel: rise within 2 %, decay 0.5 %
    assert np.abs(shapes.rise_ns[own] / rise[own] - 1).max() < 0.02
    assert np.abs(shapes.decay_ns[own] / decay[own] - 1).max() < 0.005
    group = PulseShapes(shaper_pulse(GRID, 4.0, 40.0)[None, :], -150.0, 0.5)
    templates = PulseTemplates.build(("ecal",), group, {"ecal": n}, {"ecal": shapes})
    rows = templates.rows("ecal", n_ch)
    assert rows[-1] == 0 and sorted(rows[:-1]) == list(range(1, n_ch))
    # noise-free pulses (2 ns jitter): the per-pulse amplitude scatter of each channel
    clean, clean_index, amplitude = _channel_pulses(np.random.default_rng(15), rise, decay,
                                                    np.full(n_ch, 300), noise=0.0)

    def scatter(template_of_channel):
        fit = reconstruct_waveforms(clean, 0, np.full((n_ch, 2), 200.0), np.ones(n_ch),
                                    templates.shapes, TIMING, channel_index=clean_index,
                                    template_of_channel=template_of_channel)
        ratio = fit.amplitude_adc / amplitude
        return np.array([np.std(ratio[clean_index == c]) for c in range(n_ch)])

    own_scatter = scatter(rows)[:-1]
    group_scatter = scatter(np.zeros(n_ch, np.int64))[:-1]
    assert own_scatter.max() < 0.002  # the fit's own accuracy (onset kink), cf. exact shape
    assert np.median(own_scatter) < 0.5 * np.median(group_scatter)


def test_channel_shapes_round_trip_and_old_files():
    group = PulseShapes(shaper_pulse(GRID, 4.0, 40.0)[None, :], -150.0, 0.5)
    shapes = ChannelShapes(np.array([4.1, np.nan, 3.9]), np.array([41.0, np.nan, 39.0]),
                           np.array([200, 3, 180]))
    templates = PulseTemplates.build(("ecal",), group, {"ecal": 100}, {"ecal": shapes})
    data = json.loads(json.dumps(json_ready(templates.to_data())))
    again = PulseTemplates.from_data(data)
    np.testing.assert_allclose(again.shapes.values, templates.shapes.values, atol=1e-5)
    assert again.rows("ecal", 3).tolist() == [1, 0, 2]
    np.testing.assert_allclose(again.shapes.values[2], shaper_pulse(GRID, 3.9, 39.0), atol=1e-6)
    # a file written before per-channel shapes: the group template for every channel
    del data["channel_shapes"]
    old = PulseTemplates.from_data(data)
    assert old.shapes.values.shape[0] == 1 and old.rows("ecal", 3).tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="channel shapes"):
        again.rows("ecal", 4)
