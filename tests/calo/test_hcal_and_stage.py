"""HCAL MIP calibration and the whole stage on synthetic events (showers, muons, counters)."""

from dataclasses import replace

import numpy as np
import pytest

from recon.calo.calo_stage import CaloConditions, CaloConfig, calo_events, calo_from_digits
from recon.calo.hcal_calibration import derive_hcal_calibration, plot_hcal_calibration
from recon.calo.peak_fit import fit_mip_peak, fit_peak
from recon.calo.waveform import reconstruct_waveforms
from tests.calo.calo_synthetic import (
    RISE_NS,
    TIMING,
    ShowerTruthModel,
    analytic_shapes,
    digits,
    group_digits,
    hits,
    moyal,
    showers,
)

MIP_GeV = 2.5


def _events(rng, truth, ecal_GeV, hcal_GeV, counters_GeV):
    """Flat hits of the three groups for dense deposits, every pulse in time (random phase)."""
    n = ecal_GeV.shape[0]
    phase = rng.uniform(-6.25, 6.25, (n, 1))
    samples = {name: group_digits(dep.reshape(n, -1), truth[name], RISE_NS[name], rng, phase)
               for name, dep in (("ecal", ecal_GeV), ("hcal", hcal_GeV),
                                 ("counters", counters_GeV))}
    return samples, {name: hits(s, n) for name, s in samples.items()}


def _muons(rng, n):
    cell = rng.integers(0, 9, n)
    hcal = np.zeros((n, 4, 9))
    hcal[np.arange(n), :, cell] = moyal(MIP_GeV, 0.25, (4, n), rng).T
    return hcal.reshape(n, 4, 3, 3)


def test_mip_peak_estimators():
    rng = np.random.default_rng(50)
    assert fit_mip_peak(moyal(MIP_GeV, 0.25, 300, rng)).mu == pytest.approx(MIP_GeV, rel=0.03)
    assert fit_peak(rng.normal(7.0, 0.5, 300)).mu == pytest.approx(7.0, abs=0.1)


def test_hcal_mip_calibration(truth, conditions, tmp_path):
    rng = np.random.default_rng(51)
    n = 2000
    hcal_GeV = _muons(rng, n)
    _, flat = _events(rng, truth, np.zeros((n, 2, 6, 6)), hcal_GeV, np.zeros((n, 11)))
    h = flat["hcal"]
    fit = reconstruct_waveforms(h.samples, np.ones(h.samples.shape[0], np.int64),
                                truth["hcal"].pedestal_adc[h.channel_index],
                                truth["hcal"].noise_adc[h.channel_index], analytic_shapes(),
                                TIMING)
    dense = [h.dense(v, 36).reshape(n, 4, 3, 3) for v in (fit.amplitude_adc, fit.t_ns, fit.flags)]
    result = derive_hcal_calibration(*dense)
    ratio = result.calibration.gain_GeV_per_adc.reshape(-1) * truth["hcal"].gain_adc_per_GeV
    assert np.abs(ratio - 1).max() < 0.05
    assert abs(ratio.mean() - 1) < 0.02
    assert result.summary["fallback_cells"] == []
    plot_hcal_calibration(result, tmp_path / "hcal.png")
    # the reconstructed MIP peak per module with these constants
    derived = CaloConditions(**{**vars(conditions), "hcal": result.calibration})
    output = calo_events(flat["ecal"], h, flat["counters"], derived)
    for module in range(4):
        peak = fit_mip_peak(output.events["e_hcal_module_GeV"][:, module])
        assert peak.mu == pytest.approx(MIP_GeV, rel=0.05)


@pytest.fixture(scope="module")
def shower_events(truth, conditions):
    rng = np.random.default_rng(52)
    energies = np.repeat([10.0, 30.0, 60.0, 100.0], 300)
    x, y = rng.normal(0.0, 3.0, energies.size), rng.normal(0.0, 3.0, energies.size)
    ecal_GeV = showers(energies, x, y, rng, ShowerTruthModel(n_spots=2000))
    counters_GeV = np.zeros((energies.size, 11))
    counters_GeV[:, [0, 2]] = 0.001  # S1, S2 fire
    _, flat = _events(rng, truth, ecal_GeV, np.zeros((energies.size, 4, 3, 3)), counters_GeV)
    output = calo_events(flat["ecal"], flat["hcal"], flat["counters"], conditions)
    empty = np.zeros((400, 2, 6, 6))
    _, noise_flat = _events(rng, truth, empty, np.zeros((400, 4, 3, 3)), np.zeros((400, 11)))
    noise = calo_events(noise_flat["ecal"], noise_flat["hcal"], noise_flat["counters"], conditions)
    return energies, ecal_GeV, output.events, noise.events


def test_ecal_linearity_within_one_percent(shower_events):
    energies, deposits, events, _ = shower_events
    true_visible = deposits.sum(axis=(1, 2, 3))
    for energy in np.unique(energies):
        at = energies == energy
        response = events["e_ecal_GeV"][at].mean() / true_visible[at].mean()
        assert response == pytest.approx(1.0, abs=0.01), energy


