"""``na64 manifest FILE [FILE ...] -o OUT``: a set of files, by path and checksum, in one JSON file.

The workflow's one-job-per-chunk mode (``chunk_jobs: per_chunk``) makes each chunk job
depend on the manifest of the derived calibration conditions rather than on each of
the six condition files: one input per job instead of six, which is what a 10 000-chunk
DAG costs to build. A changed condition file changes the manifest, which reruns the
chunk jobs; their stages then keep the outputs that the change does not touch.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from recon.io.tables import write_json
from recon.provenance import CHECKSUM_ALGORITHM, file_checksum

__all__ = ["manifest", "register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "manifest",
        help="paths and checksums of a set of files",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("files", nargs="+", type=Path, help="files of the set, recorded in this order")
    p.add_argument("-o", "--output", type=Path, required=True, help="JSON manifest")
    p.set_defaults(func=_main)


def manifest(files: list[Path]) -> dict:
    """``{"files": [{"path": ..., "xxh3_128": ...}, ...]}`` in the order given."""
    return {"files": [{"path": str(f), CHECKSUM_ALGORITHM: file_checksum(f)} for f in files]}


def _main(args: argparse.Namespace) -> int:
    write_json(args.output, manifest(args.files))
    return 0
