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


def test_scan_statistical_error_of_the_preshower_median():
    from recon.validation.calorimetry import scan_statistical_error

    rng = np.random.default_rng(5)
    n_section, n_per = 4, 400
    target = np.repeat(np.arange(n_section), n_per)
    e_true = np.zeros((target.size, 2 * n_section))
    share = rng.normal(0.03, 0.015, target.size).clip(0.001)  # ~50 % fluctuation
    e_true[np.arange(target.size), n_section + target] = 80.0
    e_true[np.arange(target.size), target] = share * 100.0
    expected = scan_statistical_error(e_true, n_section)
    # 1.2533 * 0.5 / sqrt(400) ~ 3.1 % (share of the total, not of 100 GeV: a little more)
    assert np.all((expected > 0.025) & (expected < 0.04))


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