def test_ecal_resolution_consistent_with_stochastic_and_constant_terms(shower_events):
    energies, _, events, noise = shower_events
    sigma_noise = np.std(noise["e_ecal_GeV"])  # electronics noise of the 72-channel sum
    model = ShowerTruthModel(n_spots=2000)
    contained = 0.977  # lateral containment on cell (3, 3); binomial fluctuation over the spots
    var_leak = contained * (1 - contained) / model.n_spots
    for energy in np.unique(energies):
        at = energies == energy
        measured = np.std(events["e_ecal_GeV"][at]) / energy
        expected = np.sqrt(0.10**2 / energy + 0.01**2 + (sigma_noise / energy) ** 2 + var_leak)
        assert measured == pytest.approx(expected, rel=0.2), energy
    assert sigma_noise < 0.5


def test_ecal_position_shape_and_counters(shower_events):
    energies, _, events, _ = shower_events
    assert (events["ecal_max_ix"] == 3).all() and (events["ecal_max_iy"] == 3).all()
    assert np.abs(np.median(events["x_ecal_shower_mm"]) - 456.5) < 2.0
    assert np.median(events["ecal_shape_chi2"][energies == 100]) < 3.0
    assert np.isfinite(events["ecal_shape_chi2"]).all()
    assert events["e_ecal_3x3_GeV"].mean() > 0.9 * events["e_ecal_intime_GeV"].mean()
    assert events["s1_GeV"] == pytest.approx(0.001, rel=0.05)
    assert np.isnan(events["v1_t_ns"]).mean() > 0.99  # no pulse, but for rare noise spikes
    assert np.abs(events["s2_t_ns"]).max() < 8.0  # the random sampling phase: +-6.25 ns
    assert not events["ecal_pileup"].any()
    assert np.std(events["e_hcal_GeV"]) < 0.25  # electronics noise of 18 HCAL channels
    assert abs(np.mean(events["e_hcal_GeV"])) < 0.03


def test_stage_from_awkward_digits(truth, conditions):
    rng = np.random.default_rng(53)
    n = 20
    deposits = showers(np.full(n, 50.0), np.zeros(n), np.zeros(n), rng)
    samples, _ = _events(rng, truth, deposits, _muons(rng, n), np.zeros((n, 11)))
    chunk = digits(samples["ecal"], samples["hcal"], samples["counters"], n)
    events = calo_from_digits(chunk, conditions, CaloConfig())
    assert len(events) == n
    assert events.fields[0] == "e_ecal_GeV"
    assert np.allclose(np.asarray(events.e_ecal_GeV), deposits.sum(axis=(1, 2, 3)), rtol=0.05)
    assert (np.asarray(events.e_hcal_module_GeV) > 1.0).all()
    assert len(events.ecal_cells[0]) == 72


def test_shower_energy_is_unbiased_with_less_noise(truth, conditions, shower_events):
    energies, deposits, events, _ = shower_events
    # without the outer-energy calibration: the in-time sum
    np.testing.assert_array_equal(events["e_ecal_shower_GeV"], events["e_ecal_intime_GeV"])
    # the calibration from the 100 GeV showers (as the cell scan gives it): mean outside/inside
    # 3x3 tower ratio on the hit cell (3, 3) and the physical variance of the outside energy
    towers = deposits.sum(axis=1).reshape(-1, 36)
    ix, iy = np.divmod(np.arange(36), 6)
    inside = (np.abs(ix - 3) <= 1) & (np.abs(iy - 3) <= 1)
    ref = energies == 100.0
    e_in, e_out = towers[ref][:, inside].sum(axis=1), towers[ref][:, ~inside].sum(axis=1)
    rho = e_out.sum() / e_in.sum()
    kappa = np.var(e_out - rho * e_in) / e_in.mean()
    calibration = replace(conditions.ecal, outer_ratio=np.full((6, 6), rho),
                          outer_kappa_GeV=float(kappa))
    derived = CaloConditions(**{**vars(conditions), "ecal": calibration})
    counters_GeV = np.zeros((energies.size, 11))
    counters_GeV[:, [0, 2]] = 0.001
    _, flat = _events(np.random.default_rng(53), truth, deposits,
                      np.zeros((energies.size, 4, 3, 3)), counters_GeV)
    shower = calo_events(flat["ecal"], flat["hcal"], flat["counters"], derived).events
    visible = deposits.sum(axis=(1, 2, 3))
    for energy in np.unique(energies):
        at = energies == energy
        plain = shower["e_ecal_GeV"][at] - visible[at]
        better = shower["e_ecal_shower_GeV"][at] - visible[at]
        # unbiased: the mean within 0.3 % of the energy of the all-cell sum's
        assert abs(better.mean() - plain.mean()) < 0.003 * energy, energy
        if energy <= 30.0:  # the noise of 63 of the 72 cells mostly gone at low energy
            assert better.std() < 0.8 * plain.std(), energy
        else:
            assert better.std() < 1.05 * plain.std(), energy
