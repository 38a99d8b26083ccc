"""Alignment: condition round trip, and offsets of up to 1 mm recovered from tracks."""

from __future__ import annotations

import numpy as np
from synthetic_tracker_events import digitize, generate_tracks

from recon.conditions import ConditionsDB
from recon.tracking import (
    Alignment,
    AlignmentConfig,
    cluster_strips,
    derive_alignment,
    load_alignment,
    track_events,
    write_alignment_condition,
)

INJECTED_MM = np.array([[0.0, 0.0], [0.0, 0.0], [0.8, -0.6], [-1.0, 0.5]])  # MM1, MM2 reference


def test_alignment_condition_round_trip(tmp_path, geometry):
    alignment = Alignment(names=("MM1", "MM2", "GEM3", "GEM4"), offsets_mm=INJECTED_MM)
    write_alignment_condition(
        tmp_path / "invis2016" / "alignment" / "v2.yaml",
        alignment,
        setup="invis2016",
        version="v2",
        valid_runs=[1, 9],
        description="test",
    )
    loaded = load_alignment(ConditionsDB([tmp_path]), "invis2016", 5, geometry)
    np.testing.assert_allclose(loaded.offsets_mm, INJECTED_MM)
    assert loaded.names == alignment.names


def test_injected_offsets_recovered_within_20_um(geometry, field, field_data, pedestals, config):
    """40k beam electrons (1% momentum spread) through displaced GEMs.

    The x offsets downstream are tied to the mean beam momentum, so their
    statistical error is ~1.2 mm / sqrt(N_complete) ~ 7 um here; y ~ 5 um.
    """
    rng = np.random.default_rng(2016)
    n = 40_000
    truth = generate_tracks(n, geometry, field_data, rng)
    strips = digitize([(truth, 0.0)], n, geometry, pedestals, rng, offsets_mm=INJECTED_MM)
    clusters = cluster_strips(
        strips.event_offsets,
        strips.detector,
        strips.plane,
        strips.strip,
        strips.samples,
        pedestals=pedestals,
        config=config.clustering,
    )
    alignment, report = derive_alignment(
        clusters,
        geometry=geometry,
        field=field,
        tracking=config,
        config=AlignmentConfig(beam_momentum_GeV=100.0, beam_momentum_spread=0.01),
    )
    assert report["iterations"] <= 4 and report["tracks_used"] > 20_000
    np.testing.assert_allclose(alignment.offsets_mm, INJECTED_MM, atol=0.020)
    np.testing.assert_array_equal(alignment.offsets_mm[:2], 0.0)  # references untouched

    # with the derived alignment the momentum scale is right again
    columns = [
        track_events(
            strips.event_offsets[:4001],
            strips.detector,
            strips.plane,
            strips.strip,
            strips.samples,
            geometry=geometry,
            field=field,
            pedestals=pedestals,
            alignment=a,
            config=config,
        )
        for a in (None, alignment)
    ]
    rel = [c["p_track_GeV"][c["track_ok"]] / truth.p_GeV[:4000][c["track_ok"]] - 1 for c in columns]
    assert abs(np.median(rel[0])) > 0.005  # the injected offsets bias the momentum by ~1%
    assert abs(np.median(rel[1])) < 0.002
