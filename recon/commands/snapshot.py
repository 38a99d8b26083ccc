"""``na64 snapshot``: the configuration and conditions of a reprocessing tag, frozen.

Writes into ``-o DIR`` (the workflow: ``results/<tag>/snapshot``):

* ``config.yaml``: the effective configuration (``--config-json``, as the
  workflow ran it: config file, ``--configfile`` and ``--config`` overrides);
* ``conditions.json``: every condition file the tag uses, i.e. the file that
  :class:`recon.conditions.ConditionsDB` selects for each kind of the setup and
  each run of the tag (with the version pins), with its kind, version, valid
  runs, sha256, origin (``shipped`` or ``derived``), path relative to its root
  and the runs it serves (``run_ranges``: [first, last] of runs adjacent in
  the tag's sorted ``runs``);
  lookups that fail are listed under ``unresolved``;
* ``conditions/<setup>/<kind>/<file>``: copies of the shipped condition files
  used, a conditions root of its own, so that a later reprocessing can use the
  same detector description with ``--conditions DIR/conditions`` (and the
  derived conditions under ``results/<tag>/conditions``).

Runs of the tag: those of the configuration's datasets (simulated: the
configured run numbers; recorded: the run numbers in the file headers of the
raw files their patterns match, relative to the working directory), and any
``--runs`` given. No timestamps are written and ``conditions.json`` names
files relative to their roots, so a rerun is byte-identical.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from recon import __version__
from recon.commands.common import add_conditions_options, conditions_from_args
from recon.conditions import ConditionsDB, ConditionsError
from recon.io.rawformat import FILE_HEADER_SIZE, FileHeader
from recon.io.tables import write_json

__all__ = ["config_runs", "raw_file_runs", "register", "resolve_conditions", "write_snapshot"]

SHIPPED, DERIVED = "shipped", "derived"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "snapshot",
        help="freeze the configuration and conditions of a tag",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--config-json", required=True, help="the effective configuration (JSON)")
    p.add_argument("-o", "--output", type=Path, required=True, help="snapshot directory")
    p.add_argument("--runs", type=int, nargs="*", default=[], help="more run numbers")
    p.add_argument(
        "--derived", type=Path, help="the conditions root of the tag's derived conditions"
    )
    add_conditions_options(p)
    p.set_defaults(func=_main)


def raw_file_runs(paths: Iterable[Path]) -> list[int]:
    """Run numbers from the NA64RAW1 file headers (64 bytes read per file)."""
    runs = set()
    for path in paths:
        with open(path, "rb") as fh:
            runs.add(FileHeader.unpack(fh.read(FILE_HEADER_SIZE), path).run)
    return sorted(runs)


def config_runs(config: dict[str, Any]) -> list[int]:
    """Run numbers of the configured datasets: simulated runs, and raw file headers."""
    runs = set()
    for spec in config.get("datasets", {}).values():
        if "simulate" in spec:
            runs.update(int(r) for r in spec["simulate"]["runs"])
            continue
        for pattern in spec.get("raw", []):
            wild = any(c in pattern for c in "*?[")
            runs.update(raw_file_runs(map(Path, glob.glob(pattern)) if wild else [Path(pattern)]))
    return sorted(runs)


def _kinds(db: ConditionsDB, setup: str) -> list[str]:
    kinds = {
        p.name for root in db.roots if (root / setup).is_dir() for p in (root / setup).iterdir()
    }
    return sorted(k for k in kinds if db.records(k, setup))


def _origin(path: Path, derived: Path | None) -> tuple[str, Path]:
    """(origin, root) of a condition file: under the derived root or a shipped one."""
    root = path.parent.parent.parent
    if derived is not None and root.resolve() == derived.resolve():
        return DERIVED, root
    return SHIPPED, root


def _extend_ranges(ranges: list[list[int]], run: int, position: dict[int, int]) -> None:
    """Append ``run`` to [first, last] ranges of runs adjacent in the tag's sorted runs."""
    if ranges and position[ranges[-1][1]] + 1 == position[run]:
        ranges[-1][1] = run
    else:
        ranges.append([run, run])


def resolve_conditions(
    db: ConditionsDB, setup: str, runs: Iterable[int], derived: Path | None = None
) -> dict[str, Any]:
    """The condition file of every kind for every run: one entry per file used, and failures."""
    runs = sorted(set(runs))
    position = {run: i for i, run in enumerate(runs)}
    used: dict[Path, dict[str, Any]] = {}
    unresolved = []
    for kind in _kinds(db, setup):
        for run in runs:
            try:
                record = db.find(kind, setup, run)
            except ConditionsError as exc:
                unresolved.append({"kind": kind, "run": run, "error": str(exc)})
                continue
            if record.path not in used:
                origin, root = _origin(record.path, derived)
                used[record.path] = {
                    "kind": kind,
                    "version": record.version,
                    "valid_runs": [record.first_run, record.last_run],
                    "sha256": record.sha256,
                    "origin": origin,
                    "path": record.path.relative_to(root).as_posix(),
                    "description": record.description,
                    "run_ranges": [],
                }
            _extend_ranges(used[record.path]["run_ranges"], run, position)
    files = sorted(used.items(), key=lambda item: (item[1]["kind"], item[1]["version"]))
    return {
        "setup": setup,
        "runs": runs,
        "pins": dict(sorted(db.pins.items())),
        "conditions": [entry for _, entry in files],
        "sources": [str(path) for path, _ in files],
        "unresolved": unresolved,
    }


def write_snapshot(output: Path, config: dict[str, Any], resolved: dict[str, Any]) -> None:
    """config.yaml, conditions.json and the copies of the shipped condition files."""
    output.mkdir(parents=True, exist_ok=True)
    copies = output / "conditions"
    if copies.exists():
        shutil.rmtree(copies)
    sources = resolved.pop("sources")
    for entry, source in zip(resolved["conditions"], sources, strict=True):
        if entry["origin"] == SHIPPED:
            target = copies / entry["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            entry["snapshot_path"] = f"conditions/{entry['path']}"
    tmp = output / f".config.yaml.{os.getpid()}.tmp"
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    os.replace(tmp, output / "config.yaml")
    write_json(output / "conditions.json", resolved)


def _main(args: argparse.Namespace) -> int:
    config = json.loads(args.config_json)
    db = conditions_from_args(args)
    runs = [*config_runs(config), *args.runs]
    resolved = resolve_conditions(db, config["setup"], runs, args.derived)
    resolved = {"tag": config.get("tag"), "code_version": __version__, **resolved}
    if args.derived is not None:
        resolved["derived_root"] = args.derived.as_posix()
    write_snapshot(args.output, config, resolved)
    return 0
