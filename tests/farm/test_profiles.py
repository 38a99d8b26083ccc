"""The Snakemake profiles under workflow/profiles/ load and plan the same jobs as a plain dry run.

No cluster needed: a dry run with `--profile` parses the profile, resolves the executor plugin's
settings, applies `groups`/`group-components` (a grouping that makes a group depend on itself
fails here) and `default-resources`.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.farm.test_slurm import PROFILES, small_default_config, snakemake_command
from tests.workflow.conftest import planned_jobs

pytestmark = pytest.mark.workflow

PROFILE_NAMES = ("default", "slurm", "htcondor")
PLUGINS = {
    "slurm": "snakemake_executor_plugin_slurm",
    "htcondor": "snakemake_executor_plugin_htcondor",
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("profiles")
    config = small_default_config(workdir)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return workdir


def dry_run(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CONDOR_CONFIG": os.devnull}
    return subprocess.run(
        snakemake_command(workdir, "-n", *args),
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def plain_jobs(workdir) -> dict[str, int]:
    result = dry_run(workdir, "--cores", "1")
    assert result.returncode == 0, result.stderr[-4000:]
    jobs = planned_jobs(result.stdout)
    assert jobs
    return jobs


def test_every_profile_has_a_config():
    for name in PROFILE_NAMES:
        config = yaml.safe_load((PROFILES / name / "config.yaml").read_text())
        assert isinstance(config, dict) and config, name


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_profile_plans_the_same_jobs(workdir, plain_jobs, name):
    if name in PLUGINS and importlib.util.find_spec(PLUGINS[name]) is None:
        pytest.skip(f"{PLUGINS[name]} not installed (pip install -e '.[farm]')")
    option = "--workflow-profile" if name == "default" else "--profile"
    result = dry_run(workdir, option, str(PROFILES / name))
    assert result.returncode == 0, result.stderr[-4000:]
    assert planned_jobs(result.stdout) == plain_jobs
    assert f"profiles/{name}" in result.stderr  # Snakemake says which profile it used


@pytest.mark.parametrize("name", ["slurm", "htcondor"])
def test_farm_profiles_group_chunks(name):
    config = yaml.safe_load((PROFILES / name / "config.yaml").read_text())
    groups = dict(entry.split("=") for entry in config["groups"])
    components = dict(entry.split("=") for entry in config["group-components"])
    assert groups["decode"] == "chunks"
    assert set(groups.values()) == set(components)
    assert all(int(n) >= 16 for n in components.values())


def _resource_key(rule: str) -> str:
    """The config.yaml `resources:` entry a rule reads."""
    if rule.startswith(("merge_", "derive_", "validate_")):
        return rule.split("_")[0]
    return "merge" if rule in ("select", "signal_efficiency", "limit") else rule


def test_htcondor_memory_requests_equal_the_config():
    resources = yaml.safe_load((REPO / "config.yaml").read_text())["resources"]
    profile = yaml.safe_load((PROFILES / "htcondor" / "config.yaml").read_text())
    requested = {rule: r["htcondor_request_mem_mb"] for rule, r in profile["set-resources"].items()}
    assert {_resource_key(rule) for rule in requested} == set(resources)
    for rule, mem_mb in requested.items():
        assert mem_mb == resources[_resource_key(rule)]["mem_mb"], rule
