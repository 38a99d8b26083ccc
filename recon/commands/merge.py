"""``na64 merge EVENTS... -o DATASET``: the event tables of a dataset's chunks in one file.

For simulated datasets, ``--truth`` merges the truth tables in the same event
order into ``--truth-output`` and copies the generator ``weight`` of each
event (biased rare processes) into the merged events, so that weighted sums
normalise to electrons on target. Events and truth are joined on
(``run``, ``spill``, ``event``); an event without truth is an error.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import awkward as ak
import numpy as np

from recon.io.tables import read_events, write_events
from recon.provenance import file_checksum, make_provenance

__all__ = ["attach_weights", "register"]

_KEYS = ("run", "spill", "event")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("merge", help="merge the per-chunk event tables of a dataset",
                              description=__doc__.splitlines()[0])  # fmt: skip
    p.add_argument(
        "events", type=Path, nargs="+", help="outputs of `na64 classify`, in chunk order"
    )
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--truth", type=Path, nargs="+", help="truth tables of a simulated dataset")
    p.add_argument("--truth-output", type=Path, help="merged truth (with --truth)")
    p.set_defaults(func=_main)


def _keys(table: ak.Array) -> np.ndarray:
    run, spill, event = (np.asarray(table[k], dtype=np.uint64) for k in _KEYS)
    return (run << np.uint64(42)) | (spill << np.uint64(21)) | event


def attach_weights(events: ak.Array, truth: ak.Array) -> tuple[ak.Array, ak.Array]:
    """Events with the truth ``weight``; the truth rows in the events' order."""
    truth_keys = _keys(truth)
    order = np.argsort(truth_keys, kind="stable")
    position = np.searchsorted(truth_keys[order], _keys(events))
    position = np.minimum(position, len(order) - 1)
    rows = order[position]
    missing = truth_keys[rows] != _keys(events)
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        ids = ", ".join(f"{k}={int(events[k][first])}" for k in _KEYS)
        raise SystemExit(f"{int(missing.sum())} events have no truth row (first: {ids})")
    matched = truth[rows]
    return ak.with_field(events, np.asarray(matched["weight"], dtype=np.float64), "weight"), matched


def _main(args: argparse.Namespace) -> int:
    events = ak.concatenate([read_events(p) for p in args.events])
    inputs = list(args.events)
    truth = None
    if args.truth:
        if not args.truth_output:
            raise SystemExit("--truth needs --truth-output")
        truth_all = ak.concatenate([ak.from_parquet(p) for p in args.truth])
        events, truth = attach_weights(events, truth_all)
        inputs += list(args.truth)

    def provenance():
        return make_provenance(
            stage="merge", config={}, inputs=[(p, file_checksum(p)) for p in inputs]
        )

    write_events(args.output, [events], provenance)
    if truth is not None:
        write_events(args.truth_output, [truth], provenance)
    return 0
