"""The limit modes: efficiency interpolation, eps_up scaling, and the g-2 reach."""

import numpy as np
import pytest

from recon.analysis.exclusion import LimitInputs, efficiency_vs_mass, g2_reach_GeV, limit_table
from recon.analysis.g2_band import g2_favoured_band

MASSES = np.geomspace(0.001, 1.0, 13)


def test_efficiency_is_linear_in_log_mass_and_constant_outside():
    eff = efficiency_vs_mass([0.1, 0.001, 0.01], [0.5, 0.7, 0.6])  # any order
    assert eff(np.array([0.001, 0.01, 0.1])) == pytest.approx([0.7, 0.6, 0.5])
    assert float(eff(np.array(np.sqrt(0.001 * 0.01)))) == pytest.approx(0.65)
    assert eff(np.array([1e-5, 10.0])) == pytest.approx([0.7, 0.5])


def test_zero_events_without_systematics_gives_n90_ln10_and_eps_scaling():
    one = LimitInputs(mode="paper", n_eot=1e9, n_obs=0, yield_rel_unc=0.0)
    four = LimitInputs(mode="paper", n_eot=4e9, n_obs=0, yield_rel_unc=0.0)
    flat = efficiency_vs_mass([0.001, 1.0], [0.5, 0.5])
    a, b = limit_table(MASSES, one, flat), limit_table(MASSES, four, flat)
    assert a["n90"] == pytest.approx(np.log(10.0), rel=1e-3)
    # N_A' = n_EOT n_A'(eps) eff with n_A' ~ eps^2: four times the EOT halves eps_up
    assert b["eps_up"] == pytest.approx(a["eps_up"] / 2, rel=1e-9)
    expected = np.sqrt(a["n90"] / (1e9 * 0.5 * a["yield_per_eot_eps1"]))
    assert a["eps_up"] == pytest.approx(expected, rel=1e-12)


def test_systematics_widen_the_limit():
    flat = efficiency_vs_mass([0.001, 1.0], [0.6, 0.6])
    bare = limit_table(MASSES, LimitInputs("paper", 2.75e9, 0, yield_rel_unc=0.0), flat)
    syst = limit_table(MASSES, LimitInputs("paper", 2.75e9, 0, eff_rel_unc=0.13), flat)
    assert np.all(syst["eps_up"] > bare["eps_up"])
    assert syst["n90"][0] == pytest.approx(2.4, abs=0.15)


@pytest.mark.parametrize("crossing_GeV", [0.02, 0.1, 0.3])
def test_g2_reach_finds_where_the_limit_crosses_the_band(crossing_GeV):
    m = np.geomspace(0.001, 1.0, 301)
    eps_up = g2_favoured_band(m).eps_low * (m / crossing_GeV) ** 0.5
    assert g2_reach_GeV(m, eps_up) == pytest.approx(crossing_GeV, rel=0.01)


def test_g2_reach_limits():
    m = np.geomspace(0.001, 1.0, 31)
    low = g2_favoured_band(m).eps_low
    assert g2_reach_GeV(m, low * 0.5) == 1.0  # the whole band excluded
    assert g2_reach_GeV(m, low * 2.0) == 0.0  # nothing excluded
