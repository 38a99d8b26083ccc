"""ECAL cell-scan calibration on a synthetic scan with known gains (10 % spread)."""

import numpy as np
import pytest

from recon.calo.ecal_calibration import (
    EcalCalibration,
    PreshowerMipFit,
    derive_ecal_calibration,
    fit_preshower_mips,
)
from recon.calo.peak_fit import fit_mip_peak
from recon.calo.shower_model import ShowerModel
from recon.conditions import ConditionsDB
from tests.calo.calo_synthetic import ShowerTruthModel, moyal, showers
from tests.conftest import CONDITIONS

GAIN_MAIN_ADC_PER_GEV = 30.0
GAIN_PRE_ADC_PER_GEV = 250.0
AMPLITUDE_NOISE_ADC = 1.2
N_PER_CELL = 250


def random_gains(rng) -> np.ndarray:
    """True gains (ADC/GeV) of the preshower and main cells, (2, 6, 6): 10 % spread."""
    gain = np.empty((2, 6, 6))
    gain[0] = GAIN_PRE_ADC_PER_GEV * (1 + 0.10 * rng.standard_normal((6, 6)))
    gain[1] = GAIN_MAIN_ADC_PER_GEV * (1 + 0.10 * rng.standard_normal((6, 6)))
    return gain


def _digitized(rng, deposits, gain_adc_per_GeV):
    """Amplitudes with white noise, times and the no-signal flag below 5 noise sigmas."""
    amplitude = deposits * gain_adc_per_GeV + rng.normal(0.0, AMPLITUDE_NOISE_ADC, deposits.shape)
    t = rng.normal(0.0, 0.3, deposits.shape)
    flags = np.where(amplitude < 5 * AMPLITUDE_NOISE_ADC, 8, 0).astype(np.uint8)
    return amplitude, t, flags


def cell_scan(rng, n_per_cell, gain_adc_per_GeV, beam_GeV=100.0, shift_x_mm=None):
    """Dense amplitudes, times and flags of a scan: the beam on every cell centre in turn
    (showers displaced along x by ``shift_x_mm[ix]`` if given)."""
    cell = np.repeat(np.arange(36), n_per_cell)
    ix, iy = np.divmod(cell, 6)
    shift = 0.0 if shift_x_mm is None else np.asarray(shift_x_mm)[ix]
    x = (ix - 3) * 38.2 + shift + rng.normal(0.0, 3.0, cell.size)
    y = (iy - 3) * 38.2 + rng.normal(0.0, 3.0, cell.size)
    energy = beam_GeV * (1.0 + 0.01 * rng.standard_normal(cell.size))
    deposits = showers(energy, x, y, rng, ShowerTruthModel(n_spots=1000))
    return (*_digitized(rng, deposits, gain_adc_per_GeV), deposits)


@pytest.fixture(scope="module")
def scan():
    rng = np.random.default_rng(21)
    gain = random_gains(rng)
    amplitude, t, flags, deposits = cell_scan(rng, N_PER_CELL, gain)
    geometry = ConditionsDB([CONDITIONS]).geometry("invis2016", 1)
    fit = derive_ecal_calibration(amplitude, t, flags, geometry.ecal, ShowerModel.load(),
                                  amplitude_noise_adc=np.full((2, 6, 6), AMPLITUDE_NOISE_ADC))
    return fit, 1.0 / gain, deposits


def test_main_section_gains_recovered_within_one_percent(scan):
    fit, true_gain, _ = scan
    ratio = fit.calibration.gain_GeV_per_adc[1] / true_gain[1]
    assert np.abs(ratio - 1).max() < 0.01


def test_preshower_gains(scan):
    fit, true_gain, _ = scan
    ratio = fit.calibration.gain_GeV_per_adc[0] / true_gain[0]
    # the preshower holds ~4 % of the shower and its share fluctuates by ~40 %: the overall
    # scale is fixed to 1 %, each cell to the precision of a mean of 250 such showers
    # (~2.5 %, plus the amplitude noise; this scan: 3.3 %, with the median used before 3.8 %)
    assert abs(ratio.mean() - 1) < 0.01
    assert np.abs(ratio - 1).max() < 0.10
    assert ratio.std() < 0.04


