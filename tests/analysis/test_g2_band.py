"""Muon g-2 A' loop: limits of the loop function and the favoured band."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

from recon.analysis.g2_band import (
    ALPHA_EM,
    DELTA_AMU_2016,
    M_MU_GEV,
    delta_amu,
    eps_for_delta_amu,
    g2_favoured_band,
    g2_loop_function,
)


def test_light_aprime_limit():
    # m << m_mu: Delta a_mu -> alpha eps^2 / 2 pi; F(r) ~ 1 - pi r, r = 1e-4 here
    eps = 2e-3
    expected = ALPHA_EM * eps**2 / (2 * np.pi)
    assert delta_amu(1e-5, eps) == pytest.approx(expected, rel=5e-4)


def test_heavy_aprime_limit():
    # m >> m_mu: F -> 2 m_mu^2 / (3 m^2)
    m = 30.0
    assert g2_loop_function(m) == pytest.approx(2 * M_MU_GEV**2 / (3 * m**2), rel=1e-2)


@pytest.mark.parametrize("m_GeV", [1e-4, 0.01, 0.1, 1.0])
def test_loop_function_matches_adaptive_quadrature(m_GeV):
    r2 = (m_GeV / M_MU_GEV) ** 2
    expected = integrate.quad(
        lambda z: 2 * z * (1 - z) ** 2 / ((1 - z) ** 2 + z * r2), 0, 1, epsrel=1e-12, limit=400
    )[0]
    assert g2_loop_function(m_GeV) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("m_GeV", [0.010, 0.015, 0.020])
def test_favoured_eps_near_2e3_at_10_to_20_MeV(m_GeV):
    # computed: 1.78e-3 (10 MeV), 1.88e-3 (15 MeV), 1.96e-3 (20 MeV)
    assert 1.6e-3 < eps_for_delta_amu(m_GeV, DELTA_AMU_2016) < 2.2e-3


def test_eps_for_delta_inverts_delta_amu():
    m = np.geomspace(1e-3, 1.0, 9)
    eps = eps_for_delta_amu(m, 3e-9)
    np.testing.assert_allclose(delta_amu(m, eps), 3e-9, rtol=1e-12)


def test_band_edges_ordered_and_rising_with_mass():
    m = np.geomspace(1e-3, 1.0, 30)
    band = g2_favoured_band(m)
    assert np.all(band.eps_low < band.eps_central)
    assert np.all(band.eps_central < band.eps_high)
    assert np.all(np.diff(band.eps_central) > 0)
    # +-2 sigma edges: Delta a_mu = 1.27e-9 and 4.47e-9
    np.testing.assert_allclose(delta_amu(m, band.eps_low), 1.27e-9, rtol=1e-12)
    np.testing.assert_allclose(delta_amu(m, band.eps_high), 4.47e-9, rtol=1e-12)
