"""Tracking for the invis2016 spectrometer: APV strips to momentum (issue 5).

Pipeline (each step a pure function over flat arrays, numba inside):
strip pedestals (:mod:`.strip_pedestals`) -> clusters (:mod:`.strip_clustering`)
-> space points (:mod:`.space_points`) -> track finding and momentum fit
(:mod:`.track_fit`, with :mod:`.field` and :mod:`.propagation`) -> per-event
columns (:mod:`.track_stage`). Alignment: :mod:`.alignment`. Units: mm, ns,
GeV, T, ADC counts. Documentation: ``docs/tracking.md``.
"""

from recon.tracking.alignment import (
    Alignment,
    AlignmentConfig,
    derive_alignment,
    load_alignment,
    write_alignment_condition,
)
from recon.tracking.field import FieldMap, UniformDipoles, load_field
from recon.tracking.propagation import propagate
from recon.tracking.space_points import SpacePoints, StationLayout, build_space_points
from recon.tracking.strip_clustering import (
    ApvTimeRelation,
    ClusteringConfig,
    Clusters,
    calibrate_time_relation,
    cluster_strips,
)
from recon.tracking.strip_pedestals import (
    StripPedestals,
    derive_strip_pedestals,
    load_strip_pedestals,
    write_strip_pedestals_condition,
)
from recon.tracking.track_fit import FitConfig, TrackFitResult, find_and_fit_tracks
from recon.tracking.track_stage import (
    TRACK_COLUMNS,
    TrackingConfig,
    load_tracking_config,
    track_digits,
    track_events,
)

__all__ = [
    "TRACK_COLUMNS",
    "Alignment",
    "AlignmentConfig",
    "ApvTimeRelation",
    "ClusteringConfig",
    "Clusters",
    "FieldMap",
    "FitConfig",
    "SpacePoints",
    "StationLayout",
    "StripPedestals",
    "TrackFitResult",
    "TrackingConfig",
    "UniformDipoles",
    "build_space_points",
    "calibrate_time_relation",
    "cluster_strips",
    "derive_alignment",
    "derive_strip_pedestals",
    "find_and_fit_tracks",
    "load_alignment",
    "load_field",
    "load_strip_pedestals",
    "load_tracking_config",
    "propagate",
    "track_digits",
    "track_events",
    "write_alignment_condition",
    "write_strip_pedestals_condition",
]
