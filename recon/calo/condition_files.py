"""Writing derived condition files and the summaries and plots of their derivations.

A derived condition is a JSON document in the project's conditions format
(:mod:`recon.conditions.db`): header ``kind, setup, version, valid_runs:
[first, last], description`` and a ``data`` mapping. Arrays are stored as
nested lists in the axis order named next to them (``axes``), so the file is
self-describing. Files go to ``<root>/<setup>/<kind>/<version>.json``, where
:class:`~recon.conditions.ConditionsDB` finds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recon.io.tables import write_json

__all__ = ["ConditionHeader", "array_from_json", "condition_path", "json_ready", "write_condition"]


@dataclass(frozen=True)
class ConditionHeader:
    """Identity and validity of a derived condition."""

    setup: str
    version: str
    valid_runs: tuple[int, int]
    description: str = ""


def condition_path(root: str | Path, setup: str, kind: str, version: str) -> Path:
    return Path(root) / setup / kind / f"{version}.json"


def json_ready(value: Any) -> Any:
    """Numpy arrays and scalars as JSON values (NaN as null)."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.generic):
        return json_ready(value.item())
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_condition(path: str | Path, kind: str, header: ConditionHeader,
                    data: dict[str, Any]) -> Path:
    """Write one condition document (JSON) atomically; return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "kind": kind,
        "setup": header.setup,
        "version": header.version,
        "valid_runs": [int(header.valid_runs[0]), int(header.valid_runs[1])],
        "description": header.description,
        "data": json_ready(data),
    }
    write_json(path, document)
    return path


def array_from_json(values: Any) -> np.ndarray:
    """Nested lists (null = NaN) back to a float64 array."""
    return np.array(values, dtype=np.float64)
