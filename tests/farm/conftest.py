"""Fixtures of the farm tests: a throw-away single-node SLURM cluster (see slurm_cluster.py)."""

from __future__ import annotations

import pytest

from tests.farm.slurm_cluster import SlurmCluster, unavailable_reason


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "farm: starts a single-node SLURM cluster (needs .ci/install-farm.sh and root)"
    )


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running cluster, its state under a temporary directory; every daemon stopped by pid at
    teardown, whether the tests passed or not."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    # A short path of its own (unix socket paths are limited to 107 bytes), removed afterwards.
    with SlurmCluster.create() as cluster:
        yield cluster
