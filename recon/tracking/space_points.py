"""Cluster positions in the global frame and space points per tracking station.

Units: mm, ns. A cluster centroid ``c`` (strip units) of station ``d``, plane
``a`` (0 = X, 1 = Y) sits at

    u = centre[d, a] + offset[d, a] + (c + 0.5) * pitch[d] - size[d] / 2

(spec section 1; ``offset`` from the ``alignment`` condition). Its error is
``sqrt((sigma_c pitch)^2 + sigma_0^2)`` with the intrinsic resolution
``sigma_0`` of the technology (tracking parameters), raised to
``pitch / sqrt(12)`` for single-strip clusters.

Space points: per station, the in-time X and Y clusters (at most
``max_clusters_per_plane`` of each, largest charge first) are paired in all
combinations compatible in time (``|t_x - t_y| <= max_dt_xy_ns``). X and Y
strips collect the charge of the same avalanche, so a pair is also required
to be compatible in charge (``|Q_x - Q_y| / (Q_x + Q_y) <=
max_charge_asymmetry``), which removes most ghost combinations of two tracks,
unless one of its clusters has no charge-compatible partner at all (merged
clusters of two close tracks, a partner lost to inefficiency): such a
cluster is paired with every time-compatible partner and also gives a
one-coordinate point (the other coordinate NaN), so the station is not
lost. The charge-correlation pairing is the one used for the COMPASS GEMs
(Ketzer et al., NIM A 535 (2004) 314).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from recon.tracking.strip_clustering import Clusters

__all__ = [
    "SpacePointConfig",
    "SpacePoints",
    "StationLayout",
    "build_space_points",
    "cluster_positions_mm",
]


@dataclass(frozen=True)
class StationLayout:
    """Per-station arrays indexed by detector id (mm; plane axis 0 = X, 1 = Y)."""

    names: tuple[str, ...]
    z_mm: np.ndarray
    centre_mm: np.ndarray  # (n_det, 2) nominal centre + alignment offset
    pitch_mm: np.ndarray
    size_mm: np.ndarray
    resolution_mm: np.ndarray  # intrinsic resolution floor
    x_over_X0: np.ndarray

    @classmethod
    def from_geometry(
        cls,
        geometry,
        *,
        offsets_mm: np.ndarray | None,
        resolution_mm: Mapping[str, float],
        x_over_X0: Mapping[str, float],
    ) -> StationLayout:
        stations = sorted(geometry.trackers.values(), key=lambda s: s.id)
        if [s.id for s in stations] != list(range(len(stations))):
            raise ValueError("tracker ids must be 0..n-1")
        centre = np.array([[s.x, s.y] for s in stations], dtype=float)
        if offsets_mm is not None:
            centre = centre + np.asarray(offsets_mm, dtype=float)
        return cls(
            names=tuple(s.name for s in stations),
            z_mm=np.array([s.z for s in stations], dtype=float),
            centre_mm=centre,
            pitch_mm=np.array([s.pitch for s in stations], dtype=float),
            size_mm=np.array([s.size for s in stations], dtype=float),
            resolution_mm=np.array([resolution_mm[s.technology] for s in stations], dtype=float),
            x_over_X0=np.array([x_over_X0[s.technology] for s in stations], dtype=float),
        )

    @property
    def n_stations(self) -> int:
        return self.z_mm.size


@dataclass(frozen=True)
class SpacePointConfig:
    max_clusters_per_plane: int
    max_dt_xy_ns: float
    max_charge_asymmetry: float
    use_out_of_time: bool = False

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SpacePointConfig:
        return cls(
            max_clusters_per_plane=int(data["max_clusters_per_plane"]),
            max_dt_xy_ns=float(data["max_dt_xy_ns"]),
            max_charge_asymmetry=float(data["max_charge_asymmetry"]),
            use_out_of_time=bool(data.get("use_out_of_time", False)),
        )


@dataclass(frozen=True)
class SpacePoints:
    """Points per event (``offsets``), station-major within an event.

    ``cluster_x`` / ``cluster_y`` index the cluster arrays (-1: coordinate not
    measured, then ``x_mm`` / ``y_mm`` is NaN).
    """

    offsets: np.ndarray
    station: np.ndarray
    x_mm: np.ndarray
    y_mm: np.ndarray
    x_err_mm: np.ndarray
    y_err_mm: np.ndarray
    t_ns: np.ndarray
    cluster_x: np.ndarray
    cluster_y: np.ndarray

    def __len__(self) -> int:
        return self.station.shape[0]


def cluster_positions_mm(
    clusters: Clusters, layout: StationLayout
) -> tuple[np.ndarray, np.ndarray]:
    """Global position (x for X planes, y for Y planes) and its error, in mm."""
    det = clusters.detector.astype(np.int64)
    plane = clusters.plane.astype(np.int64)
    pitch = layout.pitch_mm[det]
    pos = (
        layout.centre_mm[det, plane]
        + (clusters.position_strip + 0.5) * pitch
        - 0.5 * layout.size_mm[det]
    )
    floor = np.where(
        clusters.size == 1,
        np.maximum(layout.resolution_mm[det], pitch / np.sqrt(12.0)),
        layout.resolution_mm[det],
    )
    err = np.hypot(clusters.position_err_strip * pitch, floor)
    return pos, err


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _top_by_charge(first, last, in_time, charge, use_oot, k_max, buf):
    """Indices of the (at most k_max) largest-charge usable clusters in [first, last)."""
    n = 0
    for i in range(first, last):
        if use_oot or in_time[i]:
            buf[n] = i
            n += 1
    for a in range(min(n, k_max)):  # partial selection sort, descending charge
        best = a
        for b in range(a + 1, n):
            if charge[buf[b]] > charge[buf[best]]:
                best = b
        buf[a], buf[best] = buf[best], buf[a]
    return min(n, k_max)


NO_CLUSTER = np.int64(-1)  # typed constant: no literal-value specialisation in numba


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _write_point(
    write, k, st, x, y, ex, ey, t, cx, cy, o_st, o_x, o_y, o_ex, o_ey, o_t, o_cx, o_cy
):
    if write:
        o_st[k], o_x[k], o_y[k], o_ex[k], o_ey[k] = st, x, y, ex, ey
        o_t[k], o_cx[k], o_cy[k] = t, cx, cy


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _points_event(
    lo,
    hi,
    det,
    plane,
    pos,
    err,
    charge,
    t,
    in_time,
    n_st,
    k_max,
    max_dt,
    max_asym,
    use_oot,
    bx,
    by,
    px,
    py,
    write,
    at,
    o_st,
    o_x,
    o_y,
    o_ex,
    o_ey,
    o_t,
    o_cx,
    o_cy,
):
    """Points of one event; ``px[a]`` / ``py[b]``: cluster has a charge-compatible partner."""
    n_out = 0
    i = lo
    for st in range(n_st):
        x_first = i
        while i < hi and det[i] == st and plane[i] == 0:
            i += 1
        y_first = i
        while i < hi and det[i] == st and plane[i] == 1:
            i += 1
        nx = _top_by_charge(x_first, y_first, in_time, charge, use_oot, k_max, bx)
        ny = _top_by_charge(y_first, i, in_time, charge, use_oot, k_max, by)
        px[:nx] = False
        py[:ny] = False
        for a in range(nx):
            for b in range(ny):
                ix, iy = bx[a], by[b]
                asym = abs(charge[ix] - charge[iy]) / (charge[ix] + charge[iy])
                if not abs(t[ix] - t[iy]) > max_dt and asym <= max_asym:  # NaN time passes
                    px[a] = True
                    py[b] = True
        for a in range(nx):
            for b in range(ny):
                ix, iy = bx[a], by[b]
                if abs(t[ix] - t[iy]) > max_dt:
                    continue
                asym = abs(charge[ix] - charge[iy]) / (charge[ix] + charge[iy])
                if asym <= max_asym or not (px[a] and py[b]):
                    _write_point(
                        write,
                        at + n_out,
                        st,
                        pos[ix],
                        pos[iy],
                        err[ix],
                        err[iy],
                        0.5 * (t[ix] + t[iy]),
                        ix,
                        iy,
                        o_st,
                        o_x,
                        o_y,
                        o_ex,
                        o_ey,
                        o_t,
                        o_cx,
                        o_cy,
                    )
                    n_out += 1
        for a in range(nx):
            if not px[a]:
                ix = bx[a]
                _write_point(
                    write,
                    at + n_out,
                    st,
                    pos[ix],
                    np.nan,
                    err[ix],
                    np.nan,
                    t[ix],
                    ix,
                    NO_CLUSTER,
                    o_st,
                    o_x,
                    o_y,
                    o_ex,
                    o_ey,
                    o_t,
                    o_cx,
                    o_cy,
                )
                n_out += 1
        for b in range(ny):
            if not py[b]:
                iy = by[b]
                _write_point(
                    write,
                    at + n_out,
                    st,
                    np.nan,
                    pos[iy],
                    np.nan,
                    err[iy],
                    t[iy],
                    NO_CLUSTER,
                    iy,
                    o_st,
                    o_x,
                    o_y,
                    o_ex,
                    o_ey,
                    o_t,
                    o_cx,
                    o_cy,
                )
                n_out += 1
    return n_out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _points_all(
    offsets, det, plane, pos, err, charge, t, in_time, n_st, k_max, max_dt, max_asym, use_oot
):
    n_ev = offsets.shape[0] - 1
    width = 1
    for e in range(n_ev):
        width = max(width, offsets[e + 1] - offsets[e])
    bx = np.empty(width, dtype=np.int64)
    by = np.empty(width, dtype=np.int64)
    px = np.empty(width, dtype=np.bool_)
    py = np.empty(width, dtype=np.bool_)
    di, df = np.empty(0, dtype=np.int64), np.empty(0)
    counts = np.zeros(n_ev + 1, dtype=np.int64)
    count_only = n_ev < 0  # a run-time False: one compiled specialisation for both passes
    for e in range(n_ev):  # count pass
        counts[e + 1] = _points_event(
            offsets[e],
            offsets[e + 1],
            det,
            plane,
            pos,
            err,
            charge,
            t,
            in_time,
            n_st,
            k_max,
            max_dt,
            max_asym,
            use_oot,
            bx,
            by,
            px,
            py,
            count_only,
            np.int64(0),
            di,
            df,
            df,
            df,
            df,
            df,
            di,
            di,
        )
    out = np.cumsum(counts)
    n = out[-1]
    o_st = np.empty(n, dtype=np.int64)
    o_cx = np.empty(n, dtype=np.int64)
    o_cy = np.empty(n, dtype=np.int64)
    o_x, o_y, o_ex, o_ey, o_t = np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    for e in range(n_ev):  # fill pass
        _points_event(
            offsets[e],
            offsets[e + 1],
            det,
            plane,
            pos,
            err,
            charge,
            t,
            in_time,
            n_st,
            k_max,
            max_dt,
            max_asym,
            use_oot,
            bx,
            by,
            px,
            py,
            not count_only,
            out[e],
            o_st,
            o_x,
            o_y,
            o_ex,
            o_ey,
            o_t,
            o_cx,
            o_cy,
        )
    return out, o_st, o_x, o_y, o_ex, o_ey, o_t, o_cx, o_cy


def build_space_points(
    clusters: Clusters,
    position_mm: np.ndarray,
    position_err_mm: np.ndarray,
    *,
    n_stations: int,
    config: SpacePointConfig,
) -> SpacePoints:
    """Space points of all events from clusters ordered by (detector, plane) per event."""
    result = _points_all(
        np.asarray(clusters.offsets, dtype=np.int64),
        clusters.detector.astype(np.int64),
        clusters.plane.astype(np.int64),
        np.asarray(position_mm, dtype=np.float64),
        np.asarray(position_err_mm, dtype=np.float64),
        np.asarray(clusters.charge_adc, dtype=np.float64),
        np.asarray(clusters.t_ns, dtype=np.float64),
        np.asarray(clusters.in_time, dtype=np.bool_),
        int(n_stations),
        int(config.max_clusters_per_plane),
        float(config.max_dt_xy_ns),
        float(config.max_charge_asymmetry),
        bool(config.use_out_of_time),
    )
    return SpacePoints(*result)
