"""Calorimetry validation functions on small synthetic inputs with known answers."""

import json

import numpy as np
import pytest

from recon.calo.sadc_channels import SadcLayout
from recon.calo.waveform import PulseShapes
from recon.conditions import ConditionsDB
from recon.validation.calorimetry import (
    TrueSadcConstants,
    amplitude_factor,
    cell_closure,
    energy_response,
    fit_resolution,
    gain_figures,
    mip_peak_figures,
    pedestal_figures,
    read_true_sadc_constants,
    true_pulse,
)
from tests.calo.calo_synthetic import TIMING
from tests.conftest import CONDITIONS


def _true(n, rng, rise=4.0, decay=40.0):
    return TrueSadcConstants(
        gain_adc_per_GeV=rng.uniform(30, 50, n), pedestal_adc=rng.uniform(100, 300, (n, 2)),
        noise_adc=rng.uniform(1, 3, n), rise_ns=np.full(n, rise), decay_ns=np.full(n, decay),
        time_offset_ns=np.zeros(n))


def test_read_true_constants_reorders_into_the_condition_layout(tmp_path):
    db = ConditionsDB([CONDITIONS])
    channel_map = db.channel_map("invis2016", 1)
    layout = SadcLayout.from_geometry(db.geometry("invis2016", 1))
    group = channel_map.group("ecal")
    table = channel_map.sadc_fields[group.source]
    n = table.shape[0]
    doc = {"format": "na64-sim-true-constants", "sadc": {"ecal": {
        "source": group.source, "channel": list(range(n)),
        "gain_adc_per_GeV": [float(c) for c in range(n)],
        **{k: [0.0] * n for k in ("pedestal_even_adc", "pedestal_odd_adc", "noise_adc", "rise_ns",
                                  "decay_ns", "time_offset_ns")}}}}
    path = tmp_path / "true.json"
    path.write_text(json.dumps(doc))
    true = read_true_sadc_constants(path, channel_map, layout)["ecal"]
    dense = np.ravel_multi_index(tuple(table[:, :3].astype(int).T), layout.ecal)
    np.testing.assert_array_equal(true.gain_adc_per_GeV[dense], np.arange(n))


def test_pedestal_figures():
    rng = np.random.default_rng(1)
    true = _true(10, rng)
    derived = true.pedestal_adc + 0.1
    figures = pedestal_figures(derived, np.repeat(true.noise_adc[:, None], 2, axis=1), true)
    assert figures["max_abs_diff_adc"] == pytest.approx(0.1)
    assert figures["noise_ratio_mean"] == pytest.approx(1.0)
    assert figures["pass"]
    assert not pedestal_figures(derived + 0.5, derived, true)["pass"]


def test_amplitude_factor_is_one_for_the_true_template():
    rng = np.random.default_rng(2)
    true = _true(3, rng)
    grid = np.arange(-150.0, 250.25, 0.5)
    shapes = PulseShapes(true_pulse(grid, 4.0, 40.0)[None, :], -150.0, 0.5)
    factor, rms = amplitude_factor(true, shapes, 0, TIMING, jitter_ns=2.0, n_pulses=100)
    np.testing.assert_allclose(factor, 1.0, atol=0.003)
    assert rms.max() < 0.003
    # a template 10 % slower in decay: the fit's amplitude definition moves by a few %
    slow = PulseShapes(true_pulse(grid, 4.0, 44.0)[None, :], -150.0, 0.5)
    factor_slow, _ = amplitude_factor(true, slow, 0, TIMING, jitter_ns=2.0, n_pulses=100)
    assert np.all(np.abs(factor_slow - 1.0) > 0.005)
    figures = gain_figures(1.0 / (true.gain_adc_per_GeV * factor_slow), true, factor_slow)
    assert figures["effective_ratio"]["max_abs_deviation"] < 1e-6
    assert figures["plain_ratio"]["max_abs_deviation"] > 0.005


def test_cell_closure_ignores_flagged_and_small_cells():
    rng = np.random.default_rng(3)
    e_true = rng.uniform(0.0, 20.0, (500, 4))
    e_reco = e_true * np.array([1.0, 1.02, 0.99, 1.0])
    flags = np.zeros((500, 4), np.uint8)
    flags[:, 3] = 1  # saturated: excluded
    ratio, n = cell_closure(e_reco, flags, e_true, 5.0)
    np.testing.assert_allclose(ratio[:3], [1.0, 1.02, 0.99], atol=1e-6)
    assert np.isnan(ratio[3]) and n[3] == 0


