"""Strip pedestals and noise from pedestal runs; the strip_pedestals condition."""

from __future__ import annotations

import numpy as np
from synthetic_tracker_events import pedestal_run

from recon.conditions import ConditionsDB
from recon.tracking.strip_pedestals import (
    STRIP_ABSENT,
    STRIP_DEAD,
    STRIP_GOOD,
    STRIP_NOISY,
    derive_strip_pedestals,
    load_strip_pedestals,
    write_strip_pedestals_condition,
)

N_EVENTS = 300


def _derive(geometry, truth, rng, **kwargs):
    run = pedestal_run(N_EVENTS, geometry, truth, rng, **kwargs)
    return run, derive_strip_pedestals(
        run.detector, run.plane, run.strip, run.samples, geometry=geometry, n_events=N_EVENTS
    )


def test_pedestal_and_noise_recovered_despite_signals(geometry, pedestals):
    _, derived = _derive(geometry, pedestals, np.random.default_rng(5), signal_probability=0.05)
    good = pedestals.status == STRIP_GOOD
    stat = pedestals.noise_adc[good] / np.sqrt(3 * N_EVENTS)  # error of a mean of 900 samples
    pull = (derived.pedestal_adc[good] - pedestals.pedestal_adc[good]) / stat
    assert abs(pull.mean()) < 0.1 and 0.8 < pull.std() < 1.25  # unbiased, statistical scatter
    # rounding of ADC values to integers adds 1/12 ADC^2 to the variance
    expected_noise = np.sqrt(pedestals.noise_adc[good] ** 2 + 1.0 / 12.0)
    ratio = derived.noise_adc[good] / expected_noise
    assert abs(np.median(ratio) - 1.0) < 0.01 and ratio.std() < 0.05
    np.testing.assert_array_equal(derived.status[pedestals.status == STRIP_DEAD], STRIP_DEAD)
    np.testing.assert_array_equal(derived.status[pedestals.status == STRIP_ABSENT], STRIP_ABSENT)
    assert np.count_nonzero(derived.status[good] != STRIP_GOOD) == 0


def test_plain_mean_would_be_biased_by_the_signals(geometry, pedestals):
    run, derived = _derive(geometry, pedestals, np.random.default_rng(6), signal_probability=0.2)
    shape = pedestals.pedestal_adc.shape
    key = (run.detector.astype(int) * 2 + run.plane) * shape[2] + run.strip
    n = np.bincount(key, minlength=np.prod(shape))
    naive = np.bincount(key, weights=run.samples.mean(axis=1), minlength=n.size) / np.maximum(n, 1)
    naive = naive.reshape(shape)
    good = pedestals.status == STRIP_GOOD
    hot = good & (naive - pedestals.pedestal_adc > 1.5)  # strips near the beam spot
    assert np.count_nonzero(hot) > 20
    robust_bias = derived.pedestal_adc[hot] - pedestals.pedestal_adc[hot]
    assert abs(robust_bias.mean()) < 0.15 and np.abs(robust_bias).max() < 1.0


def test_noisy_strip_is_flagged(geometry, pedestals):
    noisy_truth = pedestals.noise_adc.copy()
    noisy_truth[2, 1, 100] = 40.0
    truth = type(pedestals)(
        pedestals.station_names,
        pedestals.pedestal_adc,
        noisy_truth,
        pedestals.status,
        pedestals.n_strips,
    )
    _, derived = _derive(geometry, truth, np.random.default_rng(7), signal_probability=0.0)
    assert derived.status[2, 1, 100] == STRIP_NOISY
    assert np.count_nonzero(derived.status == STRIP_NOISY) == 1


def test_condition_file_round_trip(tmp_path, geometry, pedestals):
    _, derived = _derive(geometry, pedestals, np.random.default_rng(8))
    path = write_strip_pedestals_condition(
        tmp_path / "invis2016" / "strip_pedestals" / "v1.json",
        derived,
        setup="invis2016",
        version="v1",
        valid_runs=[100, 200],
        description="test pedestal run 99",
    )
    loaded = load_strip_pedestals(ConditionsDB([tmp_path]), "invis2016", 150)
    exists = derived.status != STRIP_ABSENT
    alive = derived.status != STRIP_DEAD
    np.testing.assert_allclose(
        loaded.pedestal_adc[exists & alive], derived.pedestal_adc[exists & alive], atol=0.006
    )
    np.testing.assert_allclose(
        loaded.noise_adc[exists & alive], derived.noise_adc[exists & alive], atol=0.006
    )
    np.testing.assert_array_equal(loaded.status, derived.status)
    assert loaded.station_names == ("MM1", "MM2", "GEM3", "GEM4")
    assert path.stat().st_size < 200_000
