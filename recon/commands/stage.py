"""The I/O shared by the per-chunk reconstruction stages (calo, track, ...).

A stage reads one intermediate file in chunks, applies its pure core to each
chunk and streams the result into one output file with its provenance. The
detector setup and run of the input come from the input's provenance (written
by ``na64 decode``), so a stage needs no more than the file to find its
conditions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import awkward as ak

from recon.io.tables import iter_events, read_provenance, write_events
from recon.progress import Progress
from recon.provenance import file_checksum, make_provenance

__all__ = ["input_identity", "run_chunked_stage"]

log = logging.getLogger("na64.stage")


def input_identity(path: Path, setup: str | None = None) -> tuple[str, int]:
    """(setup, run) of a file produced by ``na64 decode`` (or a later stage)."""
    provenance = read_provenance(path)
    setup = setup or provenance.get("setup")
    run = provenance.get("run")
    if setup is None or run is None:
        raise SystemExit(
            f"{path}: its provenance names no setup/run; give --setup and use decode output"
        )
    return str(setup), int(run)


def run_chunked_stage(
    *,
    stage: str,
    source: Path,
    output: Path,
    process: Callable[[ak.Array], ak.Array],
    config: Mapping[str, Any],
    conditions: Mapping[str, Mapping[str, str]],
    setup: str,
    run: int,
    chunk_events: int,
    columns: list[str] | None = None,
    compression: str = "none",
) -> int:
    """Apply ``process`` to every chunk of ``source``; write ``output``; return events written."""
    progress = Progress(f"{stage} {source.name}")

    def chunks():
        for chunk in iter_events(source, chunk_events=chunk_events, columns=columns):
            result = process(chunk)
            progress.update(len(result))
            yield result

    def provenance():
        return make_provenance(
            stage=stage,
            config=config,
            inputs=[(source, file_checksum(source))],
            conditions=conditions,
            extra={"setup": setup, "run": run},
        )

    n = write_events(output, chunks(), provenance, compression=compression)
    progress.done()
    return n
