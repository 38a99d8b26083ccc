"""The whole DAG on the small `.test` configuration: outputs, partial reruns, reproducibility.

One real run (2 cores) feeds the dry-run tests; each dry run asserts exactly which
jobs Snakemake plans after one change. A second real run with 1 core must give
byte-identical results.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from recon.io.tables import read_events, read_provenance
from tests.conftest import REPO
from tests.workflow.conftest import planned_jobs, snakemake

pytestmark = pytest.mark.workflow

RESULTS = Path("results/test")
PHYSICS = ("physics", "signal_m16")  # datasets reconstructed beyond decoding
N_CHUNKS = 3  # physics runs 1001, 1002 and signal run 2001
VALIDATION = {"validate_calo": 1, "validate_track": 1, "validate_events": 1, "all": 1}
ANALYSIS = {"select": 1, "signal_efficiency": 1, "limit": 1}
# calo also runs on the ECAL cell scan, the muon run and the ECAL energy scan, for the
# validation; the snapshot records the derived conditions
DOWNSTREAM_OF_CALO = (
    {"calo": N_CHUNKS + 3, "classify": N_CHUNKS, "merge_simulated": 2, "snapshot": 1}
    | VALIDATION
    | ANALYSIS
)
DOWNSTREAM_OF_TRACK = {
    "track": N_CHUNKS, "classify": N_CHUNKS, "merge_simulated": 2, "validate_track": 1,
    "validate_events": 1, "all": 1,
} | ANALYSIS  # fmt: skip


def _copy_tree(dest: Path) -> Path:
    """A copy of the workflow and the code it hashes, so a test can edit them."""
    dest.mkdir()
    for name in ("Snakefile", "workflow", "envs", "recon", "sim", "conditions"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dest / name)
    return dest


def _workdir(base: Path, repo: Path, **overrides) -> Path:
    workdir = base / "work"
    workdir.mkdir()
    config = yaml.safe_load((REPO / ".test" / "config.yaml").read_text())
    config["conditions"]["roots"] = [str(repo / "conditions")]
    config.update(overrides)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return workdir


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    base = tmp_path_factory.mktemp("chain")
    repo = _copy_tree(base / "repo")
    workdir = _workdir(base, repo)
    snakemake(workdir, "--cores", "2", snakefile=repo / "Snakefile")
    return repo, workdir


def _dry(repo: Path, workdir: Path) -> dict[str, int]:
    return planned_jobs(
        snakemake(workdir, "-n", "--cores", "1", snakefile=repo / "Snakefile").stdout
    )


def test_events_tables_have_the_columns_of_the_classification(chain):
    _, workdir = chain
    required = {"run", "spill", "event", "weight", "p_track_GeV", "track_chi2ndf", "e_ecal_GeV",
                "e_ecal_pre_GeV", "e_hcal_GeV", "e_hcal_total_GeV", "srd_tag", "v2_GeV", "region",
                "in_signal_box"}  # fmt: skip
    for dataset in PHYSICS:
        events = read_events(workdir / RESULTS / dataset / "events.parquet")
        truth = read_events(workdir / RESULTS / dataset / "truth.parquet")
        assert required <= set(events.fields)
        assert len(events) == len(truth) > 0
        assert np.array_equal(np.asarray(events.event), np.asarray(truth.event))
        assert read_provenance(workdir / RESULTS / dataset / "events.parquet")["stage"] == "merge"
    signal = read_events(workdir / RESULTS / "signal_m16" / "events.parquet")
    assert np.mean(np.asarray(signal.srd_tag)) > 0.9  # 100 GeV electrons are tagged
    assert np.mean(np.asarray(signal.in_signal_box)) > 0.5  # and mostly miss energy


def test_every_chunk_decoded_without_rejection(chain):
    _, workdir = chain
    for summary in (workdir / RESULTS).glob("*/decode_summary.json"):
        report = yaml.safe_load(summary.read_text())
        assert report["events_rejected"] == 0 and report["events_read"] == report["events_decoded"]


def test_the_blind_analysis_ends_in_a_limit(chain):
    _, workdir = chain
    analysis = workdir / RESULTS / "analysis"
    selection = json.loads((analysis / "selection" / "background.json").read_text())
    assert selection["blinded"] is True and selection["observed_in_box"] is None
    efficiency = json.loads((analysis / "efficiency" / "signal_m16.json").read_text())
    assert 0.4 < efficiency["efficiency"] < 1.0  # the paper: 0.69 at low mass
    lines = (analysis / "limit" / "limit_paper.csv").read_text().splitlines()
    assert lines[0] == "m_GeV,eps_up" and len(lines) == 1 + 7
    m_GeV, eps_up = np.loadtxt(lines[1:], delimiter=",", unpack=True)
    assert m_GeV[0] == pytest.approx(0.001) and m_GeV[-1] == pytest.approx(1.0)
    assert np.all(np.diff(eps_up) > 0) and 1e-5 < eps_up[0] < 1e-3  # paper: ~1e-4 at 1 MeV
    limit = json.loads((analysis / "limit" / "limit.json").read_text())
    assert limit["blinded"] is True and limit["paper"]["n90"] == pytest.approx(2.4, abs=0.1)


def test_nothing_to_do_after_a_complete_run(chain):
    assert _dry(*chain) == {}


def test_new_calibration_version_reruns_its_derivation_and_calo_only(chain):
    repo, workdir = chain
    path = workdir / "config.yaml"
    original = path.read_text()
    config = yaml.safe_load(original)
    config["calibration"]["versions"] = {"ecal_calibration": "v2"}
    path.write_text(yaml.safe_dump(config))
    try:
        assert _dry(repo, workdir) == {"derive_ecal_calibration": 1, **DOWNSTREAM_OF_CALO}
    finally:
        path.write_text(original)


def test_changed_calibration_file_reruns_calo_and_what_follows(chain):
    repo, workdir = chain
    condition = workdir / RESULTS / "conditions" / "invis2016" / "ecal_calibration" / "v1.json"
    original, stat = condition.read_text(), condition.stat()
    document = json.loads(original)
    document["data"]["gain_GeV_per_adc"][1][3][3] *= 1.01  # one cell recalibrated by hand
    condition.write_text(json.dumps(document))
    try:
        assert _dry(repo, workdir) == DOWNSTREAM_OF_CALO
    finally:
        condition.write_text(original)
        os.utime(condition, (stat.st_atime, stat.st_mtime))


def test_changed_tracking_parameters_rerun_tracking_only(chain):
    repo, workdir = chain
    parameters = repo / "conditions" / "invis2016" / "tracking_parameters" / "v1.yaml"
    original = parameters.read_text()
    parameters.write_text(original.replace("max_dt_xy_ns: 20.0", "max_dt_xy_ns: 22.0"))
    try:  # the snapshot records the shipped conditions
        assert _dry(repo, workdir) == DOWNSTREAM_OF_TRACK | {"snapshot": 1}
    finally:
        parameters.write_text(original)
        stamp = (REPO / "conditions" / "invis2016" / "tracking_parameters" / "v1.yaml").stat()
        os.utime(parameters, (stamp.st_atime, stamp.st_mtime))


def test_edited_stage_code_reruns_that_stage_and_what_follows(chain):
    repo, workdir = chain
    module = repo / "recon" / "tracking" / "track_fit.py"
    original = module.read_text()
    module.write_text(original + "\n# an edit\n")
    try:
        assert _dry(repo, workdir) == DOWNSTREAM_OF_TRACK
    finally:
        module.write_text(original)


def _result_files(workdir: Path) -> dict[str, bytes]:
    files = {}
    for top in ("results", "data"):
        for path in sorted((workdir / top).rglob("*")):
            if path.is_file() and "benchmarks" not in path.parts:
                files[path.relative_to(workdir).as_posix()] = path.read_bytes()
    return files


def test_one_core_gives_byte_identical_results(chain, tmp_path):
    repo, workdir = chain
    other = _workdir(tmp_path, repo)
    snakemake(other, "--cores", "1", snakefile=repo / "Snakefile")
    mine, theirs = _result_files(workdir), _result_files(other)
    assert sorted(mine) == sorted(theirs)
    differing = [name for name in mine if mine[name] != theirs[name]]
    assert differing == []


def test_report_collects_the_plots(chain, tmp_path):
    repo, workdir = chain
    report = tmp_path / "report.html"
    snakemake(workdir, "--report", str(report), snakefile=repo / "Snakefile")
    text = report.read_text(errors="replace")
    assert "Calibration" in text and "Validation" in text and "Analysis" in text


# `chunk_jobs: per_chunk`: one `na64 chain` job per chunk of a physics dataset


@pytest.fixture(scope="module")
def chained(chain, tmp_path_factory):
    repo, _ = chain
    workdir = _workdir(tmp_path_factory.mktemp("chained"), repo, chunk_jobs="per_chunk")
    snakemake(workdir, "--cores", "2", snakefile=repo / "Snakefile")
    return repo, workdir


def test_one_job_per_chunk_writes_the_same_files(chain, chained):
    staged, chunked = _result_files(chain[1]), _result_files(chained[1])
    assert set(chunked) - set(staged) == {f"{RESULTS}/calibration/calibration_set.json"}
    differing = [name for name in staged if staged[name] != chunked[name]]
    assert differing == [f"{RESULTS}/snapshot/config.yaml"]  # it records `chunk_jobs`
    assert _dry(*chained) == {}


def test_one_job_per_chunk_redoes_only_the_stages_a_calibration_touches(chained):
    repo, workdir = chained
    condition = workdir / RESULTS / "conditions" / "invis2016" / "ecal_calibration" / "v1.json"
    document = json.loads(condition.read_text())
    document["data"]["gain_GeV_per_adc"][1][3][3] *= 1.01
    condition.write_text(json.dumps(document))
    assert _dry(repo, workdir) == {  # calo: the ECAL scan, the muon run, the energy scan
        "calibration_set": 1, "chain": N_CHUNKS, "calo": 3,
        "decode_summary": len(PHYSICS), "merge_simulated": 2, "snapshot": 1,
    } | VALIDATION | ANALYSIS  # fmt: skip
    stages = ("digits", "calo", "track", "events")
    before = {s: _stage_bytes(workdir, s) for s in stages}
    snakemake(workdir, "--cores", "2", snakefile=repo / "Snakefile")
    after = {s: _stage_bytes(workdir, s) for s in stages}
    assert after["digits"] == before["digits"] and after["track"] == before["track"]
    assert after["calo"] != before["calo"] and after["events"] != before["events"]
    logs = "".join(p.read_text() for p in (workdir / "logs").rglob("chain/*/*.log"))
    kept = [line for line in logs.splitlines() if line.endswith(": kept")]
    assert len(kept) == 2 * N_CHUNKS  # decode and track of every chunk
    assert all("/digits/" in line or "/track/" in line for line in kept)


def _stage_bytes(workdir: Path, stage: str) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for dataset in PHYSICS
        for p in sorted((workdir / RESULTS / dataset / stage).glob("*.parquet"))
    }
