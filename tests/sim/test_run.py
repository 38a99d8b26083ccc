"""Run assembly: exact event counts, header fields, numbering, determinism, decodability."""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest

from recon.io.rawformat import FileHeader, RunType
from recon.io.tables import read_events
from sim.run import run_segments, simulate_run
from tests.conftest import CONDITIONS
from tests.sim.conftest import RUN, stub_source

decode = pytest.importorskip("recon.decode")

KINDS = {  # kind: (run type, trigger mask)
    "physics": (RunType.PHYSICS, 1),
    "signal": (RunType.PHYSICS, 1),
    "calibration": (RunType.CALIBRATION, 2),
    "hcal_calibration": (RunType.CALIBRATION, 2),
    "pedestal": (RunType.PEDESTAL, 4),
}


def _simulate(tmp_path, geometry, params_file, kind="physics", n=60, seed=3, batch_size=1000,
              tag="a"):
    raw, truth = tmp_path / f"{tag}.na64raw", tmp_path / f"{tag}.truth.parquet"
    summary = simulate_run(kind, RUN, n, seed, raw, truth,
                           mass_GeV=0.0167 if kind == "signal" else None, batch_size=batch_size,
                           conditions_roots=[CONDITIONS], params_path=params_file,
                           summary_path=tmp_path / f"{tag}.summary.json",
                           event_source=stub_source(geometry))
    return raw, truth, summary


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_has_exact_counts_header_and_decodes_cleanly(tmp_path, geometry, db,
                                                                small_params_file, kind):
    n = 72 if kind == "calibration" else 60
    raw, truth, summary = _simulate(tmp_path, geometry, small_params_file, kind, n)
    header = FileHeader.unpack(raw.read_bytes()[:64])
    run_type, mask = KINDS[kind]
    assert (header.run, header.run_type, header.setup) == (RUN, run_type, "invis2016")
    assert header.simulated and header.n_events == n
    digits, report = decode.decode_file(raw, db)
    assert report.events_rejected == 0
    assert len(digits) == n
    assert ak.all(digits.trigger_mask == mask)
    # spills of 25 triggers (small parameter file), numbered from 1
    index = np.arange(n)
    np.testing.assert_array_equal(digits.spill, index // 25 + 1)
    np.testing.assert_array_equal(digits.event, index % 25 + 1)
    assert (np.diff(digits.trigger_time_ns.to_numpy().astype(np.int64)) > 0).all()
    assert ak.all(ak.num(digits.ecal) == 72) and ak.all(ak.num(digits.hcal) == 36)
    assert ak.all(ak.num(digits.counters) == 11)
    table = read_events(truth)
    assert len(table) == n
    for key in ("run", "spill", "event", "trigger_time_ns"):
        np.testing.assert_array_equal(table[key], digits[key])
    assert summary["n_events"] == summary["n_triggered"] == n
    if kind == "pedestal":
        assert ak.all(ak.num(digits.strips) == 2 * (2 * 320 + 2 * 256))
        assert summary["eot"] == 0
    else:
        assert ak.sum(ak.num(digits.strips)) < 0.05 * n * 2304  # zero suppression on


def test_output_does_not_depend_on_batch_size(tmp_path, geometry, small_params_file):
    raw_a, truth_a, _ = _simulate(tmp_path, geometry, small_params_file, n=90, batch_size=7,
                                  tag="a")
    raw_b, truth_b, _ = _simulate(tmp_path, geometry, small_params_file, n=90, batch_size=1000,
                                  tag="b")
    assert raw_a.read_bytes() == raw_b.read_bytes()
    a, b = read_events(truth_a), read_events(truth_b)
    assert a.fields == b.fields
    for name in a.fields:
        np.testing.assert_array_equal(ak.to_numpy(a[name]), ak.to_numpy(b[name]))
    raw_c, _, _ = _simulate(tmp_path, geometry, small_params_file, n=90, seed=4, tag="c")
    assert raw_c.read_bytes() != raw_a.read_bytes()


def test_summary_counts_electrons_on_target(tmp_path, geometry, small_params_file):
    _, truth, summary = _simulate(tmp_path, geometry, small_params_file, n=100)
    on_disk = json.loads((tmp_path / "a.summary.json").read_text())
    assert on_disk["n_beam"] == summary["n_beam"] == 40 * summary["n_blocks"]
    # stub: every beam particle is an electron, 25 % trigger; the last block is cut
    assert summary["eot_generated"] == summary["n_beam"]
    assert summary["eot"] <= summary["eot_generated"]
    assert summary["n_triggered_generated"] >= 100
    assert summary["processes"]["em_shower"] == {"events": 100, "weighted": 100.0}
    assert on_disk["seed"] == 3 and on_disk["versions"]["digitization_params"]["version"] == "v1"
    assert len(read_events(truth).ecal_true_GeV[0]) == 2


def test_calibration_scans_every_cell_equally(tmp_path, geometry, small_params_file):
    segments = run_segments("calibration", 75, geometry)
    assert len(segments) == 36
    assert sorted({s.n_events for s in segments}) == [2, 3]
    assert sum(s.n_events for s in segments) == 75
    _, truth, _ = _simulate(tmp_path, geometry, small_params_file, "calibration", 72)
    table = read_events(truth)
    np.testing.assert_array_equal(np.bincount(table.segment.to_numpy()), np.full(36, 2))
    centres_x = geometry.ecal.cell_x(np.arange(6))
    assert set(np.unique(table.beam_target_x_mm.to_numpy())) == set(centres_x)
    # the stub's shower lands where the beam was steered
    ecal = table.ecal_true_GeV.to_numpy()[:, 1]
    hottest = ecal.reshape(len(table), -1).argmax(axis=1)
    ix, iy = np.divmod(hottest, 6)
    np.testing.assert_allclose(geometry.ecal.cell_x(ix), table.beam_target_x_mm.to_numpy())
    np.testing.assert_allclose(geometry.ecal.cell_y(iy), table.beam_target_y_mm.to_numpy())


def test_energy_scan_aims_one_cell_at_each_beam_energy(tmp_path, geometry, small_params_file):
    segments = run_segments("calibration", 10, geometry, beam_energies_GeV=[10, 50, 100],
                            target_cell=(3, 2))
    assert [s.beam_energy_GeV for s in segments] == [10.0, 50.0, 100.0]
    assert [s.n_events for s in segments] == [4, 3, 3]
    centre = (float(geometry.ecal.cell_x(3)), float(geometry.ecal.cell_y(2)))
    assert all(s.beam_target_xy_mm == centre for s in segments)
    # without the options: the cell scan, nominal energy
    assert all(s.beam_energy_GeV is None for s in run_segments("calibration", 72, geometry))
    with pytest.raises(ValueError, match="calibration runs only"):
        run_segments("physics", 10, geometry, beam_energies_GeV=[10])
    with pytest.raises(ValueError, match="outside"):
        run_segments("calibration", 10, geometry, target_cell=(6, 0))
    raw, truth = tmp_path / "s.na64raw", tmp_path / "s.parquet"
    summary = simulate_run("calibration", RUN, 30, 1, raw, truth, conditions_roots=[CONDITIONS],
                           params_path=small_params_file, event_source=stub_source(geometry),
                           beam_energies_GeV=[20.0, 100.0], target_cell=(3, 2))
    table = read_events(truth)
    segment, p_true = table.segment.to_numpy(), table.p_true_GeV.to_numpy()
    np.testing.assert_array_equal(np.bincount(segment), [15, 15])
    np.testing.assert_array_equal(p_true, np.where(segment == 0, 20.0, 100.0))
    hottest = table.ecal_true_GeV.to_numpy()[:, 1].reshape(len(table), -1).argmax(axis=1)
    assert np.all(hottest == 3 * 6 + 2)
    assert summary["beam_energies_GeV"] == [20.0, 100.0] and summary["target_cell"] == [3, 2]
    _, _, cell_scan = _simulate(tmp_path, geometry, small_params_file, "calibration", 36,
                                tag="c")
    assert "beam_energies_GeV" not in cell_scan and "target_cell" not in cell_scan


def test_muon_scan_aims_at_every_cell(tmp_path, db, geometry, generator_params_file):
    """``scan_cells``: mu- aimed at every ECAL cell centre in turn, one segment per cell; the
    muon crosses the aimed cell (its largest main-section deposit)."""
    pytest.importorskip("sim.generator")
    segments = run_segments("hcal_calibration", 75, geometry, scan_cells=True)
    assert len(segments) == 36 and sum(s.n_events for s in segments) == 75
    centres = {(float(geometry.ecal.cell_x(ix)), float(geometry.ecal.cell_y(iy)))
               for ix in range(6) for iy in range(6)}
    assert {s.beam_target_xy_mm for s in segments} == centres
    # without the option: one segment of the undeflected beam, as before
    assert run_segments("hcal_calibration", 75, geometry) == [run_segments("physics", 75,
                                                                           geometry)[0]]
    with pytest.raises(ValueError, match="muon"):
        run_segments("calibration", 75, geometry, scan_cells=True)
    raw, truth = tmp_path / "m.na64raw", tmp_path / "m.parquet"
    summary = simulate_run("hcal_calibration", RUN, 144, 4, raw, truth,
                           conditions_roots=[CONDITIONS], params_path=generator_params_file,
                           scan_cells=True)
    assert summary["scan_cells"] is True and summary["n_triggered"] == 144
    table = read_events(truth)
    segment = table.segment.to_numpy()
    np.testing.assert_array_equal(np.bincount(segment), np.full(36, 4))
    assert np.all(table.pdg.to_numpy() == 13)
    ix, iy = np.divmod(segment, 6)
    np.testing.assert_allclose(table.beam_target_x_mm.to_numpy(), geometry.ecal.cell_x(ix))
    np.testing.assert_allclose(table.beam_target_y_mm.to_numpy(), geometry.ecal.cell_y(iy))
    main = table.ecal_true_GeV.to_numpy()[:, 1].reshape(len(table), -1)
    assert np.mean(main.argmax(axis=1) == segment) > 0.95
    digits, report = decode.decode_file(raw, db)
    assert report.events_rejected == 0 and len(digits) == 144


def test_blocks_without_triggers_are_skipped(tmp_path, geometry, small_params_file):
    stub = stub_source(geometry)
    calls = []

    def sometimes_empty(kind, n_beam, rng, **kwargs):
        events, eot = stub(kind, n_beam, rng, **kwargs)
        calls.append(len(events))
        return (events.take(np.arange(0)), eot) if len(calls) % 2 else (events, eot)

    raw, truth = tmp_path / "e.na64raw", tmp_path / "e.parquet"
    summary = simulate_run("physics", RUN, 30, 1, raw, truth, conditions_roots=[CONDITIONS],
                           params_path=small_params_file, event_source=sometimes_empty)
    assert FileHeader.unpack(raw.read_bytes()[:64]).n_events == 30
    assert len(read_events(truth)) == 30
    assert summary["n_blocks"] == len(calls) and summary["n_beam"] == 40 * len(calls)


@pytest.fixture
def generator_params_file(tmp_path, params):
    """Blocks sized for the real generator (about 1 % physics triggers)."""
    import yaml

    small = yaml.safe_load(yaml.safe_dump(params))
    small["run"]["beam_per_block"] = {"physics": 20000, "signal": 100, "ecal_scan": 50,
                                      "hcal_muons": 100, "random": 100}
    small["run"]["triggers_per_spill"] = dict.fromkeys(small["run"]["triggers_per_spill"], 25)
    path = tmp_path / "digitization-generator.yaml"
    path.write_text(yaml.safe_dump(small))
    return path


@pytest.mark.parametrize("kind", list(KINDS))
def test_real_generator_runs_decode_cleanly(tmp_path, db, generator_params_file, kind):
    pytest.importorskip("sim.generator")
    n = 72 if kind == "calibration" else 50
    raw, truth = tmp_path / f"{kind}.na64raw", tmp_path / f"{kind}.parquet"
    summary = simulate_run(kind, RUN, n, 8, raw, truth, mass_GeV=0.0167,
                           conditions_roots=[CONDITIONS], params_path=generator_params_file)
    digits, report = decode.decode_file(raw, db)
    assert report.events_rejected == 0 and len(digits) == n == summary["n_triggered"]
    table = read_events(truth)
    np.testing.assert_array_equal(table.event, digits.event)
    if kind in ("physics", "signal", "calibration"):
        assert summary["eot"] > 0
    if kind == "signal":  # every electron reaching the ECAL emits an A', triggered or not
        generated = np.sum(summary["aprime_generated"]["counts"])
        assert generated == pytest.approx(summary["eot"], rel=0.05)
        assert "aprime_generated" not in simulate_run(
            "physics", RUN + 1, 5, 8, tmp_path / "p.raw", tmp_path / "p.parquet",
            conditions_roots=[CONDITIONS], params_path=generator_params_file)


def test_signal_needs_a_mass(tmp_path):
    with pytest.raises(ValueError, match="mass"):
        simulate_run("signal", RUN, 10, 1, tmp_path / "x.raw", tmp_path / "x.parquet",
                     conditions_roots=[CONDITIONS])
