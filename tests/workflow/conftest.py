"""Helpers to drive the Snakemake workflow of the repository in a temporary directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO


def write_config(workdir: Path, *, drop: tuple[str, ...] = (), **overrides) -> dict:
    """The repository's config.yaml with top-level sections replaced or dropped."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config.update(overrides)
    for key in drop:
        config.pop(key, None)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return config


def snakemake(
    workdir: Path, *args: str, check: bool = True, snakefile: Path = REPO / "Snakefile"
) -> subprocess.CompletedProcess:
    """Run a Snakefile (the repository's by default) with ``workdir`` as working directory."""
    exe = shutil.which("snakemake") or f"{sys.executable} -m snakemake"
    env = {**os.environ, "CONDOR_CONFIG": os.devnull}
    command = [
        *exe.split(),
        "--snakefile",
        str(snakefile),
        "--directory",
        str(workdir),
        *args,
    ]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result


def planned_jobs(stdout: str) -> dict[str, int]:
    """The "Job stats" table of a dry run: rule -> number of jobs ({} when nothing to do)."""
    jobs: dict[str, int] = {}
    lines = stdout.splitlines()
    if "Job stats:" not in lines:
        return jobs
    for line in lines[lines.index("Job stats:") + 3 :]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        if parts[0] != "total":
            jobs[parts[0]] = int(parts[1])
    return jobs
