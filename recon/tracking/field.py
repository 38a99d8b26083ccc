"""Magnetic field models for track propagation: uniform dipoles and 3D grid maps.

Units: positions in mm, field in tesla.

Two models are supported, selected by the ``model`` key of the ``field``
condition:

``uniform_dipoles``
    A list of slabs ``z_start <= z < z_end`` with a uniform transverse field
    ``(B_x, B_y, 0)`` inside and no field outside (the invis2016 MBPL1/MBPL2
    description, spec section 2). Tracks are propagated through them with an
    exact helix (:mod:`recon.tracking.propagation`).

``grid_map``
    A regular 3D grid of field vectors, ``B_T[ix, iy, iz, k]`` at
    ``origin_mm + (ix, iy, iz) * spacing_mm``, interpolated trilinearly and
    zero outside the grid. The data of the condition either inlines
    ``origin_mm``, ``spacing_mm``, ``shape`` and the C-ordered flat list
    ``B_T``, or names an ``.npz`` ``file`` (next to the condition file) with
    arrays ``origin_mm (3,)``, ``spacing_mm (3,)`` and ``B_T (nx, ny, nz, 3)``.
    Tracks are propagated with a 4th-order Runge-Kutta integrator.

For the numba kernels a field is flattened into a *pack*, a tuple of plain
arrays (:func:`field_pack`) whose type selects the model at compile time,
evaluated by :func:`field_at`.

References: trilinear interpolation as in e.g. Press et al., *Numerical
Recipes*, 3rd ed., sect. 3.6; dipole description from the NA64 setup of
Banerjee et al., PRL 118 (2017) 011802.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np
from numba.extending import overload

__all__ = [
    "FieldMap",
    "UniformDipoles",
    "field_at",
    "field_from_condition",
    "field_pack",
    "field_values",
    "field_z_range_mm",
    "is_dipole_pack",
    "load_field",
    "read_field_map_npz",
    "write_field_map_npz",
]


@dataclass(frozen=True)
class UniformDipoles:
    """Non-overlapping slabs of uniform transverse field, sorted along z."""

    z_start_mm: np.ndarray
    z_end_mm: np.ndarray
    B_x_T: np.ndarray
    B_y_T: np.ndarray

    def __post_init__(self) -> None:
        z0, z1 = np.asarray(self.z_start_mm, float), np.asarray(self.z_end_mm, float)
        if np.any(z1 <= z0) or np.any(z0[1:] < z1[:-1]):
            raise ValueError("dipoles must have z_end > z_start and be sorted without overlap")

    @classmethod
    def from_condition(cls, data: Mapping[str, Any]) -> UniformDipoles:
        dipoles = sorted(data["dipoles"], key=lambda d: float(d["z_start"]))
        return cls(
            z_start_mm=np.array([float(d["z_start"]) for d in dipoles]),
            z_end_mm=np.array([float(d["z_end"]) for d in dipoles]),
            B_x_T=np.array([float(d.get("B_x", 0.0)) for d in dipoles]),
            B_y_T=np.array([float(d.get("B_y", 0.0)) for d in dipoles]),
        )


@dataclass(frozen=True)
class FieldMap:
    """Field vectors on a regular grid: ``B_T[ix, iy, iz] = B(origin + i * spacing)``."""

    origin_mm: np.ndarray
    spacing_mm: np.ndarray
    B_T: np.ndarray

    def __post_init__(self) -> None:
        if self.B_T.ndim != 4 or self.B_T.shape[3] != 3 or min(self.B_T.shape[:3]) < 2:
            raise ValueError("B_T must have shape (nx, ny, nz, 3) with at least 2 nodes per axis")
        if np.any(np.asarray(self.spacing_mm) <= 0):
            raise ValueError("grid spacing must be positive")

    @classmethod
    def sample(
        cls,
        field: UniformDipoles | FieldMap,
        x_range_mm: tuple[float, float],
        y_range_mm: tuple[float, float],
        z_range_mm: tuple[float, float],
        spacing_mm: tuple[float, float, float],
    ) -> FieldMap:
        """Sample any field model on a grid (to build or test a map)."""
        axes = [
            np.arange(lo, hi + 0.5 * step, step)
            for (lo, hi), step in zip((x_range_mm, y_range_mm, z_range_mm), spacing_mm, strict=True)
        ]
        gx, gy, gz = np.meshgrid(*axes, indexing="ij")
        values = field_values(field, gx.ravel(), gy.ravel(), gz.ravel())
        return cls(
            origin_mm=np.array([a[0] for a in axes]),
            spacing_mm=np.asarray(spacing_mm, dtype=float),
            B_T=values.reshape(*gx.shape, 3),
        )

    @classmethod
    def from_condition(cls, data: Mapping[str, Any], base_dir: Path | None = None) -> FieldMap:
        if "file" in data:
            path = Path(data["file"])
            return read_field_map_npz(path if path.is_absolute() else (base_dir or Path()) / path)
        shape = tuple(int(n) for n in data["shape"])
        return cls(
            origin_mm=np.asarray(data["origin_mm"], dtype=float),
            spacing_mm=np.asarray(data["spacing_mm"], dtype=float),
            B_T=np.asarray(data["B_T"], dtype=float).reshape(*shape, 3),
        )


def field_values(field: UniformDipoles | FieldMap, x_mm, y_mm, z_mm) -> np.ndarray:
    """Field vectors (n, 3) in T at points (mm) for any field model."""
    x, y, z = (np.ascontiguousarray(np.ravel(v), dtype=np.float64) for v in (x_mm, y_mm, z_mm))
    return _field_at_points(x, y, z, field_pack(field))


def write_field_map_npz(path: str | Path, field_map: FieldMap) -> None:
    """Store a map as ``.npz`` (arrays ``origin_mm``, ``spacing_mm``, ``B_T``)."""
    np.savez_compressed(
        path, origin_mm=field_map.origin_mm, spacing_mm=field_map.spacing_mm, B_T=field_map.B_T
    )


def read_field_map_npz(path: str | Path) -> FieldMap:
    with np.load(path) as f:
        return FieldMap(
            origin_mm=np.asarray(f["origin_mm"], float),
            spacing_mm=np.asarray(f["spacing_mm"], float),
            B_T=np.asarray(f["B_T"], float),
        )


def field_from_condition(
    data: Mapping[str, Any], base_dir: Path | None = None
) -> UniformDipoles | FieldMap:
    """Typed field model from the ``data`` of a ``field`` condition."""
    model = data.get("model")
    if model == "uniform_dipoles":
        return UniformDipoles.from_condition(data)
    if model == "grid_map":
        return FieldMap.from_condition(data, base_dir)
    raise ValueError(f"unknown field model {model!r}")


def load_field(db, setup: str, run: int) -> UniformDipoles | FieldMap:
    """The field model valid for ``run`` from a :class:`~recon.conditions.ConditionsDB`."""
    data, record = db.data("field", setup, run)
    return field_from_condition(data, record.path.parent)


def field_pack(field: UniformDipoles | FieldMap) -> tuple:
    """The field as the tuple the numba kernels take; its type selects the model.

    Uniform dipoles: ``(dipoles,)`` with rows ``[z_start, z_end, B_x, B_y]``;
    grid map: ``(frame, B_T)`` with ``frame = [origin xyz, spacing xyz]``.
    Kernels are compiled separately for the two (:func:`field_at`).
    """
    if isinstance(field, UniformDipoles):
        dipoles = np.stack(
            [field.z_start_mm, field.z_end_mm, field.B_x_T, field.B_y_T], axis=1
        ).astype(np.float64)
        return (dipoles,)
    frame = np.concatenate([field.origin_mm, field.spacing_mm]).astype(np.float64)
    return (frame, np.ascontiguousarray(field.B_T, dtype=float))


def is_dipole_pack(pack) -> bool:
    """True for a uniform-dipole pack (Python and numba)."""
    return len(pack) == 1


@overload(is_dipole_pack, jit_options={"cache": True, "nogil": True})
def _is_dipole_pack_overload(pack):
    flag = len(pack) == 1
    return lambda pack: flag


def field_z_range_mm(field: UniformDipoles | FieldMap) -> tuple[float, float]:
    """The z interval outside which the field vanishes."""
    if isinstance(field, UniformDipoles):
        return float(field.z_start_mm[0]), float(field.z_end_mm[-1])
    nz = field.B_T.shape[2]
    z0 = float(field.origin_mm[2])
    return z0, z0 + (nz - 1) * float(field.spacing_mm[2])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _trilinear_component(grid, ix, iy, iz, ux, uy, uz, k):
    c00 = grid[ix, iy, iz, k] * (1 - ux) + grid[ix + 1, iy, iz, k] * ux
    c10 = grid[ix, iy + 1, iz, k] * (1 - ux) + grid[ix + 1, iy + 1, iz, k] * ux
    c01 = grid[ix, iy, iz + 1, k] * (1 - ux) + grid[ix + 1, iy, iz + 1, k] * ux
    c11 = grid[ix, iy + 1, iz + 1, k] * (1 - ux) + grid[ix + 1, iy + 1, iz + 1, k] * ux
    return (c00 * (1 - uy) + c10 * uy) * (1 - uz) + (c01 * (1 - uy) + c11 * uy) * uz


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _trilinear(x, y, z, frame, grid):
    fx = (x - frame[0]) / frame[3]
    fy = (y - frame[1]) / frame[4]
    fz = (z - frame[2]) / frame[5]
    nx, ny, nz = grid.shape[0], grid.shape[1], grid.shape[2]
    if not (0.0 <= fx <= nx - 1 and 0.0 <= fy <= ny - 1 and 0.0 <= fz <= nz - 1):
        return 0.0, 0.0, 0.0
    ix = min(int(fx), nx - 2)
    iy = min(int(fy), ny - 2)
    iz = min(int(fz), nz - 2)
    ux, uy, uz = fx - ix, fy - iy, fz - iz
    return (
        _trilinear_component(grid, ix, iy, iz, ux, uy, uz, 0),
        _trilinear_component(grid, ix, iy, iz, ux, uy, uz, 1),
        _trilinear_component(grid, ix, iy, iz, ux, uy, uz, 2),
    )


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _dipole_field(z, dipoles):
    for j in range(dipoles.shape[0]):
        if dipoles[j, 0] <= z < dipoles[j, 1]:
            return dipoles[j, 2], dipoles[j, 3], 0.0
    return 0.0, 0.0, 0.0


def field_at(x, y, z, pack):
    """Field (B_x, B_y, B_z) in T at a point (mm) for a field pack (numba only)."""
    raise NotImplementedError("field_at is called from numba kernels")


@overload(field_at, jit_options={"cache": True, "nogil": True, "error_model": "numpy"})
def _field_at_overload(x, y, z, pack):
    if len(pack) == 1:
        return lambda x, y, z, pack: _dipole_field(z, pack[0])
    return lambda x, y, z, pack: _trilinear(x, y, z, pack[0], pack[1])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _field_at_points(x, y, z, pack):
    out = np.empty((x.shape[0], 3))
    for i in range(x.shape[0]):
        out[i, 0], out[i, 1], out[i, 2] = field_at(x[i], y[i], z[i], pack)
    return out
