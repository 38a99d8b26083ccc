"""Tracker alignment: per-station offsets (dx, dy) in mm, the ``alignment`` condition.

A station displaced by ``(dx, dy)`` from its nominal position measures
``x = x_nominal(strip) + dx``. The condition file (kind ``alignment``, YAML or
JSON with the conditions header) holds ``data: {stations: {MM1: {dx_mm: 0.0,
dy_mm: 0.0}, ...}}``; a missing station means zero offsets.

Derivation from tracks (:func:`derive_alignment`), using tracks with both
coordinates measured in every station, fitted without outlier removal (a
misaligned plane must keep its measurements): the mean residuals
``R = <measured - fitted>`` of the non-reference stations and planes (over
the tracks whose residuals lie within ``residual_window_sigma`` robust
standard deviations of the median) vanish at the right offsets, and so does
``(<q/p> - q/p_beam) G_max`` (below). Each iteration fits all tracks with the
current offsets, measures ``R`` and its response ``dR/d(offset)`` (refits
with each free offset moved by ``derivative_step_mm``; the fitted track
follows part of any offset, so the response is not the identity), and moves
the offsets by the least-squares solution of ``dR/d(offset) step = -R`` (a
Gauss-Newton step on the residual means); it stops when the update is below
``tolerance_mm``. The overall translation
and shear (x and y) of all stations and, in x, the offset pattern that mimics
a change of momentum, ``offset_i ~ G_i`` (the bending coefficient), change no
track chi2: they are fixed by holding ``reference_stations`` (at least two,
default MM1 and MM2) at their input offsets and by requiring the mean fitted
``q/p`` to be the beam's, ``-(1 + s^2) / p_beam`` (``s`` the relative beam
momentum spread; ``1 + s^2`` makes it the mean of ``1/p``). With a beam spread
``s`` this fixes the x offsets downstream to ``~ G s / (p sqrt(N))``, about
1.2 mm / sqrt(N) at GEM4 for N tracks. This is the
"local" residual-mean method; a global simultaneous fit (Millepede, Blobel,
NIM A 566 (2006) 5) would converge in one step.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from recon.tracking.field import field_z_range_mm
from recon.tracking.propagation import bending_coefficients
from recon.tracking.space_points import StationLayout, build_space_points, cluster_positions_mm
from recon.tracking.strip_clustering import Clusters
from recon.tracking.track_fit import find_and_fit_tracks

__all__ = [
    "Alignment",
    "AlignmentConfig",
    "alignment_from_condition",
    "derive_alignment",
    "load_alignment",
    "write_alignment_condition",
]


@dataclass(frozen=True)
class Alignment:
    """Offsets ``offsets_mm[detector_id] = (dx, dy)`` of the stations ``names``."""

    names: tuple[str, ...]
    offsets_mm: np.ndarray

    @classmethod
    def nominal(cls, geometry) -> Alignment:
        stations = sorted(geometry.trackers.values(), key=lambda s: s.id)
        return cls(names=tuple(s.name for s in stations), offsets_mm=np.zeros((len(stations), 2)))

    def as_condition_data(self) -> dict[str, Any]:
        return {
            "stations": {
                name: {"dx_mm": round(float(dx), 4), "dy_mm": round(float(dy), 4)}
                for name, (dx, dy) in zip(self.names, self.offsets_mm, strict=True)
            }
        }


def alignment_from_condition(data: Mapping[str, Any], geometry) -> Alignment:
    """Typed alignment from the ``data`` of an ``alignment`` condition."""
    nominal = Alignment.nominal(geometry)
    offsets = nominal.offsets_mm.copy()
    stations = data.get("stations") or {}
    unknown = set(stations) - set(nominal.names)
    if unknown:
        raise ValueError(f"alignment for unknown station(s) {sorted(unknown)}")
    for name, spec in stations.items():
        det = nominal.names.index(name)
        offsets[det] = float(spec.get("dx_mm", 0.0)), float(spec.get("dy_mm", 0.0))
    return Alignment(names=nominal.names, offsets_mm=offsets)


def load_alignment(db, setup: str, run: int, geometry) -> Alignment:
    """The alignment valid for ``run`` from a :class:`~recon.conditions.ConditionsDB`."""
    data, _ = db.data("alignment", setup, run)
    return alignment_from_condition(data, geometry)


def write_alignment_condition(
    path: str | Path,
    alignment: Alignment,
    *,
    setup: str,
    version: str,
    valid_runs: Sequence[int],
    description: str,
) -> Path:
    """Write an ``alignment`` condition file (YAML, or JSON if ``path`` ends in .json)."""
    document = {
        "kind": "alignment",
        "setup": setup,
        "version": version,
        "valid_runs": [int(valid_runs[0]), int(valid_runs[1])],
        "description": description,
        "data": alignment.as_condition_data(),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        path.write_text(json.dumps(document, indent=1) + "\n")
    else:
        path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@dataclass(frozen=True)
class AlignmentConfig:
    """Beam and reference frame of the alignment derivation."""

    beam_momentum_GeV: float
    beam_momentum_spread: float
    reference_stations: tuple[str, ...] = ("MM1", "MM2")
    max_iterations: int = 6
    tolerance_mm: float = 1e-3
    derivative_step_mm: float = 0.1
    residual_window_sigma: float = 3.0
    seed_extra_error_mm: float = 1.0  # track finding tolerant of the initial misalignment


def _free_coordinates(alignment: Alignment, config: AlignmentConfig) -> list[tuple[int, int]]:
    fixed = [name for name in alignment.names if name in config.reference_stations]
    if len(fixed) < 2:
        raise ValueError("at least two reference stations are needed to fix translation and shear")
    return [
        (det, plane)
        for det, name in enumerate(alignment.names)
        if name not in config.reference_stations
        for plane in (0, 1)
    ]


class _ResidualMeans:
    """Mean residual of every free (station, plane) as a function of the offsets, followed by
    the mean fitted ``q/p`` minus the beam's, scaled to mm by the largest bending coefficient."""

    def __init__(self, clusters, geometry, field, tracking, config, free):
        self.clusters, self.geometry, self.field = clusters, geometry, field
        self.tracking, self.config, self.free = tracking, config, free
        self.qop_beam = -(1.0 + config.beam_momentum_spread**2) / config.beam_momentum_GeV
        # no outlier removal: a misaligned plane must keep its measurements
        self.fit_config = replace(
            tracking.fit,
            chi2ndf_max=np.inf,
            max_dropped_measurements=0,
            seed_extra_error_mm=config.seed_extra_error_mm,
        )
        self.selection: list[np.ndarray] | None = None
        self.n_tracks = 0
        self.qop_to_mm = 1.0

    def residuals(self, offsets: np.ndarray) -> list[np.ndarray]:
        layout = StationLayout.from_geometry(
            self.geometry,
            offsets_mm=offsets,
            resolution_mm=self.tracking.resolution_mm,
            x_over_X0=self.tracking.x_over_X0,
        )
        pos, err = cluster_positions_mm(self.clusters, layout)
        points = build_space_points(
            self.clusters, pos, err, n_stations=layout.n_stations, config=self.tracking.space_points
        )
        fit = find_and_fit_tracks(
            points, layout, self.field, self.fit_config, z_ecal_mm=self.geometry.ecal.z_front
        )
        z_lo, z_hi = field_z_range_mm(self.field)
        g, _ = bending_coefficients(
            self.field, fit.z_ref_mm, layout.z_mm, (z_lo, z_hi), step_mm=self.fit_config.rk4_step_mm
        )
        self.qop_to_mm = float(np.abs(g).max())
        complete = np.isfinite(fit.meas_x).all(axis=1) & np.isfinite(fit.meas_y).all(axis=1)
        good = fit.found & complete
        self.n_tracks = int(good.sum())
        pairs = ((fit.meas_x, fit.pred_x), (fit.meas_y, fit.pred_y))
        out = [
            np.where(good, pairs[plane][0][:, det] - pairs[plane][1][:, det], np.nan)
            for det, plane in self.free
        ]
        out.append(np.where(good, fit.state_ref[:, 4], np.nan))
        return out

    def __call__(self, offsets: np.ndarray) -> np.ndarray:
        """Means over a fixed set of tracks: the set chosen at the first call
        (values within ``residual_window_sigma`` robust sigmas of the median)."""
        values = self.residuals(offsets)
        if self.selection is None:
            self.selection = [_core(v, self.config.residual_window_sigma) for v in values]
        means = np.array(
            [np.nanmean(v[sel]) for v, sel in zip(values, self.selection, strict=True)]
        )
        means[-1] = (means[-1] - self.qop_beam) * self.qop_to_mm
        return means


