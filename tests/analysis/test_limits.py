"""CLs upper limits (pyhf one-bin model) and the eps exclusion curve, incl. paper mode."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from recon.analysis.aprime_yield import aprime_yield_per_eot
from recon.analysis.g2_band import g2_favoured_band
from recon.analysis.limits import (
    cls_counting,
    counting_model,
    eps_upper,
    exclusion_curve,
    upper_limit_signal_events,
)


def _yield_eps1(m_GeV):
    return aprime_yield_per_eot(m_GeV, eps=1.0)


PAPER = {"n_eot": 2.75e9, "efficiency": 0.6, "n_obs": 0, "b": 0.15, "b_err": 0.067}


@pytest.mark.parametrize("b", [0.0, 0.15, 1.0, 3.0])
def test_zero_observed_gives_2p30_whatever_the_background(b):
    assert upper_limit_signal_events(0, b) == pytest.approx(2.30, rel=0.01)


@pytest.mark.parametrize(
    ("n_obs", "n90"),
    # classical Poisson upper limits for b = 0 (PDG statistics review, table 40.3)
    [(1, 3.89), (2, 5.32), (3, 6.68), (4, 7.99), (5, 9.27)],
)
def test_zero_background_reproduces_poisson_table(n_obs, n90):
    assert upper_limit_signal_events(n_obs, 0.0) == pytest.approx(n90, rel=5e-3)


def test_limit_grows_with_observed_events():
    limits = [upper_limit_signal_events(n, 0.5) for n in range(6)]
    assert np.all(np.diff(limits) > 0)


def test_limit_falls_with_background_for_fixed_observation():
    limits = [upper_limit_signal_events(3, b) for b in (0.0, 0.5, 1.0, 2.0)]
    assert np.all(np.diff(limits) < 0)


def test_yield_systematic_widens_limit_slightly():
    plain = upper_limit_signal_events(0, 0.15)
    with_syst = upper_limit_signal_events(0, 0.15, b_err=0.067, sig_rel_unc=0.19)
    assert plain < with_syst < 1.08 * plain  # 2.303 -> 2.391 (+3.8 %)


def test_background_uncertainty_widens_limit():
    assert upper_limit_signal_events(2, 1.0, b_err=0.5) > upper_limit_signal_events(2, 1.0)


def test_cls_at_limit_equals_one_minus_cl():
    n90 = upper_limit_signal_events(2, 0.7, b_err=0.2, sig_rel_unc=0.1, cl=0.95)
    cls = cls_counting(n90, 2, 0.7, b_err=0.2, sig_rel_unc=0.1)
    assert cls == pytest.approx(0.05, rel=1e-8)


def test_exact_and_asymptotic_agree_at_large_counts():
    exact = upper_limit_signal_events(400, 400.0)
    asymptotic = upper_limit_signal_events(400, 400.0, calctype="asymptotics")
    assert asymptotic == pytest.approx(exact, rel=0.03)  # 33.8 vs 34.2


def test_counting_model_structure():
    model = counting_model(0.4, b_err=0.3, sig_rel_unc=0.19)
    assert set(model.config.par_order) == {"mu", "signal_syst", "background_unc"}
    pars = np.asarray(model.config.suggested_init(), float)
    pars[model.config.par_slice("mu")] = 2.0
    assert float(model.expected_actualdata(pars)[0]) == pytest.approx(2.4)


@pytest.mark.parametrize("kwargs", [{"sig_rel_unc": 1.2}, {"b_err": -1.0}, {"cl": 1.5}])
def test_invalid_inputs_raise(kwargs):
    with pytest.raises(ValueError):
        upper_limit_signal_events(0, 0.5, **kwargs)


def test_eps_up_scales_as_inverse_sqrt_n_eot():
    m = np.array([0.002, 0.02, 0.2])
    kwargs = {"efficiency": 0.6, "n90": 2.3, "yield_per_eot_eps1": _yield_eps1}
    ratio = eps_upper(m, n_eot=4e10, **kwargs) / eps_upper(m, n_eot=1e10, **kwargs)
    np.testing.assert_allclose(ratio, 0.5, rtol=1e-12)


def test_eps_up_follows_signal_count():
    # at eps_up the expected signal equals N90
    m = np.array([0.005, 0.05])
    eps = eps_upper(m, n_eot=1e9, efficiency=lambda mm: 0.7 - mm, n90=2.3)
    n_signal = 1e9 * (0.7 - m) * aprime_yield_per_eot(m, eps=eps)
    np.testing.assert_allclose(n_signal, 2.3, rtol=1e-12)


def test_exclusion_curve_columns():
    curve = exclusion_curve(np.geomspace(1e-3, 1.0, 12), **PAPER)
    assert curve.dtype.names == ("m_GeV", "efficiency", "yield_per_eot_eps1", "n90", "eps_up")
    assert np.all(curve["n90"] == curve["n90"][0])
    assert np.all(np.diff(curve["eps_up"]) > 0)


def _eps_up_over_band_edge(m_GeV: float) -> float:
    eps_up = exclusion_curve(m_GeV, **PAPER)["eps_up"][0]
    return float(eps_up / g2_favoured_band(m_GeV).eps_low) - 1.0


def test_paper_mode_excludes_g2_band_up_to_about_100_MeV():
    masses = np.geomspace(1e-3, 0.08, 20)
    curve = exclusion_curve(masses, **PAPER)
    assert np.all(curve["eps_up"] < g2_favoured_band(masses).eps_low)
    # the exclusion ends near 100 MeV (computed: 88 MeV with IWW, shower track length, eff 0.6)
    crossing_GeV = optimize.brentq(_eps_up_over_band_edge, 0.03, 0.5, xtol=1e-4)
    assert 0.07 < crossing_GeV < 0.13