def test_containment_fractions_match_the_truth(scan):
    fit, _, deposits = scan
    towers = deposits.sum(axis=1).reshape(-1, 36)
    central = towers[np.arange(deposits.shape[0]), np.repeat(np.arange(36), N_PER_CELL)]
    assert fit.calibration.containment["central_fraction"] == pytest.approx(
        np.median(central) / 100.0, rel=0.01)
    assert fit.calibration.containment["model_central_fraction"] == pytest.approx(0.83, abs=0.02)


def test_expected_shape_and_round_trip(scan):
    fit, _, _ = scan
    calibration = fit.calibration
    assert calibration.profile_mean[1, 1] > 0.8
    assert calibration.profile_mean.sum() == pytest.approx(1.0)
    assert 0.02 < calibration.preshower_fraction_mean < 0.06
    again = EcalCalibration.from_data(calibration.to_data())
    np.testing.assert_allclose(again.gain_GeV_per_adc, calibration.gain_GeV_per_adc, rtol=1e-6)
    assert fit.summary["energy_sum_over_expected"]["mean"] == pytest.approx(1.0, abs=0.005)


def test_low_energy_tail_does_not_bias_the_scale():
    """Upstream bremsstrahlung-like tail (15 % of the events lose 5-40 % of the energy):
    least squares follows the mean (+1 %); the peak scale keeps the global scale."""
    from recon.calo.ecal_calibration import EcalCalibrationConfig

    rng = np.random.default_rng(23)
    gain = random_gains(rng)
    n_per = 150
    amplitude, t, flags, _ = cell_scan(rng, n_per, gain)
    tail = rng.random(amplitude.shape[0]) < 0.15
    amplitude[tail] *= rng.uniform(0.60, 0.95, tail.sum())[:, None, None, None]
    geometry = ConditionsDB([CONDITIONS]).geometry("invis2016", 1)
    peak = derive_ecal_calibration(amplitude, t, flags, geometry.ecal, ShowerModel.load())
    mean = derive_ecal_calibration(amplitude, t, flags, geometry.ecal, ShowerModel.load(),
                                   EcalCalibrationConfig(peak_scale=False))
    ratio = peak.calibration.gain_GeV_per_adc[1] * gain[1]
    assert abs(ratio.mean() - 1) < 0.005  # measured +0.17 % (least squares alone: +1.06 %)
    assert np.abs(ratio - 1).max() < 0.016  # 150 events per cell, 15 % of them in the tail
    biased = mean.calibration.gain_GeV_per_adc[1] * gain[1]
    # least squares alone: high by the part of the tail that survives the 3-sigma clipping
    assert biased.mean() - ratio.mean() > 0.005
    assert peak.summary["containment"]["least_squares_over_peak_scale"] > 1.005


def test_displaced_showers_are_corrected_per_cell():
    """Showers aimed at the cell centres but displaced along x by 2 mm (ix = 0) to 6 mm
    (ix = 5), as an inclined beam does: the own-cell fraction falls by ~1.5 % across the
    matrix. The neighbour ratios give each cell's displacement (edges from a plane); the
    corrected gains are within 1 % everywhere, the uncorrected ones drift with ix."""
    from recon.calo.ecal_calibration import EcalCalibrationConfig

    rng = np.random.default_rng(31)
    gain = random_gains(rng)
    shift = np.linspace(2.0, 6.0, 6)
    amplitude, t, flags, _ = cell_scan(rng, 200, gain, shift_x_mm=shift)
    geometry = ConditionsDB([CONDITIONS]).geometry("invis2016", 1)
    fits = {on: derive_ecal_calibration(amplitude, t, flags, geometry.ecal, ShowerModel.load(),
                                        EcalCalibrationConfig(displacement_correction=on))
            for on in (True, False)}
    corrected = fits[True].calibration.gain_GeV_per_adc[1] * gain[1]
    plain = fits[False].calibration.gain_GeV_per_adc[1] * gain[1]
    containment = fits[True].calibration.containment
    assert containment["displacement_x_mm_mean"] == pytest.approx(shift.mean(), abs=0.5)
    assert abs(containment["displacement_y_mm_mean"]) < 0.5
    assert np.abs(corrected - 1).max() < 0.0125  # per-cell statistics ~0.4 % (200 events)
    assert corrected.std() < 0.005
    # without the correction the gains follow the own-cell fraction: +x row vs -x row
    trend = plain[5].mean() - plain[0].mean()
    assert trend > 0.008
    assert abs(corrected[5].mean() - corrected[0].mean()) < 0.4 * trend


