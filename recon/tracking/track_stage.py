"""The tracking stage: APV strips -> clusters -> space points -> fitted track per event.

Pure core :func:`track_events` (flat arrays in, a dict of per-event numpy
columns out) and the awkward adapter :func:`track_digits` for decoded
digits. Output columns (NaN where missing):

========================  =====================================================
``n_track_candidates``    tracks found without shared clusters (int32)
``p_track_GeV``           momentum from the full fit, ``1 / |q/p|``
``p_track_err_GeV``       its error, ``sigma(q/p) / (q/p)^2``
``track_charge``          sign of q/p (-1 for the beam electrons)
``track_chi2ndf``         chi2 / ndf of the full fit
``track_ndf``             degrees of freedom (int32)
``p_deflection_GeV``      cross-check from the upstream/downstream segments
``theta_in_mrad``         angle to the beam (z) axis upstream of the magnets
``theta_out_mrad``        angle to the z axis downstream (after the bend)
``x_ecal_mm``/``y_ecal_mm``  fitted track at the ECAL front face
``track_ok``              found, converged, chi2/ndf <= cut, p in range
========================  =====================================================

The detector-specific numbers (thresholds, APV time calibration, intrinsic
resolutions, material) come from a versioned parameter file,
the ``tracking_parameters`` condition (``conditions/<setup>/tracking_parameters/``),
read by :func:`load_tracking_config`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from recon.tracking.alignment import Alignment
from recon.tracking.space_points import (
    SpacePointConfig,
    StationLayout,
    build_space_points,
    cluster_positions_mm,
)
from recon.tracking.strip_clustering import ClusteringConfig, cluster_strips
from recon.tracking.strip_pedestals import StripPedestals
from recon.tracking.track_fit import FitConfig, TrackFitResult, find_and_fit_tracks

__all__ = [
    "KIND",
    "TRACK_COLUMNS",
    "TrackingConfig",
    "load_tracking_config",
    "read_tracking_config",
    "track_columns",
    "track_digits",
    "track_events",
]

KIND = "tracking_parameters"

TRACK_COLUMNS = (
    "n_track_candidates",
    "p_track_GeV",
    "p_track_err_GeV",
    "track_charge",
    "track_chi2ndf",
    "track_ndf",
    "p_deflection_GeV",
    "theta_in_mrad",
    "theta_out_mrad",
    "x_ecal_mm",
    "y_ecal_mm",
    "track_ok",
)


@dataclass(frozen=True)
class TrackingConfig:
    """Everything the tracking stage needs besides conditions (no I/O)."""

    clustering: ClusteringConfig
    space_points: SpacePointConfig
    fit: FitConfig
    resolution_mm: Mapping[str, float]
    x_over_X0: Mapping[str, float]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> TrackingConfig:
        return cls(
            clustering=ClusteringConfig.from_mapping(data["clustering"]),
            space_points=SpacePointConfig.from_mapping(data["space_points"]),
            fit=FitConfig.from_mapping(data["fit"]),
            resolution_mm={k: float(v) for k, v in data["resolution_mm"].items()},
            x_over_X0={k: float(v) for k, v in data["x_over_X0"].items()},
        )


def load_tracking_config(db, setup: str, run: int) -> TrackingConfig:
    """Tracking configuration from the ``tracking_parameters`` condition valid for the run."""
    data, _ = db.data(KIND, setup, run)
    return TrackingConfig.from_mapping(data)


def read_tracking_config(path: str | Path) -> TrackingConfig:
    """Tracking configuration from a ``tracking_parameters`` file outside a conditions root."""
    document = yaml.safe_load(Path(path).read_text())
    if document.get("kind") != KIND:
        raise ValueError(f"{path}: not a {KIND} file")
    return TrackingConfig.from_mapping(document["data"])


def track_columns(fit: TrackFitResult, fit_config: FitConfig) -> dict[str, np.ndarray]:
    """The per-event output columns from a fit result."""
    qop = fit.state_ref[:, 4]
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 1.0 / np.abs(qop)
        p_err = np.sqrt(fit.cov_ref[:, 4, 4]) / qop**2
        chi2ndf = np.where(fit.ndf > 0, fit.chi2 / fit.ndf, np.nan)
    p_err = np.where(fit.found, p_err, np.nan)
    theta_in = np.arctan(np.hypot(fit.state_ref[:, 2], fit.state_ref[:, 3])) * 1e3
    theta_out = np.arctan(np.hypot(fit.state_out[:, 2], fit.state_out[:, 3])) * 1e3
    ok = (
        fit.found
        & fit.converged
        & (chi2ndf <= fit_config.chi2ndf_max)
        & (p >= fit_config.p_min_GeV)
        & (p <= fit_config.p_max_GeV)
    )
    return {
        "n_track_candidates": fit.n_candidates.astype(np.int32),
        "p_track_GeV": p,
        "p_track_err_GeV": p_err,
        "track_charge": np.sign(qop),
        "track_chi2ndf": chi2ndf,
        "track_ndf": fit.ndf.astype(np.int32),
        "p_deflection_GeV": fit.p_deflection_GeV,
        "theta_in_mrad": theta_in,
        "theta_out_mrad": theta_out,
        "x_ecal_mm": fit.x_ecal_mm,
        "y_ecal_mm": fit.y_ecal_mm,
        "track_ok": ok,
    }


def track_events(
    event_offsets: np.ndarray,
    detector: np.ndarray,
    plane: np.ndarray,
    strip: np.ndarray,
    samples: np.ndarray,
    *,
    geometry,
    field,
    pedestals: StripPedestals,
    alignment: Alignment | None,
    config: TrackingConfig,
) -> dict[str, np.ndarray]:
    """Per-event track columns from the flat strip table (``samples`` (n, 3) raw ADC)."""
    clusters = cluster_strips(
        event_offsets,
        detector,
        plane,
        strip,
        samples,
        pedestals=pedestals,
        config=config.clustering,
    )
    layout = StationLayout.from_geometry(
        geometry,
        offsets_mm=None if alignment is None else alignment.offsets_mm,
        resolution_mm=config.resolution_mm,
        x_over_X0=config.x_over_X0,
    )
    pos, err = cluster_positions_mm(clusters, layout)
    points = build_space_points(
        clusters, pos, err, n_stations=layout.n_stations, config=config.space_points
    )
    fit = find_and_fit_tracks(points, layout, field, config.fit, z_ecal_mm=geometry.ecal.z_front)
    return track_columns(fit, config.fit)


def track_digits(digits, **kwargs) -> dict[str, np.ndarray]:
    """:func:`track_events` on decoded digits (an awkward array with a ``strips`` field)."""
    import awkward as ak

    strips = digits.strips
    counts = np.asarray(ak.num(strips, axis=1), dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(counts)))
    flat = ak.flatten(strips, axis=1)
    samples = np.asarray(ak.to_numpy(flat.samples)).reshape(-1, 3)
    return track_events(
        offsets,
        np.asarray(flat.detector),
        np.asarray(flat.plane),
        np.asarray(flat.strip),
        samples,
        **kwargs,
    )
