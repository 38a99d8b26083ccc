"""Typed view of the ``channel_map`` condition, compiled to lookup tables.

The decoder needs, for every (source id, channel), where the channel's values
go. The map is compiled into dense integer tables indexed by source and
channel so that a numba kernel can apply it without Python dictionaries:

* ``source_kind[source]``: 0 unknown, 1 SADC, 2 APV;
* ``sadc_group[source]``: index of the SADC group (``ecal``, ``hcal``, ...);
* ``sadc_fields[source, channel, :]``: the group's field values, -1 if the
  channel is not mapped;
* ``apv_detector[source]``, ``apv_plane[source, channel]`` and
  ``apv_strip[source, channel]`` (-1 if the strip channel is not mapped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from recon.conditions.db import ConditionRecord, ConditionsError

__all__ = ["MAX_CHANNEL", "MAX_SADC_FIELDS", "MAX_SOURCE", "ChannelMap", "SadcGroup"]

MAX_SOURCE = 1 << 16  # source ids are u16
MAX_CHANNEL = 1 << 16  # channel numbers are u16
MAX_SADC_FIELDS = 3  # e.g. (section, ix, iy)

KIND_UNKNOWN, KIND_SADC, KIND_APV = 0, 1, 2


@dataclass(frozen=True)
class SadcGroup:
    """SADC channels decoded into one jagged collection (``ecal``, ``hcal``, ``counters``)."""

    name: str
    source: int
    fields: tuple[str, ...]


@dataclass(frozen=True)
class ChannelMap:
    groups: tuple[SadcGroup, ...]
    apv_detectors: dict[int, str]  # detector_id -> name
    source_kind: np.ndarray  # (MAX_SOURCE,) int8
    sadc_group: np.ndarray  # (MAX_SOURCE,) int16
    sadc_fields: dict[int, np.ndarray]  # source -> (n_channels, MAX_SADC_FIELDS) int16
    apv_detector: np.ndarray  # (MAX_SOURCE,) int16
    apv_tables: dict[int, np.ndarray]  # source -> (n_channels, 2) int16 (plane, strip)
    record: ConditionRecord | None = None

    @classmethod
    def from_data(cls, data: dict[str, Any], record: ConditionRecord | None = None) -> ChannelMap:
        source_kind = np.zeros(MAX_SOURCE, dtype=np.int8)
        sadc_group = np.full(MAX_SOURCE, -1, dtype=np.int16)
        apv_detector = np.full(MAX_SOURCE, -1, dtype=np.int16)
        groups: list[SadcGroup] = []
        sadc_fields: dict[int, np.ndarray] = {}
        for name, spec in data.get("sadc", {}).items():
            source = int(spec["source"])
            fields = tuple(spec["fields"])
            if len(fields) > MAX_SADC_FIELDS:
                raise ConditionsError(f"channel map group {name}: at most {MAX_SADC_FIELDS} fields")
            rows = np.asarray(spec["channels"], dtype=np.int64)
            if rows.ndim != 2 or rows.shape[1] != len(fields) + 1:
                raise ConditionsError(
                    f"channel map group {name}: rows must be [channel, {', '.join(fields)}]"
                )
            _claim_source(source_kind, source, KIND_SADC, name)
            table = np.full((int(rows[:, 0].max()) + 1, MAX_SADC_FIELDS), -1, dtype=np.int16)
            table[rows[:, 0], : len(fields)] = rows[:, 1:]
            sadc_group[source] = len(groups)
            sadc_fields[source] = table
            groups.append(SadcGroup(name=name, source=source, fields=fields))
        apv_tables: dict[int, np.ndarray] = {}
        apv_names: dict[int, str] = {}
        for spec in data.get("apv", []):
            source = int(spec["source"])
            _claim_source(source_kind, source, KIND_APV, spec["detector"])
            ranges = spec["ranges"]
            n_channels = max(int(r["first_channel"]) + int(r["n"]) for r in ranges)
            table = np.full((n_channels, 2), -1, dtype=np.int16)
            for r in ranges:
                first, n = int(r["first_channel"]), int(r["n"])
                table[first : first + n, 0] = int(r["plane"])
                table[first : first + n, 1] = int(r["first_strip"]) + np.arange(n)
            apv_detector[source] = int(spec["detector_id"])
            apv_tables[source] = table
            apv_names[int(spec["detector_id"])] = str(spec["detector"])
        return cls(
            groups=tuple(groups),
            apv_detectors=apv_names,
            source_kind=source_kind,
            sadc_group=sadc_group,
            sadc_fields=sadc_fields,
            apv_detector=apv_detector,
            apv_tables=apv_tables,
            record=record,
        )

    def group(self, name: str) -> SadcGroup:
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(f"no SADC group {name!r} in the channel map")

    def dense_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """(sadc_lut, apv_lut): per (source, channel) lookups for the decoder kernels.

        ``sadc_lut`` has shape (n_sources, n_channels, MAX_SADC_FIELDS) with -1 for
        unmapped channels; ``apv_lut`` has shape (n_sources, n_channels, 2).
        Sources are indexed directly by id up to the largest mapped id.
        """
        n_src = int(max([*self.sadc_fields, *self.apv_tables], default=0)) + 1
        n_sadc = max((t.shape[0] for t in self.sadc_fields.values()), default=1)
        n_apv = max((t.shape[0] for t in self.apv_tables.values()), default=1)
        sadc = np.full((n_src, n_sadc, MAX_SADC_FIELDS), -1, dtype=np.int16)
        for src, table in self.sadc_fields.items():
            sadc[src, : table.shape[0]] = table
        apv = np.full((n_src, n_apv, 2), -1, dtype=np.int16)
        for src, table in self.apv_tables.items():
            apv[src, : table.shape[0]] = table
        return sadc, apv


def _claim_source(source_kind: np.ndarray, source: int, kind: int, name: str) -> None:
    if not 0 <= source < MAX_SOURCE:
        raise ConditionsError(f"channel map {name}: source id {source} out of range")
    if source_kind[source] != KIND_UNKNOWN:
        raise ConditionsError(f"channel map {name}: source id {source} is mapped twice")
    source_kind[source] = kind
