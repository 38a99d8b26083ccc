"""The tracking stage on synthetic events: momentum resolution, efficiency, pile-up, noise."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
from synthetic_tracker_events import TrackerResponse

from recon.tracking import TRACK_COLUMNS, track_digits, track_events


def _core_sigma(values):
    """Robust Gaussian width (1.4826 x median absolute deviation)."""
    return 1.4826 * np.median(np.abs(values - np.median(values)))


def test_momentum_resolution_and_bias_at_100_GeV(electrons_100):
    cols, truth = electrons_100.columns, electrons_100.truth
    ok = cols["track_ok"]
    rel = cols["p_track_GeV"][ok] / truth.p_GeV[ok] - 1.0
    assert _core_sigma(rel) <= 0.010
    assert rel.std() <= 0.010
    assert abs(np.median(rel)) < 0.002 and abs(rel.mean()) < 0.002
    pull = (cols["p_track_GeV"][ok] - truth.p_GeV[ok]) / cols["p_track_err_GeV"][ok]
    assert 0.85 < _core_sigma(pull) < 1.15  # the fitted error describes the spread
    assert 0.8 < np.mean(cols["track_chi2ndf"][ok]) < 1.2
    assert np.all(cols["track_charge"][ok] == -1.0)


def test_single_electron_track_efficiency(electrons_100):
    cols = electrons_100.columns
    assert cols["track_ok"].mean() >= 0.95
    assert np.mean(cols["n_track_candidates"] == 1) >= 0.95


def test_deflection_estimate_cross_check(electrons_100):
    cols, truth = electrons_100.columns, electrons_100.truth
    both = cols["track_ok"] & np.isfinite(cols["p_deflection_GeV"])
    assert both.mean() > 0.75  # needs both x planes upstream and downstream: 0.95^4
    rel = cols["p_deflection_GeV"][both] / truth.p_GeV[both] - 1.0
    assert _core_sigma(rel) < 0.012 and abs(np.median(rel)) < 0.003


def test_angles_and_ecal_impact_point(electrons_100):
    cols, truth = electrons_100.columns, electrons_100.truth
    ok = cols["track_ok"]
    dx = cols["x_ecal_mm"][ok] - truth.x_ecal_mm[ok]
    dy = cols["y_ecal_mm"][ok] - truth.y_ecal_mm[ok]
    assert _core_sigma(dx) < 1.5 and _core_sigma(dy) < 0.5  # mm, far below a 38 mm cell
    assert abs(np.median(dx)) < 0.1 and abs(np.median(dy)) < 0.1
    true_theta_in = np.hypot(truth.tx_in, truth.ty_in)[ok] * 1e3
    assert _core_sigma(cols["theta_in_mrad"][ok] - true_theta_in) < 0.06  # mrad
    assert np.median(cols["theta_out_mrad"][ok]) == pytest.approx(21.0, abs=0.3)


@pytest.mark.parametrize("p_GeV", [80.0, 150.0])
def test_resolution_grows_with_momentum_inside_the_acceptance(run_sample, p_GeV):
    sample = run_sample(600, seed=int(p_GeV), p_GeV=p_GeV, p_spread=0.0)
    ok = sample.columns["track_ok"]
    rel = sample.columns["p_track_GeV"][ok] / p_GeV - 1.0
    expected = 0.0042 * p_GeV / 100.0  # deflection-limited: sigma_p / p ~ p
    assert ok.mean() > 0.94
    assert _core_sigma(rel) == pytest.approx(expected, rel=0.25)
    assert abs(np.median(rel)) < 0.002


def test_low_momentum_leaves_the_downstream_acceptance(run_sample):
    """Below ~60 GeV the bent track misses GEM3 (x = 68.2 mm * 100 GeV / p): no track."""
    sample = run_sample(200, seed=40, p_GeV=40.0, p_spread=0.0)
    assert sample.columns["track_ok"].mean() < 0.02


def test_in_time_pileup_gives_two_candidates(run_sample):
    sample = run_sample(600, seed=11, pileup_dt=0.0)
    cols, first = sample.columns, sample.truth
    second = sample.pileup_truth
    separated = np.all(
        (np.abs(first.x_mm - second.x_mm) > 2.0) & (np.abs(first.y_mm - second.y_mm) > 2.0), axis=1
    )
    # a second track is counted when it has 4 x points (0.95^4) and is not merged
    assert np.mean(cols["n_track_candidates"][separated] == 2) > 0.55
    assert np.all(cols["n_track_candidates"] <= 2)
    ok = cols["track_ok"]
    assert ok.mean() > 0.95
    p = cols["p_track_GeV"][ok]
    closest = np.minimum(np.abs(p / first.p_GeV[ok] - 1), np.abs(p / second.p_GeV[ok] - 1))
    assert np.mean(closest < 0.02) > 0.85  # the best track is one of the two particles


def test_out_of_time_pileup_is_rejected_by_the_apv_time(run_sample):
    sample = run_sample(600, seed=12, pileup_dt=75.0)
    cols, truth = sample.columns, sample.truth
    assert np.mean(cols["n_track_candidates"] == 1) > 0.95
    ok = cols["track_ok"]
    rel = cols["p_track_GeV"][ok] / truth.p_GeV[ok] - 1.0
    assert ok.mean() > 0.95 and _core_sigma(rel) < 0.01


def test_noise_clusters_do_not_spoil_the_tracks(run_sample):
    # 0.5 real-looking uncorrelated clusters per plane (halo, delta rays), on top of noise strips
    sample = run_sample(1000, seed=13, response=TrackerResponse(fake_clusters_per_plane=0.5))
    cols, truth = sample.columns, sample.truth
    ok = cols["track_ok"]
    rel = cols["p_track_GeV"][ok] / truth.p_GeV[ok] - 1.0
    assert ok.mean() > 0.95
    assert _core_sigma(rel) < 0.01 and abs(np.median(rel)) < 0.002
    assert np.mean(cols["n_track_candidates"][ok] == 1) > 0.98


def test_events_without_strips_give_missing_values(geometry, field, pedestals, config):
    empty = np.zeros(0)
    cols = track_events(
        np.zeros(4, dtype=np.int64),
        empty,
        empty,
        empty,
        np.zeros((0, 3)),
        geometry=geometry,
        field=field,
        pedestals=pedestals,
        alignment=None,
        config=config,
    )
    assert set(cols) == set(TRACK_COLUMNS)
    assert all(len(v) == 3 for v in cols.values())
    assert not cols["track_ok"].any() and np.all(cols["n_track_candidates"] == 0)
    assert np.all(np.isnan(cols["p_track_GeV"])) and np.all(np.isnan(cols["x_ecal_mm"]))


def test_awkward_digits_adapter_matches_the_flat_core(
    electrons_100, geometry, field, pedestals, config
):
    strips = electrons_100.strips
    n = 50
    stop = strips.event_offsets[n]
    records = ak.zip(
        {
            "detector": strips.detector[:stop],
            "plane": strips.plane[:stop],
            "strip": strips.strip[:stop],
            "samples": ak.from_regular(strips.samples[:stop]),
        },
        depth_limit=1,
    )
    digits = ak.Array({"strips": ak.unflatten(records, np.diff(strips.event_offsets[: n + 1]))})
    cols = track_digits(
        digits, geometry=geometry, field=field, pedestals=pedestals, alignment=None, config=config
    )
    np.testing.assert_array_equal(cols["p_track_GeV"], electrons_100.columns["p_track_GeV"][:n])