def _core(values: np.ndarray, window_sigma: float) -> np.ndarray:
    finite = np.isfinite(values)
    if finite.sum() < 10:
        raise ValueError("fewer than 10 tracks measure a free station")
    median = np.median(values[finite])
    sigma = 1.4826 * np.median(np.abs(values[finite] - median))
    return finite & (np.abs(values - median) <= window_sigma * max(sigma, 1e-6))


def derive_alignment(
    clusters: Clusters,
    *,
    geometry,
    field,
    tracking,
    config: AlignmentConfig,
    initial: Alignment | None = None,
) -> tuple[Alignment, dict[str, Any]]:
    """Offsets of the non-reference stations from the tracks of a run (see module docstring).

    ``clusters`` come from :func:`~recon.tracking.strip_clustering.cluster_strips`
    (they do not depend on the alignment); ``tracking`` is a
    :class:`~recon.tracking.track_stage.TrackingConfig`. Returns the alignment
    and a report (iterations, last update, tracks used, final mean residuals).
    """
    alignment = initial or Alignment.nominal(geometry)
    free = _free_coordinates(alignment, config)
    means = _ResidualMeans(clusters, geometry, field, tracking, config, free)
    offsets = alignment.offsets_mm.copy()
    eps = config.derivative_step_mm
    update, iteration = np.inf, 0
    for iteration in range(1, config.max_iterations + 1):  # noqa: B007 - reported below
        base = means(offsets)
        jacobian = np.empty((len(free) + 1, len(free)))
        for j, (det, plane) in enumerate(free):
            shifted = offsets.copy()
            shifted[det, plane] += eps
            jacobian[:, j] = (means(shifted) - base) / eps
        step = -np.linalg.lstsq(jacobian, base, rcond=None)[0]
        for (det, plane), delta in zip(free, step, strict=True):
            offsets[det, plane] += delta
        update = float(np.abs(step).max())
        means.selection = None  # re-select the core around the new residuals
        if update < config.tolerance_mm:
            break
    final = means(offsets)
    report = {
        "iterations": iteration,
        "last_update_mm": update,
        "tracks_used": means.n_tracks,
        "mean_residuals_mm": {
            f"{alignment.names[d]}.{'xy'[p]}": float(m)
            for (d, p), m in zip(free, final, strict=False)
        },
        "mean_qop_minus_beam_per_GeV": float(final[-1] / means.qop_to_mm),
    }
    return Alignment(names=alignment.names, offsets_mm=offsets), report
