"""Flat views of the decoded SADC groups (ECAL, HCAL, counters) and their channel indexing.

The decoded digits hold, per event, a jagged list of SADC channels per group
(``ecal``: section, ix, iy; ``hcal``: module, ix, iy; ``counters``: counter),
each with 32 raw samples (ADC counts including the pedestal). The calorimetry
works on one flat array per group: ``samples`` of shape (n_channels, n_samples),
``offsets`` (n_events + 1) into it, and a dense ``channel_index`` per channel
that addresses the per-channel condition arrays (pedestals, gains) laid out as

* ECAL:     ``(section * n_x + ix) * n_y + iy``, shape ``(n_sections, n_x, n_y)``;
* HCAL:     ``(module * n_x + ix) * n_y + iy``, shape ``(n_modules, n_x, n_y)``;
* counters: the counter id (0 S1, 1 V1, 2 S2, 3 V2, 4-6 SRD0-2, 7-10 MU1-4).

The shapes come from the geometry condition (number of ECAL sections, HCAL
module fronts, cell matrix sizes and counters), never from constants here.
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

from recon.conditions.geometry import Geometry

__all__ = ["GROUPS", "SadcHits", "SadcLayout", "sadc_hits"]

GROUPS = ("ecal", "hcal", "counters")


@dataclass(frozen=True)
class SadcLayout:
    """Shapes of the per-channel condition arrays of each SADC group."""

    ecal: tuple[int, int, int]
    hcal: tuple[int, int, int]
    counters: tuple[int]
    counter_names: tuple[str, ...]

    @classmethod
    def from_geometry(cls, geometry: Geometry) -> SadcLayout:
        n_sections = len(geometry.ecal.extra["sections"])
        names = tuple(geometry.counter_names())
        return cls(
            ecal=(n_sections, geometry.ecal.n_x, geometry.ecal.n_y),
            hcal=(len(geometry.hcal_z_fronts), geometry.hcal.n_x, geometry.hcal.n_y),
            counters=(len(names),),
            counter_names=names,
        )

    def shape(self, group: str) -> tuple[int, ...]:
        return getattr(self, group)

    def size(self, group: str) -> int:
        return int(np.prod(self.shape(group)))


@dataclass(frozen=True)
class SadcHits:
    """One SADC group of a chunk as flat arrays.

    ``offsets`` (n_events + 1,) int64; ``channel_index`` (n,) int32 into the
    group's condition arrays; ``samples`` (n, n_samples) uint16 raw counts.
    """

    offsets: np.ndarray
    channel_index: np.ndarray
    samples: np.ndarray

    @property
    def n_events(self) -> int:
        return self.offsets.size - 1

    def event_of_channel(self) -> np.ndarray:
        """Event number (row in the chunk) of every channel."""
        return np.repeat(np.arange(self.n_events), np.diff(self.offsets))

    def dense(self, values: np.ndarray, n_channels: int, fill: float = 0) -> np.ndarray:
        """Per-channel ``values`` as an (n_events, n_channels) array; absent channels = ``fill``."""
        out = np.full((self.n_events, n_channels), fill, dtype=np.result_type(values.dtype, fill))
        out[self.event_of_channel(), self.channel_index] = values
        return out


_FIELDS = {
    "ecal": ("section", "ix", "iy"),
    "hcal": ("module", "ix", "iy"),
    "counters": ("counter",),
}


def sadc_hits(digits: ak.Array, group: str, layout: SadcLayout) -> SadcHits:
    """Flatten the ``group`` collection of decoded ``digits`` into :class:`SadcHits`."""
    collection = digits[group]
    counts = np.asarray(ak.num(collection, axis=1), dtype=np.int64)
    offsets = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    flat = ak.flatten(collection, axis=1)
    shape = layout.shape(group)
    index = np.zeros(int(offsets[-1]), dtype=np.int64)
    for name, extent in zip(_FIELDS[group], shape, strict=True):
        values = np.asarray(flat[name], dtype=np.int64)
        if values.size and (values.min() < 0 or values.max() >= extent):
            raise ValueError(f"{group}.{name} outside 0..{extent - 1} of the geometry")
        index = index * extent + values
    samples = np.ascontiguousarray(ak.to_numpy(flat["samples"]), dtype=np.uint16)
    if samples.ndim != 2:
        samples = samples.reshape(index.size, -1)
    return SadcHits(offsets=offsets, channel_index=index.astype(np.int32), samples=samples)
