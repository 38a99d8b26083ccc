"""Blinding: no output of ``na64 select`` shows signal-box events unless unblinded (logged)."""

from __future__ import annotations

import json
import logging

import awkward as ak
import numpy as np
import pytest

from recon.analysis.backgrounds import SidebandConfig
from recon.analysis.blinding import blind, blinding_state, box_mask, hides_box
from recon.analysis.selection import SelectionConfig, paper_selection
from recon.cli import main
from recon.commands.select import select_events
from recon.io.tables import read_events, write_events

N_BOX_SELECTED = 3  # events inside the box passing (i)-(iv)


def _sample(seed: int = 5) -> dict[str, np.ndarray]:
    """Events passing (i)-(iv): 3 in the box, 40 in sideband A, 20 in C; 10 box events failing."""
    rng = np.random.default_rng(seed)
    e_ecal = np.concatenate(
        [
            rng.uniform(5, 45, 3),
            rng.uniform(5, 45, 40),
            rng.uniform(55, 95, 20),
            rng.uniform(5, 45, 10),
        ]
    )
    e_hcal = np.concatenate(
        [
            rng.uniform(0, 0.9, 3),
            1.0 + rng.exponential(10, 40),
            rng.uniform(0, 0.9, 20),
            rng.uniform(0, 0.9, 10),
        ]
    )
    n = e_ecal.size
    srd = np.ones(n, bool)
    srd[-10:] = False  # the failing box events: no SRD tag
    return {
        "run": np.full(n, 1001, np.uint32),
        "spill": np.zeros(n, np.uint32),
        "event": np.arange(n, dtype=np.uint32),
        "weight": np.ones(n),
        "theta_in_mrad": np.full(n, 0.1),
        "srd_tag": srd,
        "ecal_shape_chi2": np.full(n, 1.0),
        "v2_GeV": np.zeros(n),
        "e_ecal_GeV": e_ecal,
        "e_hcal_GeV": e_hcal,
        "in_signal_box": (e_ecal < 50) & (e_hcal < 1),
    }


def _in_box(e_ecal, e_hcal) -> np.ndarray:
    return (np.asarray(e_ecal) < 50) & (np.asarray(e_hcal) < 1)


def test_blind_removes_box_rows_only_while_blinded():
    cols = _sample()
    in_box = box_mask(cols, paper_selection(cols, SelectionConfig()))
    assert in_box.sum() == N_BOX_SELECTED + 10
    hidden = blind(cols, in_box, blinded=True)
    assert not _in_box(hidden["e_ecal_GeV"], hidden["e_hcal_GeV"]).any()
    assert len(hidden["event"]) == len(cols["event"]) - in_box.sum()
    assert len(blind(cols, in_box, blinded=False)["event"]) == len(cols["event"])


def test_classify_label_alone_hides_an_event():
    cols = _sample()
    cols["in_signal_box"] = np.zeros(cols["event"].size, bool)
    cols["in_signal_box"][5] = True  # labelled by classify with other thresholds
    in_box = box_mask(cols, paper_selection(cols, SelectionConfig()))
    assert in_box[5] and in_box.sum() == N_BOX_SELECTED + 10 + 1


def test_unblinding_is_logged_as_a_warning(caplog):
    with caplog.at_level(logging.INFO, logger="na64.blinding"):
        assert blinding_state(False) is True
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert blinding_state(True) is False
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "UNBLINDED" in warnings[0].getMessage()


def test_hides_box_rows():
    assert hides_box(["track_angle", "ecal_box", "hcal_box"])
    assert not hides_box(["track_angle", "ecal_box"])


def _core(blinded: bool):
    config = SidebandConfig(min_fit_events=5, bins=10)
    return select_events(
        _sample(),
        None,
        selection_config=SelectionConfig(),
        sideband_config=config,
        dataset_eot=1e6,
        target_eot=1e9,
        blinded=blinded,
    )


