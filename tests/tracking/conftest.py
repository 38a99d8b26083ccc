"""Shared fixtures of the tracking tests: conditions, configuration, synthetic samples."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from synthetic_tracker_events import (
    DEFAULT_RESPONSE,
    StripEvents,
    Truth,
    digitize,
    generate_tracks,
    make_pedestal_table,
)

from recon.conditions import ConditionsDB
from recon.tracking import load_field, load_tracking_config, track_events

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def db():
    return ConditionsDB([REPO / "conditions"])


@pytest.fixture(scope="session")
def geometry(db):
    return db.geometry("invis2016", 1)


@pytest.fixture(scope="session")
def field_data(db):
    return db.data("field", "invis2016", 1)[0]


@pytest.fixture(scope="session")
def field(db):
    return load_field(db, "invis2016", 1)


@pytest.fixture(scope="session")
def config():
    return load_tracking_config(ConditionsDB([REPO / "conditions"]), "invis2016", 1)


@pytest.fixture(scope="session")
def pedestals(geometry):
    return make_pedestal_table(geometry, np.random.default_rng(20160))


@dataclass
class TrackedSample:
    truth: Truth
    strips: StripEvents
    columns: dict
    pileup_truth: Truth | None = None


@pytest.fixture(scope="session")
def run_sample(geometry, field, field_data, pedestals, config):
    """Generate, digitise and track ``n`` events; extra track sets as (truth, dt_ns) pairs."""

    def run(n, seed, *, p_GeV=100.0, p_spread=0.01, response=DEFAULT_RESPONSE, pileup_dt=None):
        rng = np.random.default_rng(seed)
        truth = generate_tracks(
            n, geometry, field_data, rng, p_GeV=p_GeV, p_spread=p_spread, response=response
        )
        tracks = [(truth, 0.0)]
        pileup = None
        if pileup_dt is not None:
            pileup = generate_tracks(n, geometry, field_data, rng, response=response)
            tracks.append((pileup, pileup_dt))
        strips = digitize(tracks, n, geometry, pedestals, rng, response=response)
        columns = track_events(
            strips.event_offsets,
            strips.detector,
            strips.plane,
            strips.strip,
            strips.samples,
            geometry=geometry,
            field=field,
            pedestals=pedestals,
            alignment=None,
            config=config,
        )
        return TrackedSample(truth=truth, strips=strips, columns=columns, pileup_truth=pileup)

    return run


@pytest.fixture(scope="session")
def electrons_100(run_sample):
    """4000 single 100 GeV beam electrons (1% momentum spread), all detector effects."""
    return run_sample(4000, seed=1)