def test_resolution_fit_recovers_the_terms():
    rng = np.random.default_rng(4)
    energy = rng.uniform(10, 100, 200_000)
    sigma = np.hypot(0.10 / np.sqrt(energy), 0.01)
    e_true = energy * (1 + sigma * rng.standard_normal(energy.size))
    e_reco = e_true * (1 + 0.002 * rng.standard_normal(energy.size))
    edges = np.array([10, 15, 20, 30, 40, 60, 80, 100.0])
    out = energy_response(e_reco, e_true, energy, edges)
    np.testing.assert_allclose(out["reco_over_true"], 1.0, atol=0.001)
    np.testing.assert_allclose(out["reco_term"], 0.002, rtol=0.1)
    a, b, _, _ = fit_resolution(out["energy"], out["resolution"], out["resolution_error"])
    assert a == pytest.approx(0.10, abs=0.005)
    assert b == pytest.approx(0.01, abs=0.002)


def test_mip_peak_figures():
    rng = np.random.default_rng(5)
    u = rng.standard_normal((20000, 2))
    mip = 2.5 * (1 + 0.1 * -np.log(u**2))
    figures = mip_peak_figures(mip, mip)
    assert figures["max_abs_deviation"] < 0.02
    assert figures["pass"]


def test_scan_statistical_error_of_the_preshower_mean():
    """The expected per-cell error is the spread of a cell's mean share over repeated scans."""
    from recon.validation.calorimetry import scan_statistical_error

    rng = np.random.default_rng(5)
    n_section, n_per = 4, 400
    target = np.repeat(np.arange(n_section), n_per)
    e_true = np.zeros((target.size, 2 * n_section))
    share = rng.normal(0.03, 0.015, target.size).clip(0.001)  # ~50 % fluctuation
    e_true[np.arange(target.size), n_section + target] = 80.0
    e_true[np.arange(target.size), target] = share * 100.0
    expected = scan_statistical_error(e_true, n_section)
    # 0.5 / sqrt(400) = 2.5 % (share of the total, not of 100 GeV: a little less)
    assert np.all((expected > 0.02) & (expected < 0.03))
    # toy scans of one cell: the relative spread of the mean share
    toys = rng.normal(0.03, 0.015, (2000, n_per)).clip(0.001)
    means = (toys * 100 / (toys * 100 + 80)).mean(axis=1)
    assert np.median(expected) == pytest.approx(means.std() / means.mean(), rel=0.1)


def test_validate_calo_honours_per_kind_versions():
    """`--pin KIND=VERSION` (the workflow's per-kind calibration versions) wins over the
    global `--version`, which only pins the kinds not named; `--derived` adds a root."""
    import argparse
    from pathlib import Path

    from recon.commands import validate_calo

    parser = argparse.ArgumentParser()
    validate_calo.register(parser.add_subparsers())
    common = ["validate-calo", "--true-constants", "t.json", "--scan", "c", "t",
              "--output-json", "o.json", "--plots", "p"]
    args = parser.parse_args([*common, "--conditions", "base", "--conditions", "derived",
                              "--pin", "ecal_calibration=v2", "--pin", "sadc_pedestals=v1"])
    options = validate_calo._with_derived(args)
    assert options.pin == ["ecal_calibration=v2", "sadc_pedestals=v1"]
    assert options.conditions == [Path("base"), Path("derived")]
    args = parser.parse_args([*common, "--derived", "d", "--version", "v1",
                              "--pin", "ecal_calibration=v2"])
    options = validate_calo._with_derived(args)
    pins = dict(item.split("=") for item in options.pin)
    assert pins["ecal_calibration"] == "v2"
    assert pins["hcal_calibration"] == pins["pulse_template"] == "v1"
    assert options.conditions == [Path("d")]


def test_resolution_error_matches_the_spread_of_the_width_estimator():
    # toy experiments: 300 Gaussian showers per bin, sigma/E = 2 %; the quoted error of the
    # half 16-84 % width must match its scatter over the experiments (within 15 %)
    rng = np.random.default_rng(5)
    edges = np.array([10.0, 110.0])
    widths, errors = [], []
    for _ in range(400):
        e_ref = np.full(300, 50.0)
        e_reco = e_ref * (1.0 + 0.02 * rng.standard_normal(300))
        out = energy_response(e_reco, e_reco, e_ref, edges)
        widths.append(out["resolution"][0])
        errors.append(out["resolution_error"][0])
    assert np.mean(errors) == pytest.approx(np.std(widths), rel=0.15)


def test_per_channel_template_rows_in_the_amplitude_factor():
    rng = np.random.default_rng(3)
    true = _true(3, rng)
    true.decay_ns[:] = [36.0, 40.0, 44.0]
    grid = np.arange(-150.0, 250.25, 0.5)
    rows = np.stack([true_pulse(grid, 4.0, d) for d in (36.0, 40.0, 44.0)])
    shapes = PulseShapes(np.concatenate([true_pulse(grid, 4.0, 40.0)[None, :], rows]), -150.0,
                         0.5)
    own, own_rms = amplitude_factor(true, shapes, np.array([1, 2, 3]), TIMING, n_pulses=100)
    group, _ = amplitude_factor(true, shapes, 0, TIMING, n_pulses=100)
    np.testing.assert_allclose(own, 1.0, atol=0.003)
    assert own_rms.max() < 0.003
    assert abs(group[0] - group[2]) > 0.005  # one template: a channel-dependent factor


