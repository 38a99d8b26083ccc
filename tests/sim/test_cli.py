"""``na64 simulate`` through its ``register`` hook, with the stub generator."""

from __future__ import annotations

import argparse
import json
import logging

import pytest

import sim.run
from recon.io.rawformat import FileHeader, RunType
from recon.io.tables import read_events
from sim.cli import register
from tests.conftest import CONDITIONS
from tests.sim.conftest import stub_source


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="na64")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_simulate_command_writes_raw_truth_summary_and_constants(tmp_path, monkeypatch, caplog,
                                                                  small_params_file):
    monkeypatch.setattr(sim.run, "generator_event_source",
                        lambda geometry, field_data: stub_source(geometry))
    raw = tmp_path / "run7.na64raw"
    args = _parser().parse_args([
        "simulate", "--setup", "invis2016", "--run", "7", "--kind", "calibration",
        "--events", "40", "--seed", "5", "-o", str(raw), "--conditions", str(CONDITIONS),
        "--params", str(small_params_file), "--true-constants", str(tmp_path / "tc.json"),
    ])
    with caplog.at_level(logging.INFO, logger="na64"):
        assert args.func(args) == 0
    header = FileHeader.unpack(raw.read_bytes()[:64])
    assert (header.run, header.run_type, header.n_events) == (7, RunType.CALIBRATION, 40)
    assert (tmp_path / "run7.na64raw.truth.parquet").exists()
    summary = json.loads((tmp_path / "run7.na64raw.summary.json").read_text())
    assert summary["kind"] == "calibration" and summary["n_triggered"] == 40
    assert json.loads((tmp_path / "tc.json").read_text())["seed"] == 5
    assert any("simulate calibration run 7" in r.getMessage() for r in caplog.records)
    assert not list(tmp_path.glob(".*.tmp"))


def test_signal_needs_mass(tmp_path):
    args = _parser().parse_args([
        "simulate", "--run", "1", "--kind", "signal", "--events", "5", "--seed", "1",
        "-o", str(tmp_path / "x.na64raw"),
    ])
    with pytest.raises(SystemExit, match="mass-mev"):
        args.func(args)


def test_energy_scan_options_need_a_calibration_run(tmp_path):
    args = _parser().parse_args([
        "simulate", "--run", "1", "--kind", "physics", "--events", "5", "--seed", "1",
        "-o", str(tmp_path / "x.na64raw"), "--beam-energy-gev", "10", "20",
    ])
    with pytest.raises(SystemExit, match="--kind calibration"):
        args.func(args)


def test_scan_cells_option_makes_a_muon_cell_scan(tmp_path, monkeypatch, small_params_file):
    monkeypatch.setattr(sim.run, "generator_event_source",
                        lambda geometry, field_data: stub_source(geometry))
    raw = tmp_path / "run904.na64raw"
    args = _parser().parse_args([
        "simulate", "--run", "904", "--kind", "hcal_calibration", "--events", "72",
        "--seed", "5", "-o", str(raw), "--conditions", str(CONDITIONS),
        "--params", str(small_params_file), "--scan-cells",
    ])
    assert args.func(args) == 0
    summary = json.loads((tmp_path / "run904.na64raw.summary.json").read_text())
    assert summary["scan_cells"] is True and summary["n_triggered"] == 72
    truth = read_events(tmp_path / "run904.na64raw.truth.parquet")
    assert sorted(set(truth.segment.to_numpy().tolist())) == list(range(36))


def test_scan_cells_needs_a_muon_run(tmp_path):
    args = _parser().parse_args([
        "simulate", "--run", "1", "--kind", "calibration", "--events", "5", "--seed", "1",
        "-o", str(tmp_path / "x.na64raw"), "--scan-cells",
    ])
    with pytest.raises(SystemExit, match="hcal_calibration"):
        args.func(args)


def test_unknown_kind_is_refused():
    with pytest.raises(SystemExit):
        _parser().parse_args(["simulate", "--run", "1", "--kind", "cosmics", "--events", "5",
                              "--seed", "1", "-o", "x"])
