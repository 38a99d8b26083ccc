"""Physics and calibration triggers on cheap totals (spec section 5)."""

from __future__ import annotations

import numpy as np
import pytest

from sim.beam import BeamParticles
from sim.generator import generate, load_physics_params, simulate_beam
from sim.trigger import TriggerInputs, trigger_config, trigger_decision


@pytest.fixture(scope="module")
def conditions(db):
    field, _ = db.data("field", "invis2016", 1)
    return db.geometry("invis2016", 1), field, load_physics_params()


def _inputs(e_ecal, *, s1=True, s2=True, v1=False, pu_e=0.0, pu_dt=np.nan, pu_v1=False):
    n = len(e_ecal)
    full = np.full
    return TriggerInputs(
        full(n, s1),
        full(n, s2),
        full(n, v1),
        np.asarray(e_ecal, float),
        full(n, pu_v1),
        full(n, pu_e),
        full(n, pu_dt),
    )


def test_physics_trigger_logic(conditions):
    params = load_physics_params().trigger
    config = trigger_config("physics", params)
    rng = np.random.default_rng(1)
    assert trigger_decision(_inputs([50.0] * 100), config, rng).all()
    assert not trigger_decision(_inputs([95.0] * 100), config, rng).any()
    assert not trigger_decision(_inputs([50.0] * 100, v1=True), config, rng).any()
    assert not trigger_decision(_inputs([50.0] * 100, s2=False), config, rng).any()
    # pile-up: adds to the ECAL sum within the coincidence window only
    assert not trigger_decision(_inputs([50.0] * 100, pu_e=40.0, pu_dt=5.0), config, rng).any()
    assert trigger_decision(_inputs([50.0] * 100, pu_e=40.0, pu_dt=80.0), config, rng).all()
    # threshold smearing: 50 % efficiency at 80 GeV
    assert trigger_decision(_inputs([80.0] * 4000), config, rng).mean() == pytest.approx(
        0.5, abs=0.04
    )
    calib = trigger_config("ecal_scan", params)
    assert trigger_decision(_inputs([99.0] * 10), calib, rng).all()
    assert trigger_decision(
        _inputs([0.0] * 10, s1=False, s2=False), trigger_config("random", params), rng
    ).all()


def test_rejects_full_energy_keeps_50GeV_electrons(conditions):
    geometry, field, params = conditions
    rng = np.random.default_rng(2)
    n = 2000
    for energy, expect_kept in ((100.0, 0.0), (50.0, 1.0)):
        z0, tx = -4000.0, np.zeros(n)
        beam = BeamParticles(
            pdg=np.full(n, 11, dtype=np.int32),
            p_GeV=np.full(n, energy),
            x_mm=rng.normal(0, 3, n),
            y_mm=rng.normal(0, 3, n),
            tx=tx,
            ty=np.zeros(n),
            z_mm=z0,
        )
        if energy == 50.0:  # start after the magnets, on the 100 GeV path to the ECAL centre
            beam.z_mm, beam.tx = 5000.0, np.full(n, 0.021)
            beam.x_mm = beam.x_mm + 456.5 - 0.021 * 19000.0
        events = simulate_beam(beam, rng, geometry=geometry, field_data=field, params=params)
        e_ecal = events.intime.ecal_GeV.sum(axis=(1, 2, 3))
        config = trigger_config("physics", params.trigger)
        kept = trigger_decision(_inputs(e_ecal), config, rng)
        ordinary = events.process == 0
        assert kept[ordinary].mean() == pytest.approx(expect_kept, abs=0.005), energy


def test_triggered_physics_events_satisfy_the_trigger(conditions):
    geometry, field, params = conditions
    events, n_eot = generate(
        "physics",
        60_000,
        np.random.default_rng(3),
        geometry=geometry,
        field_data=field,
        params=params,
    )
    c = events.intime.counters_GeV
    assert np.all(c[:, 0] > 0) and np.all(c[:, 2] > 0)  # S1 and S2 fired
    assert np.all(c[:, 1] == 0)  # in-time V1 silent
    e_ecal = events.intime.ecal_GeV.sum(axis=(1, 2, 3))
    assert np.all(e_ecal < 86.0)  # 80 GeV threshold, 1 GeV smearing, pile-up excluded
    # about 1.2 % of the physics beam triggers (hadrons 1 %, muons 0.1 %, e- interactions)
    assert 0.008 < len(events) / 60_000 < 0.02
    assert n_eot == pytest.approx(0.989 * 60_000, rel=0.005)
