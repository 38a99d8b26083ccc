"""``na64 calo DIGITS -o CALO``: calibrated cells and ECAL/HCAL/counter summaries per event."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from recon.calo.calo_stage import CaloConditions, CaloConfig, calo_from_digits
from recon.commands.common import add_conditions_options, conditions_from_args
from recon.commands.stage import add_skip_current_option, input_identity, run_chunked_stage

__all__ = ["register"]

_COLUMNS = ["run", "spill", "event", "trigger_time_ns", "trigger_mask", "ecal", "hcal", "counters"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "calo", help="calorimetry: waveforms, calibration, summaries", description=__doc__
    )
    p.add_argument("digits", type=Path, help="digits file of `na64 decode`")
    p.add_argument("-o", "--output", type=Path, required=True, help="calo file (.parquet or .root)")
    p.add_argument("--setup", help="detector setup (default: from the digits' provenance)")
    p.add_argument("--chunk-events", type=int, default=10_000)
    p.add_argument("--intime-window-ns", type=float, default=CaloConfig.intime_window_ns)
    p.add_argument("--hcal-modules-in-sum", type=int, default=CaloConfig.hcal_modules_in_sum)
    add_conditions_options(p)
    add_skip_current_option(p)
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    setup, run = input_identity(args.digits, args.setup)
    conditions = CaloConditions.load(conditions_from_args(args), setup, run)
    config = CaloConfig(
        intime_window_ns=args.intime_window_ns, hcal_modules_in_sum=args.hcal_modules_in_sum
    )
    run_chunked_stage(
        stage="calo", source=args.digits, output=args.output,
        process=lambda digits: calo_from_digits(digits, conditions, config),
        config=_plain(asdict(config)), conditions=conditions.provenance(), setup=setup, run=run,
        chunk_events=args.chunk_events, columns=_COLUMNS, skip_current=args.skip_current,
    )  # fmt: skip
    return 0


def _plain(value):
    """Dataclass dicts as JSON-ready values (tuples as lists)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return list(value) if isinstance(value, tuple) else value
