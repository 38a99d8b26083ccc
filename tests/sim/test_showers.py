"""EM and hadronic shower parametrisations, ECAL resolution, linearity, HCAL MIP peak."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import dblquad

from sim.beam import BeamParticles
from sim.deposits import Process
from sim.generator import generate, load_physics_params, simulate_beam
from sim.showers import (
    LateralProfile,
    dirichlet_split,
    em_section_fractions,
    lateral_fraction,
    sample_em_longitudinal,
)


@pytest.fixture(scope="module")
def conditions(db):
    field, _ = db.data("field", "invis2016", 1)
    return db.geometry("invis2016", 1), field, load_physics_params()


def _electrons_at_ecal_centre(n, energy, rng):
    """Electrons starting after the magnets, aimed at the ECAL centre cell (3, 3) middle."""
    z0, x_face = 5000.0, 456.5 - 19.1
    tx = np.full(n, 0.021)
    return BeamParticles(
        pdg=np.full(n, 11, dtype=np.int32),
        p_GeV=np.full(n, energy),
        x_mm=x_face - tx * (24000.0 - z0) + rng.normal(0, 3, n),
        y_mm=rng.normal(0, 3, n) - 19.1,
        tx=tx,
        ty=np.zeros(n),
        z_mm=z0,
    )


def test_quadrant_integral_against_numerical():
    profile = LateralProfile(7.0, 70.0, 0.9)
    value = lateral_fraction(3.0, -5.0, -10.0, 25.0, -20.0, 15.0, profile)

    def density(y, x):
        return sum(
            w * r * r / (np.pi * ((x - 3) ** 2 + (y + 5) ** 2 + r * r) ** 2)
            for r, w in ((7.0, 0.9), (70.0, 0.1))
        )

    expected, _ = dblquad(density, -10.0, 25.0, -20.0, 15.0)
    assert value == pytest.approx(expected, rel=1e-6)
    assert lateral_fraction(0.0, 0.0, -1e7, 1e7, -1e7, 1e7, profile) == pytest.approx(1.0, abs=1e-6)


def test_moliere_containment(conditions):
    """Main-section profile: ~90 % within 1 R_M and ~95 % within 2 R_M (radial form)."""
    _, _, params = conditions
    p = params.ecal.lateral_RM["main"]  # radii in R_M

    def inside(r):
        return sum(
            w * r * r / (r * r + rad * rad)
            for rad, w in (
                (p.core_radius_mm, p.core_fraction),
                (p.tail_radius_mm, 1 - p.core_fraction),
            )
        )

    assert inside(1.0) == pytest.approx(0.90, abs=0.005)
    assert inside(2.0) == pytest.approx(0.95, abs=0.005)


def test_preshower_fraction_fluctuates_around_3pc(conditions):
    _, _, params = conditions
    rng = np.random.default_rng(1)
    a, b = sample_em_longitudinal(np.full(50_000, 100.0), rng, params.ecal.longitudinal)
    frac = em_section_fractions(a, b, np.zeros(a.size), np.array([0.0, 4.0, 40.0]))
    assert frac[:, 0].mean() == pytest.approx(0.03, abs=0.004)
    assert frac[:, 0].std() > 0.008  # event-by-event fluctuation (GP correlated ln T, ln a)
    assert frac.sum(axis=1).min() > 0.995  # 40 X0 contain the shower


def test_dirichlet_split_keeps_totals():
    rng = np.random.default_rng(2)
    expected = rng.random((100, 2, 6, 6)) * 5.0
    total = rng.random(100) * 100.0
    cells = dirichlet_split(expected, total, rng, 0.1)
    assert np.allclose(cells.sum(axis=(1, 2, 3)), total)
    assert np.all(cells >= 0)


def test_ecal_resolution_and_linearity(conditions):
    geometry, field, params = conditions
    rng = np.random.default_rng(3)
    response = {}
    for energy in (10.0, 30.0, 100.0):
        events = simulate_beam(
            _electrons_at_ecal_centre(3000, energy, rng),
            rng,
            geometry=geometry,
            field_data=field,
            params=params,
        )
        ordinary = np.isin(events.process, [0, 3]) & (
            events.intime.hcal_GeV.sum(axis=(1, 2, 3)) == 0
        )
        e = events.intime.ecal_GeV.sum(axis=(1, 2, 3))[ordinary]
        core = e > np.median(e) - 5 * np.std(e)  # drop the rare hard upstream-brems tail
        response[energy] = (np.mean(e[core]) / energy, np.std(e[core]) / np.mean(e[core]))
    for energy, (scale, resolution) in response.items():
        expected = np.hypot(0.10 / np.sqrt(energy), 0.01)
        assert resolution == pytest.approx(expected, rel=0.15), energy  # 10 %/sqrt(E) (+) 1 %
        assert 0.95 < scale < 0.99  # lateral leakage of the 6 x 6 matrix, a few per cent
    scales = [s for s, _ in response.values()]
    assert max(scales) - min(scales) < 0.01  # linear within 1 %


def test_preshower_fraction_in_cells(conditions):
    geometry, field, params = conditions
    rng = np.random.default_rng(4)
    events = simulate_beam(
        _electrons_at_ecal_centre(2000, 100.0, rng),
        rng,
        geometry=geometry,
        field_data=field,
        params=params,
    )
    sections = events.intime.ecal_GeV.sum(axis=(2, 3))
    frac = sections[:, 0] / sections.sum(axis=1)
    assert frac.mean() == pytest.approx(0.03, abs=0.005)


def test_hcal_mip_peak(conditions):
    geometry, field, params = conditions
    events, _ = generate(
        "hcal_muons",
        20_000,
        np.random.default_rng(5),
        geometry=geometry,
        field_data=field,
        params=params,
        pileup=False,
    )
    per_module = events.intime.hcal_GeV.sum(axis=(2, 3))
    for module in range(4):
        hist, edges = np.histogram(per_module[:, module], bins=60, range=(1.5, 4.5))
        smooth = np.convolve(hist, np.ones(5) / 5, mode="same")  # 0.25 GeV running mean
        mode = 0.5 * (edges[np.argmax(smooth)] + edges[np.argmax(smooth) + 1])
        assert mode == pytest.approx(2.5, abs=0.1), module  # spec: 2.5 GeV per module
    # MU1..MU4 fire for 100 GeV muons that reach them (a decay in flight leaves an electron)
    passing = events.process == Process.MUON_PASSING
    assert passing.mean() > 0.99
    assert np.all(events.intime.counters_GeV[passing, 7:11] > 0)
