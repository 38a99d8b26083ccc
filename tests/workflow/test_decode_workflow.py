"""The decode rule and `rule all`, dry run and real run on small raw files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recon.io.tables import read_events, read_provenance
from tests.conftest import random_batch, write_raw
from tests.workflow.conftest import planned_jobs, snakemake, write_config

pytestmark = pytest.mark.workflow


@pytest.fixture
def workdir(tmp_path):
    raw_dir = tmp_path / "data" / "raw" / "physics"
    raw_dir.mkdir(parents=True)
    for i in range(2):
        write_raw(
            raw_dir / f"run2000-{i:04d}.na64raw",
            random_batch(np.random.default_rng(i), 30),
            run=2000,
        )
    datasets = {"physics": {"raw": ["data/raw/physics/*.na64raw"]}}
    write_config(tmp_path, datasets=datasets, drop=("calibration", "analysis"))
    return tmp_path


# random samples make no sense to the calorimetry: ask for the decoding only
TARGET = "results/default/physics/decode_summary.json"


def test_dry_run_plans_one_decode_job_per_raw_file(workdir):
    jobs = planned_jobs(snakemake(workdir, "-n", "--cores", "1", TARGET).stdout)
    assert jobs == {"decode": 2, "decode_summary": 1}
    everything = planned_jobs(snakemake(workdir, "-n", "--cores", "1").stdout)
    assert everything == {
        "decode": 2, "decode_summary": 1, "calo": 2, "track": 2, "classify": 2, "merge_recorded": 1,
        "snapshot": 1, "all": 1,
    }  # fmt: skip


def test_real_run_decodes_every_file_then_has_nothing_to_do(workdir):
    snakemake(workdir, "--cores", "2", TARGET)
    results = workdir / "results" / "default"
    for i in range(2):
        chunk = f"run2000-{i:04d}"
        digits = results / "physics" / "digits" / f"{chunk}.parquet"
        assert len(read_events(digits)) == 30
        assert read_provenance(digits)["inputs"][0]["file"] == f"{chunk}.na64raw"
        assert (workdir / "logs" / "default" / "decode" / "physics" / f"{chunk}.log").exists()
        assert (results / "benchmarks" / "decode" / "physics" / f"{chunk}.tsv").exists()
    summary = json.loads((results / "physics" / "decode_summary.json").read_text())
    assert summary["events_read"] == summary["events_decoded"] == 60
    assert planned_jobs(snakemake(workdir, "-n", "--cores", "1", TARGET).stdout) == {}
