"""The default workflow through `--executor slurm` on a real single-node SLURM cluster gives
byte-identical outputs to a local run.

Two scopes, each run once locally (default profile) and once through SLURM (slurm profile):

* ``raw``, always: the default configuration with every simulated run cut to EVENTS events, up to
  `decode_summary` (``--until``): every job that needs only raw data (simulate, decode, the
  per-dataset summaries as localrules), in group jobs. A minute or two.
* ``full``, with NA64_FARM_FULL=1: the embedded default configuration as it is, every rule
  (calibration derivations, calorimetry, ...). Several minutes on two cores.

The cluster (munged, slurmctld, slurmd from Debian's slurm-wlm and munge) is started by the
`slurm_cluster` fixture with all its state under a temporary directory and stopped by process id
afterwards; without the packages (or without root) the test is skipped. CI installs them with
.ci/install-farm.sh.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import REPO, random_batch, write_raw

pytestmark = [pytest.mark.workflow, pytest.mark.farm]

PROFILES = REPO / "workflow" / "profiles"
EVENTS = 100  # events per simulated run: the shape of the default workflow, a fraction of its size
RUN_TIMEOUT = 1200  # s, for one whole Snakemake run
FULL = os.environ.get("NA64_FARM_FULL") == "1"
SCOPES = {
    # scope -> (cut the configuration down?, extra Snakemake arguments)
    "raw": (True, ["--until", "decode_summary"]),
    "full": (False, []),
}


def small_default_config(workdir: Path) -> dict:
    """The embedded default configuration, every simulated run cut to EVENTS events and every
    recorded dataset pointed at two tiny raw files."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for name, dataset in config["datasets"].items():
        if "simulate" in dataset:
            dataset["simulate"]["events"] = min(dataset["simulate"]["events"], EVENTS)
        if "raw" in dataset:
            raw_dir = workdir / "data" / "raw" / name
            raw_dir.mkdir(parents=True, exist_ok=True)
            for i in range(2):
                batch = random_batch(np.random.default_rng(i), 20)
                write_raw(raw_dir / f"run3000-{i:04d}.na64raw", batch, run=3000)
            dataset["raw"] = [f"data/raw/{name}/*.na64raw"]
    return config


def snakemake_command(workdir: Path, *args: str) -> list[str]:
    exe = shutil.which("snakemake")
    base = [exe] if exe else [sys.executable, "-m", "snakemake"]
    return [*base, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *args]


def run(command: list[str], cwd: Path, env: dict, timeout: float = RUN_TIMEOUT):
    """Run Snakemake; on timeout interrupt it (so that it cancels its SLURM jobs), then kill it."""
    proc = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        raise AssertionError(
            f"timed out after {timeout} s: {' '.join(command)}\n{err[-6000:]}"
        ) from None
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def compared_files(root: Path) -> set[str]:
    """Every output of the workflow under ``root``: all files but Snakemake's own metadata, logs
    (timings, host names), per-job benchmarks (timings) and the configuration we wrote."""
    files = set()
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        parts = rel.parts
        if not path.is_file() or parts[0] in (".snakemake", "logs") or rel == Path("config.yaml"):
            continue
        if len(parts) > 2 and parts[0] == "results" and parts[2] == "benchmarks":
            continue
        files.add(rel.as_posix())
    return files


def local_run(tmp_path: Path, scope: str):
    """The default workflow in ``scope``, run locally with the default profile."""
    small, extra = SCOPES[scope]
    workdir = tmp_path / "local"
    workdir.mkdir()
    if small:
        config = small_default_config(workdir)
    else:
        config = yaml.safe_load((REPO / "config.yaml").read_text())
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "CONDOR_CONFIG": os.devnull}
    start = time.monotonic()
    result = run(
        snakemake_command(
            workdir, "--workflow-profile", str(PROFILES / "default"), "--cores", "2", *extra
        ),
        workdir,
        env,
    )
    assert result.returncode == 0, result.stderr[-6000:]
    return workdir, config, time.monotonic() - start


@pytest.mark.parametrize(
    "scope",
    [
        "raw",
        pytest.param(
            "full",
            marks=pytest.mark.skipif(
                not FULL, reason="the whole default workflow: NA64_FARM_FULL=1"
            ),
        ),
    ],
)
def test_slurm_run_is_byte_identical_to_local_run(slurm_cluster, tmp_path, scope):
    local_dir, config, local_s = local_run(tmp_path, scope)
    workdir = tmp_path / "slurm"
    workdir.mkdir()
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    # Copy recorded-data inputs (the tiny raw files), so that both runs read the same bytes.
    if (local_dir / "data" / "raw").is_dir():
        shutil.copytree(local_dir / "data" / "raw", workdir / "data" / "raw")

    command = [
        *slurm_cluster.prefix(),
        *snakemake_command(
            workdir,
            "--profile",
            str(PROFILES / "slurm"),
            # The test cluster has no accounting (sacct cannot answer) and no accounts.
            "--slurm-status-command",
            "squeue",
            "--slurm-no-account",
            "--slurm-init-seconds-before-status-checks",
            "1",
            "--slurm-keep-successful-logs",
            # Four chunks per group job, two of them at a time inside it (two CPUs, the whole
            # node): group jobs queue behind each other and start as soon as the node is free.
            "--cores",
            "2",
            "--group-components",
            "chunks=4",
            "reco=4",
            "--latency-wait",
            "10",
            *SCOPES[scope][1],
        ),
    ]
    env = {**slurm_cluster.env, "CONDOR_CONFIG": os.devnull}
    start = time.monotonic()
    result = run(command, workdir, env)
    slurm_s = time.monotonic() - start
    assert result.returncode == 0, (
        f"snakemake --executor slurm failed:\n{result.stderr[-8000:]}\n{slurm_cluster.logs_text()}"
    )

    # The jobs really went through SLURM, some of them as group jobs.
    slurm_logs = workdir / ".snakemake" / "slurm_logs"
    submitted = sorted(p.name for p in slurm_logs.iterdir()) if slurm_logs.is_dir() else []
    assert any(name.startswith("group_chunks") for name in submitted), submitted
    assert "SLURM jobid" in result.stderr

    local_files = compared_files(local_dir)
    slurm_files = compared_files(workdir)
    assert local_files == slurm_files
    assert any("/digits/" in f for f in local_files)
    _, mismatch, errors = filecmp.cmpfiles(local_dir, workdir, sorted(local_files), shallow=False)
    assert not mismatch and not errors, f"differ: {mismatch}, unreadable: {errors}"

    print(
        f"\nfarm [{scope}]: {len(local_files)} output files byte-identical; "
        f"local run {local_s:.1f} s, SLURM run {slurm_s:.1f} s "
        f"(SLURM job kinds: {', '.join(submitted)}); "
        f"network: {slurm_cluster.network}"
    )
