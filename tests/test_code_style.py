"""The code base stays ruff clean (rules in pyproject.toml), as the developers' guide asks."""

import shutil
import subprocess

import pytest

from tests.conftest import REPO


def test_ruff_reports_nothing():
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (it comes with the `test` extra)")
    result = subprocess.run([ruff, "check", "--no-cache", str(REPO)], capture_output=True,
                            text=True, cwd=REPO)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