def test_outer_energy_ratio_and_fluctuation_match_the_truth(scan):
    fit, _, deposits = scan
    towers = deposits.sum(axis=1).reshape(-1, 36)
    target = np.repeat(np.arange(36), N_PER_CELL)
    ix, iy = np.divmod(np.arange(36), 6)
    tx, ty = np.divmod(target, 6)
    inside = (np.abs(ix - tx[:, None]) <= 1) & (np.abs(iy - ty[:, None]) <= 1)
    e_in = np.where(inside, towers, 0.0).sum(axis=1)
    e_out = towers.sum(axis=1) - e_in
    true_ratio = np.array([e_out[target == c].sum() / e_in[target == c].sum() for c in range(36)])
    derived = fit.calibration.outer_ratio.reshape(-1)
    # the mean outside/inside ratio per cell (1-6 %): within 2 % of itself (250 showers,
    # noise of 1.2 ADC counts per cell averages out)
    np.testing.assert_allclose(derived, true_ratio, rtol=0.02)
    residual = e_out - true_ratio[target] * e_in
    true_kappa = np.var(residual) / e_in.mean()
    # the physical fluctuation beyond the noise: within 25 % (noise variance subtracted)
    assert fit.calibration.outer_kappa_GeV == pytest.approx(true_kappa, rel=0.25)
    again = EcalCalibration.from_data(fit.calibration.to_data())
    np.testing.assert_allclose(again.outer_ratio, fit.calibration.outer_ratio, atol=1e-6)
    assert again.outer_kappa_GeV == pytest.approx(fit.calibration.outer_kappa_GeV, rel=1e-5)
    old = fit.calibration.to_data()
    del old["outer_energy"]  # a file written before the outer-energy calibration
    assert EcalCalibration.from_data(old).outer_ratio is None


MIP_PRE_GeV, MIP_PRE_WIDTH_GeV = 0.028, 0.0022    # simulated preshower MIP: 28 MeV, scale 2.2
MIP_MAIN_GeV, MIP_MAIN_WIDTH_GeV = 0.30, 0.02


def muon_scan(rng, n_per_cell, gain_adc_per_GeV):
    """Dense amplitudes, times and flags of muons aimed at every cell in turn: a MIP in the
    preshower and main section of the aimed cell, noise elsewhere; and the aimed cells."""
    cell = np.repeat(np.arange(36), n_per_cell)
    deposits = np.zeros((cell.size, 2, 36))
    deposits[np.arange(cell.size), 0, cell] = moyal(MIP_PRE_GeV, MIP_PRE_WIDTH_GeV, cell.size, rng)
    deposits[np.arange(cell.size), 1, cell] = moyal(MIP_MAIN_GeV, MIP_MAIN_WIDTH_GeV, cell.size,
                                                    rng)
    deposits = deposits.reshape(-1, 2, 6, 6)
    return _digitized(rng, deposits, gain_adc_per_GeV)


@pytest.fixture(scope="module")
def mip_scan():
    rng = np.random.default_rng(31)
    gain = random_gains(rng)
    mips = fit_preshower_mips(*muon_scan(rng, 1500, gain))
    amplitude, t, flags, _ = cell_scan(rng, N_PER_CELL, gain)
    geometry = ConditionsDB([CONDITIONS]).geometry("invis2016", 1)
    model = ShowerModel.load()
    electrons = derive_ecal_calibration(amplitude, t, flags, geometry.ecal, model)
    electrons.inputs = (amplitude, t, flags)
    with_mips = derive_ecal_calibration(amplitude, t, flags, geometry.ecal, model,
                                        preshower_mips=mips)
    return mips, electrons, with_mips, 1.0 / gain


