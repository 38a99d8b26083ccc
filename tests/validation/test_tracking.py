"""Tracking validation: figures on synthetic tables with known answers, and on a small sim run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recon.validation.tracking import (
    alignment_closure,
    core_width,
    efficiency,
    impact_residuals,
    pileup_classes,
    pileup_figures,
    resolution_by_momentum,
    sample_table,
    validate_tracking,
)
from tests.conftest import CONDITIONS


def _table(n, rng, *, p_GeV=100.0, sigma=0.004, ok_fraction=0.98, pdg=11):
    """A joined event table: momentum resolution ``sigma``, efficiency ``ok_fraction``."""
    p_true = np.broadcast_to(np.asarray(p_GeV, dtype=float), (n,)).copy()
    p_track = p_true * (1 + sigma * rng.standard_normal(n))
    crossings = rng.normal(0, 3, (n, 4))
    return {
        "run": np.ones(n, np.int64),
        "spill": np.ones(n, np.int64),
        "event": np.arange(n),
        "n_track_candidates": np.ones(n, np.int32),
        "p_track_GeV": p_track,
        "p_track_err_GeV": sigma * p_true,
        "track_charge": -np.ones(n),
        "track_chi2ndf": np.ones(n),
        "theta_out_mrad": np.full(n, 21.0),
        "x_ecal_mm": np.full(n, 456.5),
        "y_ecal_mm": np.zeros(n),
        "track_ok": rng.random(n) < ok_fraction,
        "pdg": np.full(n, pdg, np.int32),
        "process": np.zeros(n, np.int8),
        "p_true_GeV": p_true,
        "track_x_mm": crossings,
        "track_y_mm": crossings.copy(),
        "pileup_dt_ns": np.full(n, np.nan),
        "pileup_pdg": np.zeros(n, np.int32),
        "pileup_track_x_mm": np.full((n, 4), np.nan),
        "pileup_track_y_mm": np.full((n, 4), np.nan),
        "x_ecal_shower_mm": np.full(n, np.nan),
        "y_ecal_shower_mm": np.full(n, np.nan),
        "e_ecal_GeV": np.full(n, 100.0),
    }


def test_efficiency_error_is_binomial_and_never_zero():
    e = efficiency(np.r_[np.ones(980, bool), np.zeros(20, bool)])
    assert e["efficiency"] == pytest.approx(0.98)
    assert e["error"] == pytest.approx(np.sqrt(0.98 * 0.02 / 1000), rel=0.05)
    assert efficiency(np.ones(50, bool))["error"] > 0
    assert efficiency(np.zeros(0, bool))["efficiency"] is None


def test_core_width_of_a_gaussian_with_tails():
    rng = np.random.default_rng(1)
    v = np.r_[0.3 + 2.0 * rng.standard_normal(20_000), rng.uniform(-100, -20, 400)]
    cw = core_width(v)
    # 2 % tail on one side moves the quantiles by ~0.05 sigma; the bootstrap error
    # is ~0.96 sigma / sqrt(n) = 0.014 for the width
    assert cw["half_width"] == pytest.approx(2.0, abs=0.12)
    assert cw["median"] == pytest.approx(0.3, abs=0.1)
    assert cw["half_width_error"] == pytest.approx(0.96 * 2.0 / np.sqrt(v.size), rel=0.3)
    assert cw["tail_fraction"] == pytest.approx(400 / v.size, abs=0.002)


def test_resolution_and_efficiency_per_momentum_bin():
    rng = np.random.default_rng(2)
    parts = [
        _table(3000, rng, p_GeV=p, sigma=0.004 * p / 100, ok_fraction=f)
        for p, f in ((40.0, 0.0), (80.0, 0.9), (120.0, 0.98))
    ]
    table = {k: np.concatenate([t[k] for t in parts]) for k in parts[0]}
    table["track_x_mm"][:3000, 2:] = np.nan  # 40 GeV: bent out of the GEMs
    rows = resolution_by_momentum(table, np.ones(9000, bool), (30, 50, 100, 150))
    assert [r["p_mean_GeV"] for r in rows] == [40.0, 80.0, 120.0]
    assert rows[0]["efficiency"]["efficiency"] == 0 and "resolution" not in rows[0]
    assert rows[0]["acceptance"]["efficiency"] == 0
    for row, p, f in zip(rows[1:], (80, 120), (0.9, 0.98), strict=True):
        assert row["efficiency"]["efficiency"] == pytest.approx(
            f, abs=4 * row["efficiency"]["error"]
        )
        assert row["resolution"] == pytest.approx(0.004 * p / 100, abs=4 * row["resolution_error"])
        assert abs(row["bias"]) < 4 * row["bias_error"]
        assert row["pull"]["half_width"] == pytest.approx(1.0, abs=0.06)


def test_impact_residual_offset_width_and_shower_depth():
    rng = np.random.default_rng(3)
    table = _table(4000, rng)
    # shower centre 150 mm deep along a 21 mrad track, 1.5 mm resolution
    table["x_ecal_shower_mm"] = table["x_ecal_mm"] + 0.021 * 150 + 1.5 * rng.standard_normal(4000)
    table["y_ecal_shower_mm"] = table["y_ecal_mm"] + 1.0 * rng.standard_normal(4000)
    out = impact_residuals(table, np.ones(4000, bool))
    assert out["x"]["median"] == pytest.approx(-3.15, abs=0.1)
    assert out["x"]["half_width"] == pytest.approx(1.5, abs=0.1)
    assert out["y"]["half_width"] == pytest.approx(1.0, abs=0.07)
    assert out["impact_depth_mm"] == pytest.approx(150, abs=5)


def test_pileup_classes_and_figures():
    rng = np.random.default_rng(4)
    table = _table(400, rng, ok_fraction=1.0)
    dt = np.r_[np.full(100, np.nan), np.full(100, 10.0), np.full(100, -60.0), np.full(100, 80.0)]
    table["pileup_dt_ns"] = dt
    table["pileup_pdg"] = np.where(np.isnan(dt), 0, 11).astype(np.int32)
    table["pileup_track_x_mm"][100:300] = 1.0  # the last 100 pile-up particles missed the tracker
    table["n_track_candidates"][100:200] = 2
    classes = pileup_classes(table)
    assert [
        int(classes[k].sum())
        for k in ("none", "in_time_tracked", "out_of_time_tracked", "out_of_time_not_tracked")
    ] == [100, 100, 100, 100]
    figures = pileup_figures(table, np.ones(400, bool))
    assert figures["in_time_tracked"]["candidates_fraction"]["2"] == 1.0
    assert figures["none"]["efficiency"]["efficiency"] == 1.0
    assert figures["pileup_fraction"] == 0.75


def test_alignment_closure():
    injected = np.array([[0, 0], [0, 0], [0.3, -0.2], [-0.45, 0.35]])
    names = ("MM1", "MM2", "GEM3", "GEM4")
    good = alignment_closure(injected + 0.015, injected, names)
    assert good["pass"] and good["max_abs_difference_um"] == pytest.approx(15)
    assert not alignment_closure(injected + np.array([0.0, 0.025]), injected, names)["pass"]


def test_sample_table_joins_by_event_and_tolerates_missing_calo():
    rng = np.random.default_rng(5)
    t = _table(50, rng)
    tracks = {
        k: t[k]
        for k in (
            "run",
            "spill",
            "event",
            "n_track_candidates",
            "p_track_GeV",
            "p_track_err_GeV",
            "track_charge",
            "track_chi2ndf",
            "theta_out_mrad",
            "x_ecal_mm",
            "y_ecal_mm",
            "track_ok",
        )
    }
    order = rng.permutation(50)
    truth = {
        k: t[k][order]
        for k in (
            "run",
            "spill",
            "event",
            "pdg",
            "process",
            "p_true_GeV",
            "track_x_mm",
            "track_y_mm",
            "pileup_dt_ns",
            "pileup_pdg",
            "pileup_track_x_mm",
            "pileup_track_y_mm",
        )
    }
    calo = {
        "run": t["run"][:20],
        "spill": t["spill"][:20],
        "event": t["event"][:20],
        "x_ecal_shower_mm": np.arange(20.0),
        "y_ecal_shower_mm": np.zeros(20),
        "e_ecal_GeV": np.full(20, 90.0),
    }
    table = sample_table(tracks, truth, calo)
    np.testing.assert_array_equal(table["p_true_GeV"], t["p_true_GeV"])
    np.testing.assert_array_equal(table["x_ecal_shower_mm"][:20], np.arange(20.0))
    assert np.isnan(table["x_ecal_shower_mm"][20:]).all()


def test_validate_tracking_pass_flags():
    rng = np.random.default_rng(6)
    figures = validate_tracking(_table(3000, rng))["figures"]
    assert figures["pass"]
    bad = validate_tracking(_table(3000, rng, sigma=0.012, ok_fraction=0.9))["figures"]
    assert bad["pass_by_goal"] == {"resolution": False, "bias": True, "efficiency": False}
    json.dumps(figures)  # JSON-ready


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_validate_track_command_on_a_small_simulated_run(tmp_path):
    """100 GeV electrons through the fast simulation, tracked and validated by the CLI."""
    from recon.cli import main
    from tests.validation.sim_momentum_scan import (
        simulate_fixed_momentum_run,
        write_true_strip_pedestals,
    )

    run = 4100
    simulate_fixed_momentum_run(
        100.0, run, 600, 2016, tmp_path, conditions_roots=[CONDITIONS], sigma_p_rel=0.01
    )
    derived = tmp_path / "derived"
    write_true_strip_pedestals(
        tmp_path / f"true_constants_run{run}.json", derived, conditions_roots=[CONDITIONS]
    )
    cond = ["--conditions", str(CONDITIONS), "--conditions", str(derived)]
    assert (
        main(
            [
                "decode",
                str(tmp_path / f"run{run}.na64raw"),
                "-o",
                str(tmp_path / "d.parquet"),
                "--conditions",
                str(CONDITIONS),
            ]
        )
        == 0
    )
    assert (
        main(["track", str(tmp_path / "d.parquet"), "-o", str(tmp_path / "t.parquet"), *cond]) == 0
    )
    out = tmp_path / "v.json"
    assert (
        main(
            [
                "validate-track",
                "--tracks",
                str(tmp_path / "t.parquet"),
                "--truth",
                str(tmp_path / f"run{run}.truth.parquet"),
                "--output-json",
                str(out),
                "--plots",
                str(tmp_path / "plots"),
                *cond,
            ]
        )
        == 0
    )
    figures = json.loads(out.read_text())
    ref = figures["reference"]
    # 600 electrons: efficiency 98 % +- 0.6 %, sigma(p)/p 0.41 % +- 0.015 %
    assert ref["efficiency"]["efficiency"] > 0.95
    assert 0.0035 < ref["resolution"] < 0.005
    assert abs(ref["bias"]) < 0.001
    assert 0.85 < ref["pull"]["half_width"] < 1.15
    assert (tmp_path / "plots" / "track_validation_resolution_vs_p.png").stat().st_size > 0
