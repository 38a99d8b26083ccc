"""``na64 classify --calo C --track T -o EVENTS``: one flat, labelled row per event.

Joins the calorimetry and tracking outputs of a chunk row by row (they come
from the same digits, in the same order: the join checks the event identity),
adds the SRD electron tag (:mod:`recon.srd`) and the labels of
:mod:`recon.classify` (regions I-III, signal box, sidebands A and C).
``weight`` is 1 for recorded data; ``na64 merge`` fills in the generator
weights of simulated samples.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import awkward as ak
import numpy as np
import pyarrow.parquet as pq

from recon.classify import ClassifyConfig, classify_events
from recon.commands.config_options import add_dataclass_options, dataclass_from_args, plain
from recon.commands.stage import (
    add_skip_current_option,
    input_identity,
    log_kept,
    output_is_current,
)
from recon.io.tables import format_of, iter_events, write_events
from recon.progress import Progress
from recon.provenance import file_checksum, make_provenance
from recon.srd import SrdConfig, srd_tag

__all__ = ["classify_chunk", "register"]

_IDENTITY = ("run", "spill", "event")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("classify", help="join stage outputs, tag electrons, label events",
                              description=__doc__.splitlines()[0])  # fmt: skip
    p.add_argument("--calo", type=Path, required=True, help="output of `na64 calo`")
    p.add_argument("--track", type=Path, required=True, help="output of `na64 track`")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--chunk-events", type=int, default=10_000)
    add_dataclass_options(p, SrdConfig, "srd")
    add_dataclass_options(p, ClassifyConfig, "classify")
    add_skip_current_option(p)
    p.set_defaults(func=_main)


def classify_chunk(
    calo: ak.Array, track: ak.Array, srd: SrdConfig, config: ClassifyConfig
) -> ak.Array:
    """The flat event rows of one chunk (calo and track rows of the same events)."""
    for name in _IDENTITY:
        if not np.array_equal(np.asarray(calo[name]), np.asarray(track[name])):
            raise ValueError(f"calo and track rows differ in {name!r}: not the same chunk")
    columns: dict[str, np.ndarray] = {name: np.asarray(calo[name]) for name in _IDENTITY}
    columns["weight"] = np.ones(len(calo))
    columns["trigger_mask"] = np.asarray(calo["trigger_mask"])
    for name in track.fields:
        if name not in _IDENTITY:
            columns[name] = np.asarray(track[name])
    for name in calo.fields:
        if name in columns or name.endswith("_cells"):
            continue
        values = ak.to_numpy(calo[name])
        if values.ndim == 2:  # per-module energies: one column per module
            columns |= {
                f"{name.removesuffix('_GeV')}{k}_GeV": values[:, k] for k in range(values.shape[1])
            }
        else:
            columns[name] = values
    columns["calo_pileup"] = columns["ecal_pileup"] | columns["hcal_pileup"]
    columns |= srd_tag(columns, srd)
    columns |= classify_events(columns, config)
    return ak.zip(
        {k: ak.from_numpy(np.ascontiguousarray(v)) for k, v in columns.items()}, depth_limit=1
    )


def _summary_columns(calo: Path) -> list[str] | None:
    """The calo columns classify uses: all but the jagged per-cell lists (None: all; ROOT)."""
    if format_of(calo) == "root":
        return None
    return [name for name in pq.read_schema(calo).names if not name.endswith("_cells")]


def _lockstep(calo: Path, track: Path, chunk_events: int) -> Iterator[tuple[ak.Array, ak.Array]]:
    calo_chunks = iter_events(calo, chunk_events=chunk_events, columns=_summary_columns(calo))
    track_chunks = iter_events(track, chunk_events=chunk_events)
    yield from zip(calo_chunks, track_chunks, strict=True)


def _main(args: argparse.Namespace) -> int:
    srd = dataclass_from_args(args, SrdConfig, "srd")
    config = dataclass_from_args(args, ClassifyConfig, "classify")
    setup, run = input_identity(args.calo)

    def chunks():
        for calo, track in _lockstep(args.calo, args.track, args.chunk_events):
            rows = classify_chunk(calo, track, srd, config)
            progress.update(len(rows))
            yield rows

    record = make_provenance(
        stage="classify",
        config={"srd": plain(asdict(srd)), "classify": plain(asdict(config))},
        inputs=[(p, file_checksum(p)) for p in (args.calo, args.track)],
        extra={"setup": setup, "run": run},
    )
    if args.skip_current and output_is_current(args.output, record):
        log_kept(args.output)
        return 0
    progress = Progress(f"classify {args.calo.name}")
    write_events(args.output, chunks(), record)
    progress.done()
    return 0