def test_every_output_of_the_core_is_blind():
    out = _core(blinded=True)
    for plane in (out.plane_before, out.plane_after, out.selected):
        assert not _in_box(plane["e_ecal_GeV"], plane["e_hcal_GeV"]).any()
    for sample in out.sideband_samples.values():  # the fits' inputs
        assert sample["x"].size > 0
    assert out.summary["observed_in_box"] is None
    assert "hcal_box" not in out.cutflow["cut"].tolist()
    with_box = out.n_minus_one[out.n_minus_one["cut_set"] == "(i)-(iv)+box"]
    assert with_box["cut"].tolist() == ["initial", "ecal_box", "hcal_box"]
    preselection = out.n_minus_one[out.n_minus_one["cut_set"] == "(i)-(iv)"]
    assert preselection["n"][-1] == 60  # (i)-(iv) outside the box: A and C
    opened = _core(blinded=False)
    assert opened.summary["observed_in_box"] == {"n": N_BOX_SELECTED, "sum_w": N_BOX_SELECTED}
    assert opened.cutflow["n"][-1] == N_BOX_SELECTED


def _write_dataset(tmp_path):
    cols = _sample()
    events = ak.zip({k: ak.from_numpy(v) for k, v in cols.items()}, depth_limit=1)
    write_events(tmp_path / "events.parquet", [events], {"stage": "test"})
    n = cols["event"].size
    truth = ak.zip(
        {
            "run": cols["run"],
            "spill": cols["spill"],
            "event": cols["event"],
            "weight": np.ones(n),
            "process": np.full(n, 4, np.int8),
            "pileup_pdg": np.zeros(n, np.int32),
        },
        depth_limit=1,
    )
    write_events(tmp_path / "truth.parquet", [truth], {"stage": "test"})
    (tmp_path / "run1001.summary.json").write_text(json.dumps({"eot": 5e5}))


def _run(tmp_path, *extra):
    out = tmp_path / ("open" if "--unblind" in extra else "blind")
    argv = [
        "select",
        "--events",
        str(tmp_path / "events.parquet"),
        "--truth",
        str(tmp_path / "truth.parquet"),
        "--sim-summary",
        str(tmp_path / "run1001.summary.json"),
        "--target-eot",
        "2.75e9",
        "--selection-sideband-bins",
        "10",
        "--classify-hadronic-sum-window",
        "0.8",
        "1.2",
        "--output-dir",
        str(out),
        "--plots",
        str(out / "plots"),
        *extra,
    ]
    assert main(argv) == 0
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("select")
    _write_dataset(path)
    return path


def test_command_outputs_are_blind(dataset):
    out = _run(dataset)
    selected = read_events(out / "selected.parquet")
    assert len(selected) == 60 and not _in_box(selected.e_ecal_GeV, selected.e_hcal_GeV).any()
    summary = json.loads((out / "background.json").read_text())
    assert summary["blinded"] is True and summary["observed_in_box"] is None
    assert summary["dataset_eot"] == 5e5
    cutflow = (out / "cutflow.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in cutflow[1:]][-1] == "ecal_box"
    assert all(line.endswith(",true") for line in cutflow[1:])
    # the simulation's prediction (method 1) counts simulated box events: documented exception
    mc_total = (out / "background_mc.csv").read_text().splitlines()[-1].split(",")
    assert mc_total[0] == "total" and int(mc_total[2]) == N_BOX_SELECTED
    n1 = [line.split(",")[:2] for line in (out / "n_minus_one.csv").read_text().splitlines()[1:]]
    assert [cut for cut_set, cut in n1 if cut_set == "(i)-(iv)+box"] == [
        "initial",
        "ecal_box",
        "hcal_box",
    ]
    assert sorted(p.name for p in (out / "plots").iterdir()) == [
        "cutflow.png",
        "fig2_after.png",
        "fig2_before.png",
        "sideband_fits.png",
    ]


def test_command_unblinds_only_on_request_and_says_so(dataset, caplog):
    with caplog.at_level(logging.WARNING, logger="na64.blinding"):
        out = _run(dataset, "--unblind")
    assert any("UNBLINDED" in r.getMessage() for r in caplog.records)
    summary = json.loads((out / "background.json").read_text())
    assert summary["blinded"] is False
    assert summary["observed_in_box"]["n"] == N_BOX_SELECTED
    selected = read_events(out / "selected.parquet")
    assert _in_box(selected.e_ecal_GeV, selected.e_hcal_GeV).sum() == N_BOX_SELECTED
