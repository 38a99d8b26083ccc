"""`snakemake --lint` finds nothing to say about the workflow."""

from __future__ import annotations

import pytest

from tests.workflow.conftest import snakemake, write_config

pytestmark = pytest.mark.workflow


def test_workflow_is_lint_clean(tmp_path):
    write_config(tmp_path)
    result = snakemake(tmp_path, "--lint")
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr
