"""Provenance records carried by every output file.

A provenance record says which code, configuration, conditions and inputs
made a file. It is deterministic (no timestamps, no host names), so that
reprocessing the same inputs with the same code and configuration gives
byte-identical outputs whatever the number of cores.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import xxhash

import recon
from recon.conditions import ConditionRecord

__all__ = [
    "CHECKSUM_ALGORITHM",
    "canonical_json",
    "code_hash",
    "config_hash",
    "file_checksum",
    "make_provenance",
    "new_checksum",
    "same_origin",
]

PROVENANCE_KEY = "na64.provenance"
#: The fields of a record that say what made a file; the others (event counts, the setup and
#: run read from the inputs) follow from them.
ORIGIN_FIELDS = ("stage", "code_version", "code_hash", "config_hash", "conditions", "inputs")
# Input checksums use XXH3-128 (non-cryptographic, ~14 GB/s): an input must be
# identified at the speed it is read, and nobody forges raw files against us.
CHECKSUM_ALGORITHM = "xxh3_128"


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the form that is hashed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(config: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:16]


def new_checksum():
    """An incremental checksum object (``update(bytes)``, ``hexdigest()``)."""
    return xxhash.xxh3_128()


def file_checksum(path: str | Path, *, block: int = 1 << 22) -> str:
    digest = new_checksum()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


@cache
def code_hash(package_dir: str | None = None) -> str:
    """sha256 over the Python sources of a package (default: ``recon``), in path order."""
    root = Path(package_dir) if package_dir else Path(recon.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def make_provenance(
    *,
    stage: str,
    config: Mapping[str, Any],
    inputs: Iterable[tuple[str | Path, str]] = (),
    conditions: Iterable[ConditionRecord] | Mapping[str, Mapping[str, str]] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The provenance record of one output.

    ``inputs`` are (path, checksum) pairs; only the file name is recorded so
    that the record does not depend on where the work directory sits.
    """
    return {
        "stage": stage,
        "code_version": recon.__version__,
        "code_hash": code_hash(),
        "config_hash": config_hash(config),
        "config": dict(config),
        "conditions": (
            {k: dict(v) for k, v in conditions.items()}
            if isinstance(conditions, Mapping)
            else {c.kind: c.provenance() for c in conditions}
        ),
        "inputs": [{"file": Path(p).name, CHECKSUM_ALGORITHM: digest} for p, digest in inputs],
        **(dict(extra) if extra else {}),
    }


def same_origin(record: Mapping[str, Any], expected: Mapping[str, Any]) -> bool:
    """True when two provenance records name the same stage, code, configuration, conditions
    and input checksums (:data:`ORIGIN_FIELDS`): the files they describe are then identical.

    >>> a = make_provenance(stage="calo", config={"window_ns": 25.0}, inputs=[("d.parquet", "ab")])
    >>> same_origin(json.loads(canonical_json(a)), a)
    True
    >>> same_origin(a, make_provenance(stage="calo", config={"window_ns": 20.0},
    ...                                inputs=[("d.parquet", "ab")]))
    False
    """
    return all(
        canonical_json(record.get(field)) == canonical_json(expected.get(field))
        for field in ORIGIN_FIELDS
    )
