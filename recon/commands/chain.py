"""``na64 chain STAGE ARGS :: STAGE ARGS ...``: several stage commands in one process.

Runs ``na64 decode ... :: na64 calo ... :: na64 track ... :: na64 classify ...`` (the
``na64`` words left out) one after the other in this process, so the interpreter,
the imports and numba's start-up are paid once per chunk instead of once per stage
(about 1 s each, docs/chain-benchmark.md). Each stage is exactly the stand-alone
command: same options, same outputs, same provenance. Stops at the first stage that
fails, with its exit status.

With ``--skip-current`` on each stage, a stage whose output is already current is
kept, so that the workflow's one-job-per-chunk mode (``chunk_jobs: per_chunk``)
redoes only the stages that a calibration update touches.

Example::

    na64 chain decode run1.na64raw -o d.parquet :: calo d.parquet -o c.parquet
"""

from __future__ import annotations

import argparse
import logging

__all__ = ["SEPARATOR", "register", "split_commands"]

SEPARATOR = "::"

log = logging.getLogger("na64.chain")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "chain",
        help="run several stage commands in one process",
        description=__doc__.splitlines()[0],
    )
    p.add_argument(
        "commands",
        nargs=argparse.REMAINDER,
        help=f"stage commands with their options, separated by {SEPARATOR!r}",
    )
    p.set_defaults(func=_main)


def split_commands(words: list[str]) -> list[list[str]]:
    """The stage commands of a ``chain`` command line.

    >>> split_commands(["decode", "a", "-o", "b", "::", "calo", "b", "-o", "c"])
    [['decode', 'a', '-o', 'b'], ['calo', 'b', '-o', 'c']]
    """
    commands: list[list[str]] = [[]]
    for word in words:
        if word == SEPARATOR:
            commands.append([])
        else:
            commands[-1].append(word)
    commands = [c for c in commands if c]
    for command in commands:
        if command[0] == "chain" or command[0].startswith("-"):
            raise SystemExit(f"na64 chain: not a stage command: {' '.join(command)}")
    return commands


def _main(args: argparse.Namespace) -> int:
    from recon.cli import build_parser

    commands = split_commands(args.commands)
    if not commands:
        raise SystemExit("na64 chain: no stage command given")
    for position, command in enumerate(commands, start=1):
        log.info("stage %d/%d: na64 %s", position, len(commands), " ".join(command))
        stage_args = build_parser(command[0]).parse_args(command)
        status = int(stage_args.func(stage_args) or 0)
        if status:
            log.error("na64 %s failed with status %d: chain stopped", command[0], status)
            return status
    return 0
