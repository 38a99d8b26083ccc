"""The per-tag snapshot: `na64 snapshot` on the shipped conditions, and its workflow rule."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest
import yaml

from recon.cli import main
from tests.conftest import CONDITIONS, REPO, random_batch, write_raw
from tests.workflow.conftest import planned_jobs, snakemake

SHIPPED_KINDS = sorted(p.name for p in (CONDITIONS / "invis2016").iterdir() if p.is_dir())


def _derived_root(tmp_path):
    """A derived conditions root with one ECAL calibration valid for runs 1000-1999 only."""
    root = tmp_path / "derived"
    path = root / "invis2016" / "ecal_calibration" / "v7.json"
    path.parent.mkdir(parents=True)
    document = {"kind": "ecal_calibration", "setup": "invis2016", "version": "v7",
                "valid_runs": [1000, 1999], "data": {}}  # fmt: skip
    path.write_text(json.dumps(document))
    return root, path


def _snapshot(tmp_path, out, derived, raw):
    datasets = {
        "physics": {"simulate": {"kind": "physics", "runs": [1001], "events": 10}},
        "recorded": {"raw": [str(raw.parent / "cdr*.na64raw")]},
    }
    config = {"tag": "t1", "setup": "invis2016", "srd": {"min_modules": 2}, "datasets": datasets}
    args = ["snapshot", "--config-json", json.dumps(config), "-o", str(out)]
    args += ["--runs", "1002", "--derived", str(derived)]
    args += ["--conditions", str(CONDITIONS), "--conditions", str(derived)]
    assert main(args) == 0
    return config


def test_snapshot_lists_every_condition_with_checksums_and_copies_the_shipped_ones(tmp_path):
    derived, calibration = _derived_root(tmp_path)
    raw = write_raw(tmp_path / "cdr.na64raw", random_batch(np.random.default_rng(0), 2), run=2500)
    out = tmp_path / "snapshot"
    config = _snapshot(tmp_path, out, derived, raw)

    assert yaml.safe_load((out / "config.yaml").read_text()) == config
    doc = json.loads((out / "conditions.json").read_text())
    assert doc["tag"] == "t1" and doc["runs"] == [1001, 1002, 2500]  # the raw header's run too
    entries = {e["kind"]: e for e in doc["conditions"]}
    assert sorted(entries) == sorted([*SHIPPED_KINDS, "ecal_calibration"])
    for kind in SHIPPED_KINDS:
        entry = entries[kind]
        source = CONDITIONS / entry["path"]
        assert entry["origin"] == "shipped" and entry["run_ranges"] == [[1001, 2500]]
        assert entry["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
        assert (out / entry["snapshot_path"]).read_bytes() == source.read_bytes()
    derived_entry = entries["ecal_calibration"]
    assert derived_entry["origin"] == "derived" and "snapshot_path" not in derived_entry
    assert derived_entry["version"] == "v7" and derived_entry["valid_runs"] == [1000, 1999]
    assert derived_entry["sha256"] == hashlib.sha256(calibration.read_bytes()).hexdigest()
    assert derived_entry["run_ranges"] == [[1001, 1002]]
    # run 2500 has no ECAL calibration: reported, not hidden
    assert [(u["kind"], u["run"]) for u in doc["unresolved"]] == [("ecal_calibration", 2500)]
    # no absolute path of the shipped root is recorded
    assert str(CONDITIONS) not in (out / "conditions.json").read_text()


def test_snapshot_is_byte_identical_on_rerun(tmp_path):
    derived, _ = _derived_root(tmp_path)
    raw = write_raw(tmp_path / "cdr.na64raw", random_batch(np.random.default_rng(0), 2), run=7)
    first, second = tmp_path / "a", tmp_path / "b"
    _snapshot(tmp_path, first, derived, raw)
    _snapshot(tmp_path, second, derived, raw)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)


@pytest.fixture
def recorded_workflow(tmp_path):
    """The repository's workflow (with the snapshot rules) on one recorded dataset of two files."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("workflow", "recon", "sim", "conditions", "envs"):
        os.symlink(REPO / name, repo / name)
    snakefile = (REPO / "Snakefile").read_text()
    include = 'include: "workflow/rules/snapshot.smk"'
    if include not in snakefile:  # until the Snakefile includes it
        snakefile = snakefile.replace("\n\nrule all:", f"\n{include}\n\n\nrule all:")
    (repo / "Snakefile").write_text(snakefile)
    work = tmp_path / "work"
    (work / "data" / "raw").mkdir(parents=True)
    batch = random_batch(np.random.default_rng(1), 2)
    for name, run in (("cdr-a", 4321), ("cdr-b", 4322)):
        write_raw(work / "data" / "raw" / f"{name}.na64raw", batch, run=run)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config.pop("calibration")
    config["conditions"]["roots"] = [str(REPO / "conditions")]
    config["datasets"] = {"recorded": {"raw": ["data/raw/*.na64raw"]}}
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    return repo / "Snakefile", work, config


@pytest.mark.workflow
def test_snapshot_rule_writes_the_tag_snapshot_and_reruns_on_a_config_change(recorded_workflow):
    snakefile, work, config = recorded_workflow
    snapshot = work / "results" / config["tag"] / "snapshot"
    target = str(snapshot.relative_to(work) / "conditions.json")
    snakemake(work, target, "--cores", "1", snakefile=snakefile)
    assert yaml.safe_load((snapshot / "config.yaml").read_text())["datasets"] == config["datasets"]
    doc = json.loads((snapshot / "conditions.json").read_text())
    assert doc["runs"] == [4321, 4322]
    assert sorted(e["kind"] for e in doc["conditions"]) == SHIPPED_KINDS
    assert (snapshot / "conditions" / "invis2016" / "geometry" / "v1.yaml").is_file()
    assert planned_jobs(snakemake(work, target, "-n", snakefile=snakefile).stdout) == {}

    changed = {**config, "srd": {**config["srd"], "min_modules": 3}}
    (work / "config.yaml").write_text(yaml.safe_dump(changed))
    assert planned_jobs(snakemake(work, target, "-n", snakefile=snakefile).stdout) == {
        "snapshot": 1
    }
