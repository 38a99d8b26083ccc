"""Strip clustering: centroids, gaps, dead strips, APV timing, ordering, resolution."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from synthetic_tracker_events import apv_shape

from recon.tracking.strip_clustering import calibrate_time_relation, cluster_strips
from recon.tracking.strip_pedestals import STRIP_DEAD, STRIP_GOOD, StripPedestals

PEDESTAL, NOISE = 400.0, 5.0


@pytest.fixture(scope="module")
def flat_pedestals():
    shape = (4, 2, 320)
    return StripPedestals(
        station_names=("MM1", "MM2", "GEM3", "GEM4"),
        pedestal_adc=np.full(shape, PEDESTAL),
        noise_adc=np.full(shape, NOISE),
        status=np.full(shape, STRIP_GOOD, dtype=np.int8),
        n_strips=np.array([320, 320, 256, 256]),
    )


def _events(*events):
    """Flat strip arrays from events given as lists of (det, plane, strip, amplitude, dt_ns)."""
    rows = [hit for ev in events for hit in ev]
    det, plane, strip, amp, dt = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    samples = np.rint(PEDESTAL + amp[:, None] * apv_shape(dt)).astype(np.uint16)
    offsets = np.concatenate(([0], np.cumsum([len(ev) for ev in events])))
    return offsets, det.astype(np.uint8), plane.astype(np.uint8), strip.astype(np.uint16), samples


def _cluster(flat_pedestals, config, *events, **overrides):
    clustering = replace(config.clustering, **overrides)
    return cluster_strips(*_events(*events), pedestals=flat_pedestals, config=clustering)


def test_centroid_charge_and_size(flat_pedestals, config):
    amps = {40: 30.0, 41: 120.0, 42: 90.0, 43: 25.0}
    clusters = _cluster(flat_pedestals, config, [(0, 0, s, a, 0.0) for s, a in amps.items()])
    assert len(clusters) == 1
    charge = np.array(list(amps.values())) * apv_shape(0.0).sum()
    expected = np.average(list(amps), weights=charge)
    assert clusters.position_strip[0] == pytest.approx(expected, abs=0.01)
    assert clusters.size[0] == 4 and clusters.detector[0] == 0 and clusters.plane[0] == 0
    assert clusters.charge_adc[0] == pytest.approx(charge.sum(), rel=0.01)
    assert clusters.snr[0] == pytest.approx(charge.sum() / (np.sqrt(3 * 4) * NOISE), rel=0.01)
    assert 0.0 < clusters.position_err_strip[0] < 0.05


def test_one_missing_strip_is_bridged_two_are_not(flat_pedestals, config):
    one_gap = [(1, 1, 10, 80.0, 0.0), (1, 1, 11, 100.0, 0.0), (1, 1, 13, 60.0, 0.0)]
    two_gap = [(1, 1, 10, 80.0, 0.0), (1, 1, 11, 100.0, 0.0), (1, 1, 14, 90.0, 0.0)]
    clusters = _cluster(flat_pedestals, config, one_gap, two_gap)
    assert list(np.diff(clusters.offsets)) == [1, 2]
    assert clusters.size[0] == 4


def test_dead_strip_is_masked_and_bridged(flat_pedestals, config):
    status = flat_pedestals.status.copy()
    status[2, 0, 101] = STRIP_DEAD
    dead = replace(flat_pedestals, status=status)
    hits = [(2, 0, 100, 90.0, 0.0), (2, 0, 101, 500.0, 0.0), (2, 0, 102, 90.0, 0.0)]
    clusters = cluster_strips(*_events(hits), pedestals=dead, config=config.clustering)
    assert len(clusters) == 1
    assert clusters.position_strip[0] == pytest.approx(101.0, abs=0.01)  # dead strip ignored


def test_cluster_time_and_out_of_time_rejection(flat_pedestals, config):
    times = [-20.0, -8.0, 0.0, 9.0, 18.0, -90.0, 60.0, 100.0]
    events = [[(3, 0, 50, 100.0, t), (3, 0, 51, 150.0, t), (3, 0, 52, 60.0, t)] for t in times]
    clusters = _cluster(flat_pedestals, config, *events)
    assert np.all(np.abs(clusters.t_ns[:5] - times[:5]) < 1.5)
    assert np.all(clusters.t_err_ns[:5] < 4.0)
    assert clusters.in_time[:5].all()
    assert not clusters.in_time[5:].any()  # early, late and very late pile-up


def test_time_relation_calibration_from_a_noisy_delay_scan(config):
    rng = np.random.default_rng(9)
    knots = np.asarray(config.clustering.time_r12.t_ns)
    delays = np.repeat(knots, 400)
    samples = 300.0 * apv_shape(delays) + 5.0 * rng.standard_normal((delays.size, 3))
    relation = calibrate_time_relation(delays, samples[:, 1] / samples[:, 2], knots)
    np.testing.assert_allclose(relation.ratio, config.clustering.time_r12.ratio, atol=0.01)
    probe = np.linspace(-45.0, 40.0, 30)
    shape = apv_shape(probe)
    assert np.max(np.abs(relation.time_ns(shape[:, 1] / shape[:, 2]) - probe)) < 1.5


def test_unsorted_input_and_empty_events(flat_pedestals, config):
    hits = [
        (0, 0, 30, 100.0, 0.0),
        (0, 0, 31, 80.0, 0.0),
        (2, 1, 7, 150.0, 0.0),
        (0, 1, 200, 120.0, 0.0),
        (0, 1, 199, 60.0, 0.0),
    ]
    ordered = _cluster(flat_pedestals, config, [], sorted(hits), [])
    shuffled = _cluster(flat_pedestals, config, [], hits[::-1], [])
    assert list(ordered.offsets) == [0, 0, 3, 3]
    np.testing.assert_allclose(shuffled.position_strip, ordered.position_strip)
    np.testing.assert_array_equal(shuffled.detector, [0, 0, 2])
    np.testing.assert_array_equal(shuffled.plane, [0, 1, 1])


def test_noise_fluctuation_strip_does_not_make_a_cluster(flat_pedestals, config):
    """A strip that passed zero suppression on one 4-sigma sample fails the cluster S/N."""
    samples = np.array([[PEDESTAL, PEDESTAL + 4.0 * NOISE, PEDESTAL + 2.0]], dtype=np.uint16)
    clusters = cluster_strips(
        np.array([0, 1]),
        np.array([1]),
        np.array([0]),
        np.array([77]),
        samples,
        pedestals=flat_pedestals,
        config=config.clustering,
    )
    assert len(clusters) == 0


def test_position_resolution_on_synthetic_events(electrons_100, geometry, pedestals, config):
    """Single-plane resolution ~70 um (MM) and ~100 um (GEM), as the spec's detectors."""
    from recon.tracking.space_points import StationLayout, cluster_positions_mm

    strips = electrons_100.strips
    clusters = cluster_strips(
        strips.event_offsets,
        strips.detector,
        strips.plane,
        strips.strip,
        strips.samples,
        pedestals=pedestals,
        config=config.clustering,
    )
    layout = StationLayout.from_geometry(
        geometry, offsets_mm=None, resolution_mm=config.resolution_mm, x_over_X0=config.x_over_X0
    )
    pos, err = cluster_positions_mm(clusters, layout)
    event = np.searchsorted(clusters.offsets, np.arange(len(clusters)), side="right") - 1
    truth = np.where(
        clusters.plane == 0,
        electrons_100.truth.x_mm[event, clusters.detector],
        electrons_100.truth.y_mm[event, clusters.detector],
    )
    residual = pos - truth
    for technology, dets, expected in (("MM", (0, 1), 0.070), ("GEM", (2, 3), 0.100)):
        sel = np.isin(clusters.detector, dets) & (np.abs(residual) < 1.0)
        sigma = 1.4826 * np.median(np.abs(residual[sel] - np.median(residual[sel])))
        assert sigma == pytest.approx(expected, rel=0.12), technology
        assert abs(np.median(residual[sel])) < 0.005
        assert np.median(err[sel]) == pytest.approx(sigma, rel=0.12)
    assert clusters.in_time.mean() > 0.995
    assert 2.5 < clusters.size.mean() < 3.6  # charge shared over 2-4 strips
