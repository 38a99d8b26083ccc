"""Space points: X/Y pairing, charge-correlation ghost rejection, half points, timing."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from recon.tracking.space_points import build_space_points
from recon.tracking.strip_clustering import Clusters


def _clusters(rows):
    """Clusters of one event from rows (det, plane, position_mm, charge, t_ns), in the
    (detector, plane) order of the clustering output."""
    rows = sorted(rows, key=lambda r: (r[0], r[1]))
    det, plane, pos, charge, t = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    n = det.size
    clusters = Clusters(
        offsets=np.array([0, n]),
        detector=det.astype(np.int16),
        plane=plane.astype(np.int16),
        position_strip=pos,
        position_err_strip=np.zeros(n),
        charge_adc=charge,
        snr=np.full(n, 30.0),
        size=np.full(n, 3, dtype=np.int16),
        t_ns=t,
        t_err_ns=np.ones(n),
        in_time=np.abs(t) <= 25.0,
    )
    return clusters, pos, np.full(n, 0.07)


def _points(rows, config, **overrides):
    clusters, pos, err = _clusters(rows)
    return build_space_points(
        clusters, pos, err, n_stations=4, config=replace(config.space_points, **overrides)
    )


def test_two_tracks_with_different_charges_give_no_ghosts(config):
    rows = [
        (2, 0, 10.0, 400.0, 0.0),
        (2, 0, 30.0, 900.0, 0.0),
        (2, 1, -5.0, 420.0, 0.0),
        (2, 1, 7.0, 880.0, 0.0),
    ]
    points = _points(rows, config)
    pairs = {(x, y) for x, y in zip(points.x_mm, points.y_mm, strict=True)}
    assert pairs == {(10.0, -5.0), (30.0, 7.0)}
    assert np.all(points.station == 2)


def test_equal_charges_give_all_combinations(config):
    rows = [
        (1, 0, 10.0, 500.0, 0.0),
        (1, 0, 30.0, 520.0, 0.0),
        (1, 1, -5.0, 510.0, 0.0),
        (1, 1, 7.0, 490.0, 0.0),
    ]
    points = _points(rows, config)
    assert len(points) == 4  # the true pairs and the two ghosts
    assert np.all(points.cluster_x >= 0) and np.all(points.cluster_y >= 0)


def test_clusters_without_compatible_partner_give_half_points(config):
    rows = [
        (0, 0, 1.0, 500.0, 0.0),
        (3, 1, 2.0, 500.0, 0.0),
        (1, 0, 3.0, 500.0, 0.0),
        (1, 1, 4.0, 100.0, 0.0),
    ]  # charge mismatch at station 1
    points = _points(rows, config)
    x_only, y_only = np.isnan(points.y_mm), np.isnan(points.x_mm)
    np.testing.assert_array_equal(points.station[x_only], [0, 1])
    np.testing.assert_array_equal(points.station[y_only], [1, 3])
    assert np.all(points.cluster_y[x_only] == -1) and np.all(points.cluster_x[y_only] == -1)
    both = ~x_only & ~y_only  # the mismatched pair is still offered, as the only pairing
    np.testing.assert_array_equal(points.station[both], [1])
    assert len(points) == 5


def test_out_of_time_clusters_are_not_used(config):
    rows = [(0, 0, 1.0, 500.0, 0.0), (0, 0, 9.0, 500.0, 70.0), (0, 1, 2.0, 500.0, 2.0)]
    points = _points(rows, config)
    assert len(points) == 1 and points.x_mm[0] == 1.0
    assert len(_points(rows, config, use_out_of_time=True)) == 2


def test_at_most_the_largest_clusters_per_plane(config):
    rows = [(2, 0, float(i), 100.0 + 10 * i, 0.0) for i in range(6)]
    points = _points(rows, config, max_clusters_per_plane=3)
    np.testing.assert_array_equal(np.sort(points.x_mm), [3.0, 4.0, 5.0])
