"""Intermediate tables: Parquet (default) or ROOT, written atomically with provenance.

Every stage writes its per-event output through :func:`write_events`, which
streams chunks of an awkward array into one file (a Parquet row group or a
TTree basket per chunk) under a temporary name and renames it only when
complete, so a killed job leaves nothing a rerun would trust. The provenance
record (:mod:`recon.provenance`) is stored as Parquet key-value metadata
``na64.provenance`` or, in ROOT files, as the ``provenance`` TObjString.

Reading back is one line in either format::

    ak.from_parquet("digits.parquet")
    uproot.open("digits.root")["events"].arrays()
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import awkward as ak
import pyarrow as pa
import pyarrow.parquet as pq

from recon.io.sample_blocks import pack_blocks, unpack_blocks
from recon.provenance import PROVENANCE_KEY, canonical_json

__all__ = ["iter_events", "read_events", "read_provenance", "write_events", "write_json"]

Format = Literal["parquet", "root"]
Provenance = dict[str, Any] | Callable[[], dict[str, Any]]


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_json(path: str | Path, value: Any) -> None:
    """Write a JSON document atomically (sorted keys, for byte-identical reruns)."""
    path = Path(path)
    tmp = _temporary(path)
    tmp.write_text(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def format_of(path: str | Path) -> Format:
    return "root" if str(path).endswith(".root") else "parquet"


def write_events(
    path: str | Path,
    chunks: Iterable[ak.Array],
    provenance: Provenance,
    *,
    fmt: Format | None = None,
    compression: str = "none",
) -> int:
    """Stream ``chunks`` into ``path``; return the number of events written.

    ``provenance`` may be a callable, evaluated once the chunks are consumed
    (for records that need the input checksum computed while reading).
    An empty stream still writes a valid (empty) file.
    """
    path = Path(path)
    fmt = fmt or format_of(path)
    tmp = _temporary(path)
    try:
        n = (_write_root if fmt == "root" else _write_parquet)(tmp, chunks, provenance, compression)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return n


def _provenance_json(provenance: Provenance) -> str:
    return canonical_json(provenance() if callable(provenance) else provenance)


def _write_parquet(
    path: Path, chunks: Iterable[ak.Array], provenance: Provenance, compression: str
) -> int:
    writer = None
    n = 0
    try:
        for chunk in chunks:
            table = pack_blocks(ak.to_arrow_table(chunk, extensionarray=False))
            if writer is None:
                writer = pq.ParquetWriter(
                    path,
                    table.schema,
                    compression=compression,
                    use_dictionary=False,
                    write_statistics=False,
                    data_page_version="2.0",
                )
            writer.write_table(table)
            n += len(chunk)
        if writer is None:
            writer = pq.ParquetWriter(path, pa.schema([]))
        writer.add_key_value_metadata({PROVENANCE_KEY: _provenance_json(provenance)})
    finally:
        if writer is not None:
            writer.close()
    return n


def _write_root(
    path: Path, chunks: Iterable[ak.Array], provenance: Provenance, compression: str
) -> int:
    import uproot

    n = 0
    codec = None if compression == "none" else uproot.ZLIB(1)
    with uproot.recreate(path, compression=codec) as out:
        for chunk in chunks:
            branches = {name: chunk[name] for name in chunk.fields}
            if "events" in out:
                out["events"].extend(branches)
            else:
                out["events"] = branches
            n += len(chunk)
        out["provenance"] = _provenance_json(provenance)
    return n


def read_events(path: str | Path, *, columns: list[str] | None = None) -> ak.Array:
    """Read a whole intermediate file as an awkward array."""
    if format_of(path) == "root":
        import uproot

        with uproot.open(path) as f:
            return f["events"].arrays(columns)
    parquet = pq.ParquetFile(path)
    return ak.from_arrow(unpack_blocks(parquet.read(columns=columns, use_threads=False)))


def iter_events(path: str | Path, *, chunk_events: int = 10_000,
                columns: list[str] | None = None) -> Iterator[ak.Array]:
    """Stream an intermediate file in chunks of at most ``chunk_events`` events."""
    if format_of(path) == "root":
        import uproot

        with uproot.open(path) as f:
            yield from f["events"].iterate(columns, step_size=chunk_events)
        return
    parquet = pq.ParquetFile(path)
    for groups in _row_group_runs(parquet.metadata, chunk_events):
        table = parquet.read_row_groups(groups, columns=columns, use_threads=False)
        for start in range(0, max(table.num_rows, 1), chunk_events):
            yield ak.from_arrow(unpack_blocks(table.slice(start, chunk_events)))


def _row_group_runs(metadata: pq.FileMetaData, chunk_events: int) -> Iterator[list[int]]:
    """Consecutive row groups of at most ``chunk_events`` rows together (a larger one alone).

    Whole row groups read at once: several times cheaper than re-batching them
    (``iter_batches``), and without pandas (which ``pq.read_table`` imports).
    """
    run: list[int] = []
    rows = 0
    for i in range(metadata.num_row_groups):
        n = metadata.row_group(i).num_rows
        if run and rows + n > chunk_events:
            yield run
            run, rows = [], 0
        run.append(i)
        rows += n
    if run:
        yield run


def read_provenance(path: str | Path) -> dict[str, Any]:
    if format_of(path) == "root":
        import uproot

        with uproot.open(path) as f:
            return json.loads(str(f["provenance"]))
    metadata = pq.ParquetFile(path).metadata.metadata or {}
    return json.loads(metadata[PROVENANCE_KEY.encode()])
