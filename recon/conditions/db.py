"""Lookup of versioned condition files by (kind, setup, run)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ConditionRecord", "ConditionsDB", "ConditionsError", "load_condition_file"]

_SUFFIXES = (".yaml", ".yml", ".json")
_REQUIRED = ("kind", "setup", "version", "valid_runs", "data")

try:  # the C loader is ten times faster on large tables
    _YamlLoader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the libyaml build
    _YamlLoader = yaml.SafeLoader


class ConditionsError(LookupError):
    """A condition is missing, ambiguous or malformed for the requested run."""


@dataclass(frozen=True)
class ConditionRecord:
    """One condition file: its identity, validity and content checksum."""

    kind: str
    setup: str
    version: str
    first_run: int
    last_run: int
    path: Path
    sha256: str
    description: str = ""

    def covers(self, run: int) -> bool:
        return self.first_run <= run <= self.last_run

    def provenance(self) -> dict[str, str]:
        """What an output records about the condition it used."""
        return {"version": self.version, "file": self.path.name, "sha256": self.sha256}


def load_condition_file(path: str | Path) -> tuple[dict[str, Any], str]:
    """Read a condition file; return its parsed content and sha256 of the bytes."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        doc = json.loads(raw) if path.suffix == ".json" else yaml.load(raw, Loader=_YamlLoader)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConditionsError(f"{path}: cannot parse condition file: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConditionsError(f"{path}: a condition file must hold a mapping")
    missing = [key for key in _REQUIRED if key not in doc]
    if missing:
        raise ConditionsError(f"{path}: missing header field(s) {', '.join(missing)}")
    runs = doc["valid_runs"]
    if not (isinstance(runs, list) and len(runs) == 2 and int(runs[0]) <= int(runs[1])):
        raise ConditionsError(f"{path}: valid_runs must be [first, last] with first <= last")
    return doc, hashlib.sha256(raw).hexdigest()


class ConditionsDB:
    """Versioned conditions from one or more root directories.

    Parameters
    ----------
    roots
        Directories holding ``<setup>/<kind>/<version>.{yaml,json}``. Later
        roots are searched too; a (kind, setup, version) defined twice is an
        error, so derived conditions cannot silently shadow shipped ones.
    pins
        ``kind -> version`` chosen by the configuration. A pinned kind uses
        that version only, and it must cover the run.
    """

    def __init__(self, roots: Iterable[str | Path], *, pins: Mapping[str, str] | None = None):
        unique: dict[Path, Path] = {}
        for root in map(Path, roots):  # the same directory named twice is searched once
            unique.setdefault(root.resolve(), root)
        self.roots = tuple(unique.values())
        self.pins = dict(pins or {})
        self._documents: dict[Path, dict[str, Any]] = {}

    @cached_property
    def _index(self) -> dict[tuple[str, str], list[ConditionRecord]]:
        index: dict[tuple[str, str], list[ConditionRecord]] = {}
        seen: dict[tuple[str, str, str], Path] = {}
        for root in self.roots:
            if not root.is_dir():
                raise ConditionsError(f"conditions root {root} is not a directory")
            for path in sorted(p for p in root.glob("*/*/*") if p.suffix in _SUFFIXES):
                doc, digest = load_condition_file(path)
                self._documents[path] = doc
                setup, kind = path.parent.parent.name, path.parent.name
                if (doc["kind"], doc["setup"]) != (kind, setup):
                    raise ConditionsError(
                        f"{path}: header says kind={doc['kind']!r} setup={doc['setup']!r}, "
                        f"but the file sits under {setup}/{kind}"
                    )
                key = (kind, setup, str(doc["version"]))
                if key in seen:
                    raise ConditionsError(
                        f"{kind} version {key[2]} for {setup} is defined twice: "
                        f"{seen[key]} and {path}"
                    )
                seen[key] = path
                record = ConditionRecord(
                    kind=kind,
                    setup=setup,
                    version=str(doc["version"]),
                    first_run=int(doc["valid_runs"][0]),
                    last_run=int(doc["valid_runs"][1]),
                    path=path,
                    sha256=digest,
                    description=str(doc.get("description", "")),
                )
                index.setdefault((kind, setup), []).append(record)
        return index

    def records(self, kind: str, setup: str) -> list[ConditionRecord]:
        """Every version of a kind for a setup, whatever its validity."""
        return list(self._index.get((kind, setup), []))

    def find(self, kind: str, setup: str, run: int) -> ConditionRecord:
        """The one condition record of ``kind`` valid for ``run``."""
        candidates = self.records(kind, setup)
        if not candidates:
            raise ConditionsError(
                f"no '{kind}' conditions for setup '{setup}' under {[str(r) for r in self.roots]}"
            )
        pinned = self.pins.get(kind)
        if pinned is not None:
            candidates = [c for c in candidates if c.version == pinned]
            if not candidates:
                raise ConditionsError(
                    f"'{kind}' version '{pinned}' (pinned) does not exist for '{setup}'"
                )
        valid = [c for c in candidates if c.covers(run)]
        if not valid:
            ranges = ", ".join(f"{c.version}: {c.first_run}-{c.last_run}" for c in candidates)
            raise ConditionsError(
                f"no '{kind}' condition for setup '{setup}' covers run {run} ({ranges})"
            )
        if len(valid) > 1:
            versions = ", ".join(c.version for c in valid)
            raise ConditionsError(
                f"ambiguous '{kind}' conditions for setup '{setup}' run {run}: versions {versions} "
                f"all cover it; pin one with conditions.versions.{kind} in the config"
            )
        return valid[0]

    def data(self, kind: str, setup: str, run: int) -> tuple[dict[str, Any], ConditionRecord]:
        """The ``data`` mapping of the valid condition, with its record."""
        record = self.find(kind, setup, run)
        return self._documents[record.path]["data"], record

    def geometry(self, setup: str, run: int):
        from recon.conditions.geometry import Geometry

        data, record = self.data("geometry", setup, run)
        return Geometry.from_data(data, record)

    def channel_map(self, setup: str, run: int):
        from recon.conditions.channel_map import ChannelMap

        data, record = self.data("channel_map", setup, run)
        return ChannelMap.from_data(data, record)
