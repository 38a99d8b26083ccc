"""``na64 track DIGITS -o TRACKS``: strip clusters, space points and the momentum fit per event."""

from __future__ import annotations

import argparse
from pathlib import Path

import awkward as ak

from recon.commands.common import add_conditions_options, conditions_from_args
from recon.commands.stage import add_skip_current_option, input_identity, run_chunked_stage

__all__ = ["register"]

_COLUMNS = ["run", "spill", "event", "strips"]
_KINDS = ("geometry", "field", "strip_pedestals", "alignment", "tracking_parameters")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "track", help="tracking: clusters, space points, momentum fit", description=__doc__
    )
    p.add_argument("digits", type=Path, help="digits file of `na64 decode`")
    p.add_argument(
        "-o", "--output", type=Path, required=True, help="tracks file (.parquet or .root)"
    )
    p.add_argument("--setup", help="detector setup (default: from the digits' provenance)")
    p.add_argument("--chunk-events", type=int, default=10_000)
    add_conditions_options(p)
    add_skip_current_option(p)
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from recon.tracking import (
        load_alignment,
        load_field,
        load_strip_pedestals,
        load_tracking_config,
        track_digits,
    )

    setup, run = input_identity(args.digits, args.setup)
    db = conditions_from_args(args)
    geometry = db.geometry(setup, run)
    inputs = {
        "geometry": geometry,
        "field": load_field(db, setup, run),
        "pedestals": load_strip_pedestals(db, setup, run),
        "alignment": load_alignment(db, setup, run, geometry),
        "config": load_tracking_config(db, setup, run),
    }

    def process(digits: ak.Array) -> ak.Array:
        columns = track_digits(digits, **inputs)
        identity = {name: digits[name] for name in ("run", "spill", "event")}
        return ak.zip(
            {**identity, **{k: ak.from_numpy(v) for k, v in columns.items()}}, depth_limit=1
        )

    run_chunked_stage(
        stage="track", source=args.digits, output=args.output, process=process,
        config={"chunk_events": args.chunk_events},
        conditions={k: db.find(k, setup, run).provenance() for k in _KINDS},
        setup=setup, run=run, chunk_events=args.chunk_events, columns=_COLUMNS,
        skip_current=args.skip_current,
    )  # fmt: skip
    return 0
