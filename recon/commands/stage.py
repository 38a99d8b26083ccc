"""The I/O shared by the per-chunk reconstruction stages (calo, track, ...).

A stage reads one intermediate file in chunks, applies its pure core to each
chunk and streams the result into one output file with its provenance. The
detector setup and run of the input come from the input's provenance (written
by ``na64 decode``), so a stage needs no more than the file to find its
conditions.

With ``--skip-current`` a stage keeps an existing output whose provenance
names the same stage, code, configuration, conditions and input checksums as
the run would write (:func:`recon.provenance.same_origin`): reprocessing is
deterministic, so the file it would write is that one. ``na64 chain`` runs
the stages of a chunk this way, so that a calibration update redoes only the
stages that read it.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import awkward as ak

from recon.io.tables import iter_events, read_provenance, write_events
from recon.progress import Progress
from recon.provenance import file_checksum, make_provenance, same_origin

__all__ = ["add_skip_current_option", "input_identity", "log_kept", "output_is_current",
           "run_chunked_stage"]  # fmt: skip

log = logging.getLogger("na64.stage")


def add_skip_current_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--skip-current",
        action="store_true",
        help="keep an existing output made by the same code, configuration, conditions and inputs",
    )


def output_is_current(output: Path, expected: Mapping[str, Any]) -> bool:
    """True when ``output`` exists and its provenance has the origin of ``expected``.

    An unreadable output (truncated, foreign) is not current: the stage rewrites it.
    """
    if not Path(output).is_file():
        return False
    try:
        record = read_provenance(output)
    except Exception as error:  # any unreadable file is simply redone
        log.info("%s: unreadable provenance (%s): redone", output, error)
        return False
    return same_origin(record, expected)


def log_kept(output: Path) -> None:
    log.info("%s: current (same code, configuration, conditions and inputs): kept", output)


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
    skip_current: bool = False,
) -> int | None:
    """Apply ``process`` to every chunk of ``source``; write ``output``; return events written.

    With ``skip_current``, an ``output`` that is already current is kept (returns None).
    """

    def chunks():
        for chunk in iter_events(source, chunk_events=chunk_events, columns=columns):
            result = process(chunk)
            progress.update(len(result))
            yield result

    record = make_provenance(
        stage=stage,
        config=config,
        inputs=[(source, file_checksum(source))],
        conditions=conditions,
        extra={"setup": setup, "run": run},
    )
    if skip_current and output_is_current(output, record):
        log_kept(output)
        return None
    progress = Progress(f"{stage} {source.name}")
    n = write_events(output, chunks(), record, compression=compression)
    progress.done()
    return n
