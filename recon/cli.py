"""The ``na64`` command: one subcommand per stage.

Stages of the ``recon`` package are listed in :data:`STAGE_COMMANDS`; stages
of other packages (the simulation) register through the ``na64.stages``
entry-point group, so that ``recon`` never imports them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from importlib.metadata import entry_points

from recon import __version__
from recon.conditions import ConditionsError
from recon.io.rawformat import RawFormatError
from recon.progress import configure_logging

__all__ = ["main"]

STAGE_COMMANDS = (
    "recon.commands.decode",
    "recon.commands.derive",
    "recon.commands.calo",
    "recon.commands.track",
    "recon.commands.classify",
    "recon.commands.merge",
    "recon.commands.validate_calo",
    "recon.commands.align",
    "recon.commands.validate_track",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="na64", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="STAGE")
    for name in STAGE_COMMANDS:
        importlib.import_module(name).register(subparsers)
    for ep in sorted(entry_points(group="na64.stages"), key=lambda e: e.name):
        try:
            module = ep.load()
        except ImportError as exc:  # a broken plugin must not take the other stages down
            _register_unavailable(subparsers, ep.name, exc)
        else:
            module.register(subparsers)
    return parser


def _register_unavailable(subparsers, name: str, exc: Exception) -> None:
    def fail(_args):
        raise SystemExit(f"na64 {name}: stage unavailable ({exc})")

    parser = subparsers.add_parser(name, help=f"(unavailable: {exc})", add_help=False)
    parser.set_defaults(func=fail)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except (RawFormatError, ConditionsError, FileNotFoundError) as exc:
        logging.getLogger("na64").error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
