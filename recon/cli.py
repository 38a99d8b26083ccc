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

#: Subcommand -> module that registers it. Only the invoked command's module is imported,
#: so that a job pays the start-up of its own stage only (``na64 --help`` imports all).
STAGE_COMMANDS = {
    "decode": "recon.commands.decode",
    "summarize-decode": "recon.commands.decode",
    "derive": "recon.commands.derive",
    "align": "recon.commands.align",
    "calo": "recon.commands.calo",
    "track": "recon.commands.track",
    "classify": "recon.commands.classify",
    "merge": "recon.commands.merge",
    "select": "recon.commands.select",
    "signal-efficiency": "recon.commands.signal_efficiency",
    "limit": "recon.commands.limit",
    "validate-calo": "recon.commands.validate_calo",
    "validate-track": "recon.commands.validate_track",
    "validate-events": "recon.commands.validate_events",
    "snapshot": "recon.commands.snapshot",
    "chain": "recon.commands.chain",
    "manifest": "recon.commands.manifest",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``na64`` parser: every subcommand, or only ``command`` when it is a known one."""
    parser = argparse.ArgumentParser(prog="na64", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="STAGE")
    plugins = sorted(entry_points(group="na64.stages"), key=lambda e: e.name)
    known = command in STAGE_COMMANDS or any(ep.name == command for ep in plugins)
    modules = [m for name, m in STAGE_COMMANDS.items() if not known or name == command]
    for module in dict.fromkeys(modules):
        importlib.import_module(module).register(subparsers)
    for ep in plugins:
        if known and ep.name != command:
            continue
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


def _command(argv: list[str]) -> str | None:
    """The subcommand named on the command line (the first positional argument)."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(_command(argv)).parse_args(argv)
    configure_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except (RawFormatError, ConditionsError, FileNotFoundError) as exc:
        logging.getLogger("na64").error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
