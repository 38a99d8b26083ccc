"""Typed view of the ``geometry`` condition (positions in mm)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from recon.conditions.db import ConditionRecord

__all__ = ["CalorimeterGeometry", "CounterGeometry", "Geometry", "TrackerStation"]


@dataclass(frozen=True)
class TrackerStation:
    """A tracking station with an X and a Y strip plane."""

    name: str
    id: int
    technology: str
    z: float
    x: float
    y: float
    size: float
    n_strips: int
    pitch: float

    def strip_position(self, strip, plane: int):
        """Strip centre (mm) in the global frame; ``plane`` 0 = X, 1 = Y."""
        centre = self.x if plane == 0 else self.y
        return centre + (strip + 0.5) * self.pitch - 0.5 * self.size


@dataclass(frozen=True)
class CounterGeometry:
    name: str
    id: int
    z: float
    x: float
    y: float
    size_x: float
    size_y: float
    hole_radius: float = 0.0


@dataclass(frozen=True)
class CalorimeterGeometry:
    """A matrix of cells; cell (ix, iy) centre = centre + (i - centre_index) * cell_size."""

    z_front: float
    x_centre: float
    y_centre: float
    n_x: int
    n_y: int
    centre_index: int
    cell_size: float
    extra: dict[str, Any] = field(default_factory=dict)

    def cell_x(self, ix):
        return self.x_centre + (ix - self.centre_index) * self.cell_size

    def cell_y(self, iy):
        return self.y_centre + (iy - self.centre_index) * self.cell_size


@dataclass(frozen=True)
class Geometry:
    trackers: dict[str, TrackerStation]
    counters: dict[str, CounterGeometry]
    ecal: CalorimeterGeometry
    hcal: CalorimeterGeometry
    hcal_z_fronts: tuple[float, ...]
    vacuum_vessel: tuple[float, float]
    record: ConditionRecord | None = None

    @classmethod
    def from_data(cls, data: dict[str, Any], record: ConditionRecord | None = None) -> Geometry:
        trackers = {
            name: TrackerStation(name=name, **spec) for name, spec in data["trackers"].items()
        }
        counters = {
            name: CounterGeometry(name=name, **spec) for name, spec in data["counters"].items()
        }
        ecal_spec = dict(data["ecal"])
        ecal_core = {k: ecal_spec.pop(k) for k in _CALO_KEYS}
        ecal = CalorimeterGeometry(z_front=ecal_spec.pop("z_front"), **ecal_core, extra=ecal_spec)
        hcal_spec = dict(data["hcal"])
        z_fronts = tuple(float(z) for z in hcal_spec.pop("z_fronts"))
        hcal_core = {k: hcal_spec.pop(k) for k in _CALO_KEYS}
        hcal = CalorimeterGeometry(z_front=z_fronts[0], **hcal_core, extra=hcal_spec)
        vessel = data["vacuum_vessel"]
        return cls(
            trackers=trackers,
            counters=counters,
            ecal=ecal,
            hcal=hcal,
            hcal_z_fronts=z_fronts,
            vacuum_vessel=(float(vessel["z_start"]), float(vessel["z_end"])),
            record=record,
        )

    def tracker_by_id(self, detector_id: int) -> TrackerStation:
        for station in self.trackers.values():
            if station.id == detector_id:
                return station
        raise KeyError(f"no tracker with id {detector_id}")

    def counter_names(self) -> list[str]:
        """Counter names ordered by their id."""
        return [c.name for c in sorted(self.counters.values(), key=lambda c: c.id)]


_CALO_KEYS = ("x_centre", "y_centre", "n_x", "n_y", "centre_index", "cell_size")
