"""Synchrotron radiation in the dipoles and the SRD response (spec sections 2 and 4)."""

from __future__ import annotations

import numpy as np
import pytest

from sim.generator import generate, load_physics_params
from sim.synchrotron import (
    MEAN_XI,
    SrdModules,
    critical_energy_GeV,
    photons_per_mm,
    sample_xi,
    sr_photons,
    srd_absorbed_GeV,
)
from sim.transport import Dipoles, TransportInput, TransportSetup, transport


@pytest.fixture(scope="module")
def conditions(db):
    field, _ = db.data("field", "invis2016", 1)
    return db.geometry("invis2016", 1), field


def test_critical_energy_and_photon_rate():
    assert critical_energy_GeV(100.0, 1.75) * 1e3 == pytest.approx(11.6, abs=0.1)
    assert photons_per_mm(100.0, 1.75) * 1e3 == pytest.approx(10.8, abs=0.1)  # notes: ~11 / m
    xi = sample_xi(np.random.default_rng(1).random(1_000_000))
    assert xi.mean() == pytest.approx(MEAN_XI, rel=0.005)  # 8 / (15 sqrt 3)


def test_100GeV_electron_radiates_155MeV_40pc_in_srd(conditions):
    geometry, field = conditions
    setup = TransportSetup.build(geometry, field, {})
    n = 5000
    zero = np.zeros(n)
    inp = TransportInput.simple(
        -4000.0, zero, zero, zero, zero, np.full(n, 100.0), np.full(n, -1.0), np.full(n, 0.000511)
    )
    states, _ = transport(inp, setup, None, record=("MBPL1", "MBPL2"))
    photons = sr_photons(
        states, np.ones((n, 2), bool), Dipoles.from_field(field), 23200.0, np.random.default_rng(2)
    )
    total = np.bincount(photons.event, photons.E_GeV, minlength=n)
    assert photons.event.size / n == pytest.approx(43.3, rel=0.02)
    assert total.mean() * 1e3 == pytest.approx(155.0, rel=0.02)
    modules = srd_absorbed_GeV(photons, n, SrdModules.from_geometry(geometry))
    assert modules.sum() / total.sum() == pytest.approx(0.40, abs=0.03)
    assert np.all((modules.mean(axis=0) > 0.015) & (modules.mean(axis=0) < 0.025))  # ~20 MeV
    assert photons.x_mm.min() > -1.0 and photons.x_mm.max() < 441.0  # fan from 0 to 440 mm


def test_srd_electrons_versus_muons(conditions):
    geometry, field = conditions
    params = load_physics_params()
    kw = {"geometry": geometry, "field_data": field, "params": params, "pileup": False}
    electrons, _ = generate(
        "ecal_scan",
        1500,
        np.random.default_rng(3),
        beam_target_xy_mm=np.tile([456.5, 0.0], (1500, 1)),
        **kw,
    )
    muons, _ = generate("hcal_muons", 1500, np.random.default_rng(4), **kw)
    srd_e = electrons.intime.counters_GeV[:, 4:7].sum(axis=1)
    srd_mu = muons.intime.counters_GeV[:, 4:7].sum(axis=1)
    assert np.median(srd_e) == pytest.approx(0.062, rel=0.15)
    assert np.mean(srd_e > 0.02) > 0.9  # the SR tag keeps most electrons (Poisson photon count)
    assert np.mean(srd_mu > 0.02) < 0.005  # (m_e/m_mu)^4: only rare knock-on electrons
