"""Beam composition, momentum spread and pile-up against spec section 3."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sim.beam import (
    PDG_ELECTRON,
    PDG_KAON,
    PDG_MUON,
    PDG_PION,
    pileup_probability,
    sample_beam,
    sample_pileup,
)
from sim.generator import load_physics_params


@pytest.fixture(scope="module")
def beam_params():
    return load_physics_params().beam


def test_momentum_spread_and_spot(beam_params):
    beam = sample_beam(200_000, np.random.default_rng(1), beam_params, species="electron")
    # sigma_p/p = 1 %: the sample estimate has a relative error of 1/sqrt(2n) = 0.16 %
    assert np.mean(beam.p_GeV) == pytest.approx(100.0, abs=0.01)
    assert np.std(beam.p_GeV) / 100.0 == pytest.approx(0.01, rel=0.01)
    core = np.abs(beam.x_mm) < 20  # halo excluded
    assert np.std(beam.x_mm[core]) == pytest.approx(3.0, rel=0.02)
    assert np.std(beam.tx[np.abs(beam.tx) < 1e-3]) == pytest.approx(1e-4, rel=0.03)


def test_composition(beam_params):
    n = 1_000_000
    beam = sample_beam(n, np.random.default_rng(2), beam_params)
    for pdg, fraction in ((PDG_PION, 1e-2), (PDG_MUON, 1e-3), (PDG_KAON, 1e-4)):
        count = np.count_nonzero(beam.pdg == pdg)
        assert abs(count - fraction * n) < 5 * np.sqrt(fraction * n)  # 5 sigma binomial
    tail = (beam.pdg == PDG_ELECTRON) & (beam.p_GeV < 92)
    assert abs(tail.sum() - 1e-2 * n) < 5 * np.sqrt(1e-2 * n)
    hist, _ = np.histogram(beam.p_GeV[tail], bins=8, range=(10, 90))
    assert hist.min() > 0.85 * hist.mean()  # flat within statistics (1000 per bin)


def test_halo_is_independent_of_the_species(beam_params):
    """The halo flag reuses the species uniform (rescaled): same halo fraction per species."""
    params = dataclasses.replace(beam_params, fraction_halo=0.2, fraction_pion=0.2,
                                 fraction_kaon=0.05, fraction_muon=0.1, fraction_e_tail=0.1)
    n = 400_000
    beam = sample_beam(n, np.random.default_rng(4), params)
    wide = np.abs(beam.x_mm) > 12.0  # halo (25 mm): 63 %; core (3 mm): 6e-5
    expected = 0.2 * 0.6309 + 0.8 * 6.3e-5
    tail = (beam.pdg == PDG_ELECTRON) & (beam.p_GeV < 92)
    for mask in (beam.pdg == PDG_PION, beam.pdg == PDG_KAON, beam.pdg == PDG_MUON, tail,
                 (beam.pdg == PDG_ELECTRON) & ~tail):
        k = mask.sum()
        assert abs(wide[mask].mean() - expected) < 5 * np.sqrt(expected / k)
    # within the tail, the halo does not depend on the momentum
    assert beam.p_GeV[tail & wide].mean() == pytest.approx(50.0, abs=5 * 23.1 / np.sqrt(
        (tail & wide).sum()))


def test_pileup_probability(beam_params):
    rate = beam_params.particles_per_spill / (beam_params.spill_length_s * 1e9)
    expected = 1 - np.exp(-2 * rate * beam_params.pileup_window_ns)
    assert pileup_probability(beam_params) == pytest.approx(expected)
    has, dt = sample_pileup(200_000, np.random.default_rng(3), beam_params)
    assert has.mean() == pytest.approx(expected, abs=5 * np.sqrt(expected / 200_000))
    assert np.all(np.abs(dt[has]) <= beam_params.pileup_window_ns)
    assert np.all(np.isnan(dt[~has]))