def _energy_scan_sample(rng, energies, n, width_factor=None, run=905):
    """Electrons of a simulated energy scan (one segment per energy) with a known response:
    truth-level width 10 %/sqrt(E) (+) 1 %, reconstruction term 0.5 %, scale +0.3 %."""
    import awkward as ak

    from recon.validation.calorimetry import EventSample

    segment = np.repeat(np.arange(len(energies)), n)
    beam = np.repeat(np.asarray(energies, float), n)
    p_true = beam * (1 + 0.01 * rng.standard_normal(beam.size))
    sigma = np.hypot(0.10 / np.sqrt(beam), 0.01)
    if width_factor is not None:
        sigma = sigma * np.repeat(np.asarray(width_factor), n)
    e_true = 0.975 * p_true * (1 + sigma * rng.standard_normal(beam.size))
    e_reco = e_true * (1.003 + 0.005 * rng.standard_normal(beam.size))
    process = np.where(rng.random(beam.size) < 0.07, 3, 0)  # upstream brems: left out
    e_reco[process == 3] *= 0.8
    m = beam.size
    truth = ak.zip({"run": np.full(m, run), "segment": segment, "pdg": np.full(m, 11),
                    "process": process, "p_true_GeV": p_true, "e_aprime_GeV": np.zeros(m),
                    "e_ecal_true_GeV": e_true, "e_hcal_true_GeV": np.zeros(m),
                    "e_ecal_pileup_true_GeV": np.zeros(m)})
    calo = ak.zip({"e_ecal_GeV": e_reco + 0.2 * rng.standard_normal(m),
                   "e_ecal_shower_GeV": e_reco, "ecal_pileup": np.zeros(m, bool),
                   "ecal_max_ix": np.full(m, 3), "ecal_max_iy": np.full(m, 3)})
    return EventSample("energy_scan", calo, truth)


def test_energy_scan_resolution_and_linearity_per_beam_energy():
    from recon.validation.calorimetry import energy_scan_figures

    rng = np.random.default_rng(11)
    energies = [10.0, 20.0, 50.0, 100.0]
    figures, arrays = energy_scan_figures([_energy_scan_sample(rng, energies, 3000)])
    assert figures["n_points"] == 4 and figures["estimator"] == "e_ecal_shower_GeV"
    np.testing.assert_allclose(figures["e_incident_GeV"], energies, rtol=0.002)
    # ~2 800 clean electrons per point: 1.8 % statistical error on each width
    error = np.array(figures["sigma_over_E_error"]) / np.array(figures["sigma_over_E"])
    np.testing.assert_allclose(error, 0.9616 / np.sqrt(np.array(figures["n"])), rtol=1e-6)
    assert np.all(error < 0.02)
    # measured = truth level (+) 0.5 % reconstruction term
    expected = np.hypot(np.hypot(0.10 / np.sqrt(energies), 0.01), 0.005)
    np.testing.assert_allclose(figures["sigma_over_E"], expected, rtol=0.06)
    np.testing.assert_allclose(figures["reco_term"], 0.005, rtol=0.06)
    np.testing.assert_allclose(figures["reco_over_true"], 1.003, atol=0.0005)
    assert figures["linearity_max_abs_deviation"] == pytest.approx(0.003, abs=0.0005)
    assert figures["true_fit"]["stochastic"] == pytest.approx(0.10, abs=0.005)
    assert figures["true_fit"]["constant"] == pytest.approx(0.01, abs=0.001)
    assert figures["fit"]["constant"] == pytest.approx(np.hypot(0.01, 0.005), abs=0.001)
    assert figures["resolution_pass"] and figures["linearity_pass"] and figures["pass"]
    # the all-cell sum's extra noise (0.2 GeV) shows at 10 GeV
    noisy = np.hypot(figures["sigma_over_E"][0], 0.2 / 9.75)
    assert figures["all_cells"]["sigma_over_E"][0] == pytest.approx(noisy, rel=0.1)
    assert arrays["response"]["n"].tolist() == figures["n"]


def test_energy_scan_flags_a_point_beyond_the_tolerance():
    from recon.validation.calorimetry import energy_scan_figures

    rng = np.random.default_rng(12)
    figures, _ = energy_scan_figures([_energy_scan_sample(rng, [10.0, 100.0], 3000,
                                                          width_factor=[1.3, 1.0])])
    assert figures["relative_excess"][0] == pytest.approx(0.31, abs=0.05)  # 1.3 (+) 0.5 %
    assert not figures["resolution_pass"] and figures["linearity_pass"] and not figures["pass"]
