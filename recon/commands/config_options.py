"""Command-line options from the frozen config dataclasses of the stages.

Every field of a config dataclass becomes ``--<prefix>-<field>`` (underscores as dashes)
with the field's default, so that a workflow config section maps one to one onto a
command line (``option_args`` in ``workflow/rules/common.smk``). Numeric tuples take as
many values as their default; tuples of names take one or more.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import fields
from typing import Any, TypeVar

import numpy as np

__all__ = ["add_dataclass_options", "dataclass_from_args", "plain"]

T = TypeVar("T")


def add_dataclass_options(
    parser: argparse.ArgumentParser, cls: type, prefix: str, *, only: Iterable[str] | None = None
) -> None:
    """Add ``--<prefix>-<field>`` for the fields of ``cls`` (or those named in ``only``)."""
    wanted = None if only is None else set(only)
    for f in fields(cls):
        if wanted is not None and f.name not in wanted:
            continue
        default = getattr(cls, f.name)
        if isinstance(default, tuple):
            names = all(isinstance(v, str) for v in default)
            kind, nargs = (str, "+") if names else (type(default[0]), len(default))
        else:
            kind, nargs = type(default), None
        parser.add_argument(
            f"--{prefix}-{f.name.replace('_', '-')}",
            type=kind,
            nargs=nargs,
            default=default,
            dest=_dest(prefix, f.name),
        )


def dataclass_from_args(args: argparse.Namespace, cls: type[T], prefix: str) -> T:
    """The ``cls`` instance of the options :func:`add_dataclass_options` added (lists as tuples)."""
    values = {}
    for f in fields(cls):
        dest = _dest(prefix, f.name)
        if hasattr(args, dest):
            value = getattr(args, dest)
            values[f.name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)


def _dest(prefix: str, name: str) -> str:
    return f"{prefix.replace('-', '_')}_{name}"


def plain(value: Any) -> Any:
    """JSON-ready copy: tuples as lists, numpy scalars as Python, non-finite floats as None."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