def test_mip_response_does_not_follow_the_noise():
    """The truncated mean of a MIP spectrum does not depend on the noise (the Landau peak of a
    Moyal fit does: down by ~10 % at 2 counts of noise against 0.7)."""
    rng = np.random.default_rng(5)
    n = 4000
    true = moyal(7.0, 0.55, (2, n), rng)    # ADC: preshower MIPs of two cells
    amplitude = np.zeros((n, 2, 6, 6))
    amplitude[:, 1, 0, :2] = 12.0          # aimed at cells 0 and 1 (main-section MIP)
    amplitude[: n // 2, 1, 0, 1] = 0.0
    amplitude[n // 2:, 1, 0, 0] = 0.0
    amplitude[: n // 2, 0, 0, 0] = true[0, : n // 2] + rng.normal(0, 0.7, n // 2)
    amplitude[n // 2:, 0, 0, 1] = true[1, n // 2:] + rng.normal(0, 2.0, n // 2)
    mips = fit_preshower_mips(amplitude, np.zeros(amplitude.shape), np.zeros(amplitude.shape,
                                                                              np.uint8))
    quiet, noisy = mips.peaks[0], mips.peaks[1]
    assert noisy.mu / quiet.mu == pytest.approx(1.0, abs=3 * np.hypot(quiet.mu_error,
                                                                     noisy.mu_error) / quiet.mu)
    assert np.isnan(mips.mpv_adc[2:]).all()      # no muons: no response
    assert fit_mip_peak(amplitude[n // 2:, 0, 0, 1]).mu / fit_mip_peak(
        amplitude[: n // 2, 0, 0, 0]).mu < 0.95


def test_mip_responses_follow_the_true_gains_within_their_error(mip_scan):
    mips, _, _, true_gain = mip_scan
    # the response in GeV is the same in every cell: the relative gains, up to statistics
    # (1500 muons, Moyal scale 2.2 MeV plus 1.2 ADC ~ 4.8 MeV of noise: ~0.5 % per cell)
    mip_GeV = mips.mpv_adc * true_gain[0].reshape(-1)
    error = mips.relative_error
    assert np.all(np.isfinite(mip_GeV)) and np.all(error < 0.01)
    pull = (mip_GeV / mip_GeV.mean() - 1) / error
    assert np.sqrt(np.mean(pull ** 2)) < 1.4
    assert np.abs(pull).max() < 4.0


def test_muon_intercalibration_recovers_the_preshower_gains(mip_scan):
    _, electrons, with_mips, true_gain = mip_scan
    before = electrons.calibration.gain_GeV_per_adc[0] / true_gain[0]
    after = with_mips.calibration.gain_GeV_per_adc[0] / true_gain[0]
    # per cell: the electron mean of 250 showers (~3 %) against a MIP fit (~0.5 %)
    assert before.std() > 0.02
    assert after.std() < 0.008
    # the scale: the electron response averaged over the 36 cells (~3 % / 6)
    assert abs(after.mean() - 1) < 0.015
    # the main section does not suffer from it
    main = with_mips.calibration.gain_GeV_per_adc[1] / true_gain[1]
    assert np.abs(main - 1).max() < 0.01
    assert with_mips.summary["preshower_method"] == "muon_mip_intercalibration"
    assert electrons.summary["preshower_method"] == "electron_scan_mean"
    figures = with_mips.summary["preshower_mip"]
    assert figures["cells_fitted"] == 36 and figures["muons_per_cell_min"] > 1000
    # the electron response per MIP scatters by the electron estimator's own precision
    assert 0.015 < figures["electron_over_mip_rms"] < 0.06


def test_cells_without_muons_keep_the_electron_estimate(mip_scan):
    mips, electrons, _, _ = mip_scan
    no_muons = fit_mip_peak(np.zeros(0))
    partial = PreshowerMipFit([no_muons, *mips.peaks[1:]], [np.zeros(0), *mips.amplitudes[1:]],
                              mips.offset_adc)
    amplitude, t, flags = electrons.inputs
    geometry = ConditionsDB([CONDITIONS]).geometry("invis2016", 1)
    fit = derive_ecal_calibration(amplitude, t, flags, geometry.ecal, ShowerModel.load(),
                                  preshower_mips=partial)
    assert fit.summary["preshower_mip"]["cells_without_fit"] == [0]
    assert fit.summary["preshower_mip"]["cells_fitted"] == 35
    # cell 0 keeps its electron estimate (up to the common scale, refitted)
    ratio = fit.calibration.gain_GeV_per_adc[0] / electrons.calibration.gain_GeV_per_adc[0]
    assert ratio[0, 0] == pytest.approx(np.median(ratio), rel=0.02)


def test_event_time_offsets_recover_the_common_jitter():
    """Four reference channels (HCAL-like MIPs) with their own delays, a 2 ns event jitter and
    0.5 ns per pulse: the offset is the jitter to ~0.5/sqrt(4) ns; a channel without signal or
    piled up is left out; an event without a reference pulse or far out of time has none."""
    from recon.calo.ecal_calibration import event_time_offsets

    rng = np.random.default_rng(41)
    n, m = 4000, 4
    delay = rng.normal(0.0, 3.0, m)
    jitter = rng.normal(0.0, 2.0, n)
    t = delay[None, :] + jitter[:, None] + rng.normal(0.0, 0.5, (n, m))
    amplitude = np.full((n, m), 60.0)
    flags = np.zeros((n, m), np.uint8)
    flags[::7, 1] = 8                        # below threshold: untimed
    t[::7, 1] = np.nan
    flags[::11, 2] = 2                       # a second pulse: the time is not the muon's
    t[::11, 2] += 80.0
    amplitude[::13, 3] = 5.0                 # too small to time
    t[5, :] = np.nan                         # no reference pulse at all
    flags[5, :] = 8
    t[6, :] += 40.0                          # out of time (a piled-up particle took it)
    offset = event_time_offsets(t, flags, amplitude, 20.0)
    assert np.isnan(offset[[5, 6]]).all()
    ok = np.isfinite(offset)
    assert ok.mean() > 0.99
    residual = offset[ok] - jitter[ok]
    # relative to the median event (the channels' references): mean ~0, spread ~0.3 ns
    assert abs(np.median(residual)) < 0.05
    assert 0.2 < residual.std() < 0.4


def test_event_time_amplitudes_remove_the_jitter_loss():
    """Pulses jittering by 2 ns around the channel's time: fitted at the channel's time they
    lose on average (here ~1 %, depending on the position between samples); at the channel's
    time plus the event offset they lose nothing, and noise leaves them unbiased."""
    from recon.calo.ecal_calibration import event_time_amplitudes
    from tests.calo.calo_synthetic import TIMING, analytic_shapes, pulse, waveforms

    rng = np.random.default_rng(43)
    shapes = analytic_shapes()
    k = np.arange(TIMING.n_samples)
    tau = (k - TIMING.in_time_sample) * TIMING.sample_period_ns
    window = (k >= TIMING.in_time_sample - 3) & (k <= TIMING.in_time_sample + 5)
    t0 = np.array([-4.0, 2.5])               # two channels, different delays (ns)
    n = 6000
    channel = np.repeat([0, 1], n // 2)
    jitter = rng.normal(0.0, 2.0, n)
    pedestal = np.array([[150.0, 160.0], [210.0, 205.0]])
    values = np.stack([shapes.values[0], shapes.values[0]])
    for noise, amplitude in ((0.0, np.full(n, 500.0)), (1.5, rng.uniform(3.0, 12.0, n))):
        samples = waveforms(amplitude, t0[channel] + jitter, pedestal[channel],
                            np.full(n, noise), 20.0, rng)
        if noise == 0.0:  # exact samples (no rounding) for the noise-free comparison
            samples = (pedestal[channel][:, k % 2] + amplitude[:, None]
                       * pulse(tau[None, :] - (t0[channel] + jitter)[:, None], 20.0))
        shifted = event_time_amplitudes(samples, channel, jitter, pedestal, values,
                                        shapes.t_first_ns, shapes.step_ns, tau, window, t0)
        at_t0 = event_time_amplitudes(samples, channel, np.zeros(n), pedestal, values,
                                      shapes.t_first_ns, shapes.step_ns, tau, window, t0)
        table = np.stack([shapes.evaluate(0, tau - t0[c]) * window for c in range(2)])
        # at zero shift: the linear least-squares fit of the channel's tabulated template
        signal = samples - pedestal[channel][:, k % 2]
        linear = (signal * table[channel]).sum(axis=1) / (table[channel] ** 2).sum(axis=1)
        np.testing.assert_allclose(at_t0, linear, rtol=1e-6, atol=1e-9)
        if noise == 0.0:
            np.testing.assert_allclose(shifted / amplitude, 1.0, atol=2e-4)
            assert np.mean(at_t0 / amplitude) < 0.995
        else:
            error = noise / np.sqrt((table[channel] ** 2).sum(axis=1))
            pull = (shifted - amplitude) / error
            assert abs(pull.mean()) < 4 / np.sqrt(n)
            assert pull.std() == pytest.approx(1.0, abs=0.05)
    nan_shift = event_time_amplitudes(samples[:3], channel[:3], np.full(3, np.nan), pedestal,
                                      values, shapes.t_first_ns, shapes.step_ns, tau, window,
                                      t0)
    assert np.isnan(nan_shift).all()


def test_mip_responses_ignore_piled_up_showers():
    """A beam electron showering in the readout window of 5 % of the muons (on one cell, with
    part of its preshower deposit in the fits of that cell and its neighbours): the events
    are rejected by their main-section energy and the responses are those without them."""
    rng = np.random.default_rng(47)
    gain = random_gains(rng)
    amplitude, t, flags = muon_scan(rng, 1000, gain)
    hit = rng.random(amplitude.shape[0]) < 0.05
    clean = fit_preshower_mips(amplitude[~hit], t[~hit], flags[~hit])
    piled = amplitude.copy()
    axis = (3, 3)
    piled[hit, 1, axis[0], axis[1]] += rng.uniform(1000.0, 3000.0, hit.sum())
    # the shower's preshower share, partly in the fixed-time window: a few MIPs
    piled[hit, 0, 2:5, 2:5] += rng.exponential(20.0, (hit.sum(), 3, 3))
    with_pileup = fit_preshower_mips(piled, t, flags)
    np.testing.assert_allclose(with_pileup.mpv_adc, clean.mpv_adc, rtol=1e-9)
    # the isolation (no MIP in a neighbouring preshower cell) rejects most of them too;
    # without either the axis cell would be off by several %
    from dataclasses import replace

    from recon.calo.ecal_calibration import EcalCalibrationConfig
    loose = fit_preshower_mips(piled, t, flags,
                               replace(EcalCalibrationConfig(), mip_max_main_over_median=1e9,
                                       mip_isolation_sigma=np.inf))
    assert abs(loose.mpv_adc[3 * 6 + 3] / clean.mpv_adc[3 * 6 + 3] - 1) > 0.02


def test_mip_responses_ignore_muons_assigned_to_a_cell_they_did_not_cross():
    """3 % of the muons leave no main-section MIP (their main cell is then a noise
    fluctuation, most often in the noisiest channels): without the isolation those cells
    collect muons with no preshower deposit and their responses drop; with it the responses
    agree with those of the clean muons within their errors."""
    from dataclasses import replace

    from recon.calo.ecal_calibration import EcalCalibrationConfig

    rng = np.random.default_rng(53)
    gain = random_gains(rng)
    n_per_cell = 1000
    cell = np.repeat(np.arange(36), n_per_cell)
    deposits = np.zeros((cell.size, 2, 36))
    deposits[np.arange(cell.size), 0, cell] = moyal(MIP_PRE_GeV, MIP_PRE_WIDTH_GeV, cell.size,
                                                    rng)
    deposits[np.arange(cell.size), 1, cell] = moyal(MIP_MAIN_GeV, MIP_MAIN_WIDTH_GeV, cell.size,
                                                    rng)
    lost = rng.random(cell.size) < 0.03
    deposits[lost, 1] = 0.0
    amplitude, t, flags = _digitized(rng, deposits.reshape(-1, 2, 6, 6), gain)
    # noisier main channels in one corner: they attract the muons without a main MIP
    noisy = np.zeros((6, 6), bool)
    noisy[:2, :2] = True
    amplitude[:, 1][:, noisy] += rng.normal(0.0, 2.0, (cell.size, noisy.sum()))
    clean = fit_preshower_mips(amplitude[~lost], t[~lost], flags[~lost])
    isolated = fit_preshower_mips(amplitude, t, flags)
    loose = fit_preshower_mips(amplitude, t, flags,
                               replace(EcalCalibrationConfig(), mip_main_min_sigma=-np.inf,
                                       mip_isolation_sigma=np.inf))
    error = clean.relative_error
    pull = (isolated.mpv_adc / clean.mpv_adc - 1) / error
    assert np.abs(pull).max() < 1.0      # the same muons up to a few: far below the error
    drop = 1 - loose.mpv_adc / clean.mpv_adc
    assert drop[noisy.reshape(-1)].mean() > 0.01
