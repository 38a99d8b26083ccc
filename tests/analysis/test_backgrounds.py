"""Background estimates: the simulation table by source and the sideband extrapolation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

from recon.analysis.backgrounds import (
    MC_SOURCES,
    POISSON_UPPER_68,
    POISSON_UPPER_90,
    SidebandConfig,
    combine_sidebands,
    extrapolate_sideband,
    family_integral,
    mc_background_table,
    transfer_factor,
)

SOURCES = [name for name, _ in MC_SOURCES]


@pytest.mark.parametrize(
    ("family", "shape"),
    [
        ("exponential", -0.3),
        ("exponential", 0.05),
        ("exponential", 0.0),
        ("power_law", 0.7),
        ("power_law", -0.5),
        ("power_law", -1.0),
    ],
)
def test_family_integrals_match_quadrature(family, shape):
    edge = 2.0

    def density(x):
        return np.exp(shape * (x - edge)) if family == "exponential" else (x / edge) ** shape

    for lo, hi in ((0.5, 2.0), (2.0, 30.0)):
        expected = integrate.quad(density, lo, hi)[0]
        assert family_integral(family, shape, lo, hi, edge) == pytest.approx(expected, rel=1e-7)
    r = transfer_factor(family, shape, edge=edge, fit_max=30.0, box_low=0.5)
    assert r == pytest.approx(
        integrate.quad(density, 0.5, 2)[0] / integrate.quad(density, 2, 30)[0]
    )


@pytest.mark.parametrize("weight", [1.0, 2.5])
def test_sideband_fit_recovers_an_injected_exponential(weight):
    """Events with density exp(-x/5) on [0, inf): the box [0, 1) count predicted within 2 sigma."""
    rng = np.random.default_rng(7)
    n_true, slope = 3000.0, -0.2
    x = rng.exponential(-1.0 / slope, size=rng.poisson(n_true))
    w = np.full(x.size, weight)
    est = extrapolate_sideband(
        "A",
        x,
        w,
        x,
        w,
        edge=1.0,
        fit_max=21.0,
        box_low=0.0,
        families=("exponential",),
        n_bins=40,
        min_fit_events=5,
    )
    fit = est.fits[0]
    assert fit.valid
    assert fit.shape == pytest.approx(slope, abs=3 * fit.shape_err)
    truth = weight * n_true * (1.0 - np.exp(slope * 1.0))  # expected weighted count in the box
    assert abs(est.value(fit) - truth) < 2.0 * est.stat_error(fit)
    assert est.stat_error(fit) < 0.1 * truth  # the error is a real constraint
    r_true = transfer_factor("exponential", slope, edge=1.0, fit_max=21.0, box_low=0.0)
    assert fit.transfer == pytest.approx(r_true, abs=3 * fit.transfer_err)


def test_sideband_normalised_to_the_selected_events_and_bounds_for_none():
    rng = np.random.default_rng(3)
    x_shape = 1.0 + rng.exponential(8.0, size=400)  # rising towards the box? no: falling away
    est = extrapolate_sideband(
        "A",
        x_shape,
        np.ones(400),
        np.array([]),
        np.array([]),
        edge=1.0,
        fit_max=30.0,
        box_low=0.0,
        families=("exponential", "power_law"),
        n_bins=20,
        min_fit_events=5,
    )
    assert est.available and est.n_selected == 0
    total = combine_sidebands([est], scale=10.0)
    assert total["central"] == 0 and total["zero_selected"]
    bounds = [10 * POISSON_UPPER_68 * (f.transfer + f.transfer_err) for f in est.fits]
    assert total["upper_68"] == pytest.approx(max(bounds))
    # selected events: estimate N R, the systematic is the spread between families
    x_sel = np.array([3.0, 5.0, 8.0])
    est = extrapolate_sideband(
        "A",
        x_shape,
        np.ones(400),
        x_sel,
        np.ones(3),
        edge=1.0,
        fit_max=30.0,
        box_low=0.0,
        families=("exponential", "power_law"),
        n_bins=20,
        min_fit_events=5,
    )
    values = [3.0 * f.transfer for f in est.fits]
    total = combine_sidebands([est])
    assert total["central"] == pytest.approx(values[0])
    assert total["syst"] == pytest.approx(abs(values[1] - values[0]))
    assert total["upper_68"] is None


def test_too_few_events_give_no_fit_and_are_reported():
    est = extrapolate_sideband(
        "C",
        np.array([60.0, 70.0]),
        np.ones(2),
        np.array([]),
        np.array([]),
        edge=50.0,
        fit_max=100.0,
        box_low=0.0,
        families=("exponential",),
        n_bins=10,
        min_fit_events=5,
    )
    assert not est.available and "fewer than 5" in est.reason
    total = combine_sidebands([est])
    assert total == {"available": False, "sidebands": [], "unavailable": {"C": est.reason}}
    with pytest.raises(ValueError):
        SidebandConfig(fits=("gaussian",))


def test_mc_table_sums_by_source_and_scaling():
    # process codes: 1 hadronic, 4 decay in flight, 7 charge exchange; one pile-up event
    process = np.array([1, 1, 4, 4, 4, 7, 7, 7])
    pileup_pdg = np.array([0, 0, 0, 0, 11, 0, 0, 0])
    weights = np.array([1.0, 2.0, 0.5, 0.5, 3.0, 1.0, 1.0, 1.0])
    in_box = np.array([False, True, True, True, True, False, False, False])
    table = mc_background_table(
        in_box, process, pileup_pdg, weights, dataset_eot=1e6, target_eot=2e9
    )
    row = {name: table[table["source"] == name][0] for name in [*SOURCES, "total"]}
    hadronic, decays = SOURCES[1], SOURCES[4]
    pileup, target = SOURCES[6], SOURCES[5]
    assert (row[hadronic]["n_box"], row[hadronic]["sum_w"]) == (1, 2.0)
    assert (row[decays]["n_sample"], row[decays]["n_box"], row[decays]["sum_w"]) == (2, 2, 1.0)
    assert row[decays]["sum_w_err"] == pytest.approx(np.sqrt(0.5))
    assert (row[pileup]["n_sample"], row[pileup]["sum_w"]) == (1, 3.0)  # pile-up wins
    assert row["total"]["sum_w"] == pytest.approx(6.0)
    assert row["total"]["sum_w_err"] == pytest.approx(np.sqrt(4 + 0.25 + 0.25 + 9))
    assert row["total"]["expected"] == pytest.approx(6.0 * 2000)
    assert row["total"]["expected_err"] == pytest.approx(row["total"]["sum_w_err"] * 2000)
    assert np.isnan(row[hadronic]["upper_68"])
    # a source without box events: Poisson bound times its mean weight, scaled
    assert row[target]["n_box"] == 0 and row[target]["upper_68"] == pytest.approx(POISSON_UPPER_68)
    assert row[target]["expected_upper_90"] == pytest.approx(POISSON_UPPER_90 * 2000)
    assert table["n_sample"][:-1].sum() == process.size
