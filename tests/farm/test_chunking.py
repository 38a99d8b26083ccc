"""Multi-file chunks (`decode.files_per_chunk`): fewer, larger chunks, never across runs.

A recorded dataset of 5 raw files of run 2000 and 2 of run 2001, 2 files per chunk, must give 4
chunks (2 + 2 + 1 of run 2000, 2 of run 2001), one job per chunk and per-chunk rule; decoding a
chunk writes one digits file holding every event of its files, in order.
"""

from __future__ import annotations

import importlib
import json
import re

import numpy as np
import pytest
import yaml

from recon.io.tables import read_events, read_provenance
from tests.conftest import REPO, random_batch, write_raw
from tests.workflow.conftest import planned_jobs, snakemake, write_config

pytestmark = pytest.mark.workflow

EVENTS_PER_FILE = 20
FILES = {2000: 5, 2001: 2}  # run -> raw files
CHUNKS = {
    "run2000-0000+1": ["run2000-0000", "run2000-0001"],
    "run2000-0002+1": ["run2000-0002", "run2000-0003"],
    "run2000-0004": ["run2000-0004"],
    "run2001-0000+1": ["run2001-0000", "run2001-0001"],
}
TARGET = "results/default/physics/decode_summary.json"


@pytest.fixture
def workdir(tmp_path):
    raw_dir = tmp_path / "data" / "raw" / "physics"
    raw_dir.mkdir(parents=True)
    for run, n_files in FILES.items():
        for i in range(n_files):
            batch = random_batch(np.random.default_rng(run + i), EVENTS_PER_FILE)
            write_raw(raw_dir / f"run{run}-{i:04d}.na64raw", batch, run=run)
    datasets = {"physics": {"raw": ["data/raw/physics/*.na64raw"]}}
    decode = yaml.safe_load((REPO / "config.yaml").read_text())["decode"] | {"files_per_chunk": 2}
    write_config(tmp_path, datasets=datasets, drop=("calibration", "analysis"), decode=decode)
    return tmp_path


def test_chunks_group_files_of_one_run(workdir):
    result = snakemake(workdir, "-n", "--cores", "1")
    jobs = planned_jobs(result.stdout)
    assert {rule: jobs[rule] for rule in ("decode", "calo", "track", "classify")} == {
        "decode": len(CHUNKS), "calo": len(CHUNKS), "track": len(CHUNKS), "classify": len(CHUNKS),
    }  # fmt: skip
    decoded = set(re.findall(r"chunk=(\S+)$", result.stdout, re.MULTILINE))
    assert decoded == set(CHUNKS)


def test_runtime_of_a_chunk_covers_its_files(workdir):
    result = snakemake(workdir, "-n", "--cores", "1", TARGET)
    per_file = yaml.safe_load((workdir / "config.yaml").read_text())["resources"]["decode"]
    assert f"runtime={2 * per_file['runtime']}" in result.stdout


def test_real_run_decodes_each_chunk_into_one_file(workdir):
    decode = importlib.import_module("recon.commands.decode")
    if not hasattr(decode, "run_decode_files"):
        pytest.skip("`na64 decode` takes one raw file: multi-file decoding not installed")
    snakemake(workdir, "--cores", "2", TARGET)
    results = workdir / "results" / "default" / "physics"
    for chunk, stems in CHUNKS.items():
        digits = results / "digits" / f"{chunk}.parquet"
        events = read_events(digits)
        assert len(events) == EVENTS_PER_FILE * len(stems)
        assert np.unique(np.asarray(events.run)).size == 1
        inputs = read_provenance(digits)["inputs"]
        assert [entry["file"] for entry in inputs] == [f"{s}.na64raw" for s in stems]
    summary = json.loads((results / "decode_summary.json").read_text())
    assert summary["events_read"] == summary["events_decoded"] == EVENTS_PER_FILE * 7
    assert len(summary["files"]) == 7
    assert planned_jobs(snakemake(workdir, "-n", "--cores", "1", TARGET).stdout) == {}
