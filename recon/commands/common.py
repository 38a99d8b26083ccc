"""Options shared by the stage commands: conditions roots and version pins."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from recon.conditions import ConditionsDB

__all__ = ["add_conditions_options", "conditions_from_args"]


def add_conditions_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--conditions",
        action="append",
        metavar="DIR",
        type=Path,
        help="conditions root (repeatable; default: $NA64_CONDITIONS or ./conditions)",
    )
    parser.add_argument(
        "--pin",
        action="append",
        default=[],
        metavar="KIND=VERSION",
        help="use this version of a condition kind (repeatable)",
    )


def conditions_from_args(args: argparse.Namespace) -> ConditionsDB:
    roots = args.conditions or [
        Path(p) for p in os.environ.get("NA64_CONDITIONS", "conditions").split(":")
    ]
    pins = {}
    for item in args.pin:
        kind, sep, version = item.partition("=")
        if not sep or not kind or not version:
            raise SystemExit(f"--pin expects KIND=VERSION, got {item!r}")
        pins[kind] = version
    return ConditionsDB(roots, pins=pins)
