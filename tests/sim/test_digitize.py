"""Digitiser properties on small generated deposits (tolerances stated per test)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

from recon.io.rawformat import BlockType
from sim.deposits import Deposits, Process, TrueEvents
from sim.digitize import apv_station_hits, noise_only_strips, sadc_time_to_peak_ns
from sim.true_constants import read_true_constants, write_true_constants

ECAL, HCAL, COUNTERS = 0, 1, 2          # block order: SADC groups in channel-map order
MM1, GEM3 = 3, 5                        # then APV stations MM1, MM2, GEM3, GEM4


def empty_events(n: int) -> TrueEvents:
    return TrueEvents(
        pdg=np.zeros(n, dtype=np.int32), process=np.full(n, Process.NO_PARTICLE, dtype=np.int8),
        p_true_GeV=np.zeros(n), e_aprime_GeV=np.zeros(n), weight=np.ones(n),
        intime=Deposits.zeros(n), pileup=Deposits.zeros(n), pileup_dt_ns=np.full(n, np.nan),
        pileup_pdg=np.zeros(n, dtype=np.int32),
    )


def sadc(digitized, block: int, n: int) -> np.ndarray:
    b = digitized.blocks[block]
    assert b.type == BlockType.SADC
    return b.samples.reshape(n, -1, b.samples.shape[1]).astype(np.float64)


def test_sadc_pedestals_even_odd_and_noise(digitizer, constants):
    n = 400
    out = digitizer.digitize(empty_events(n), constants, np.random.default_rng(1))
    for block, group in ((ECAL, "ecal"), (HCAL, "hcal"), (COUNTERS, "counters")):
        c = constants.sadc[group]
        samples = sadc(out, block, n)
        even, odd = samples[:, :, 0::2], samples[:, :, 1::2]
        # 6400 samples per parity and channel, noise <= 3 counts: mean known to 0.04; allow 0.15
        np.testing.assert_allclose(even.mean(axis=(0, 2)), c.pedestal_even_adc, atol=0.15)
        np.testing.assert_allclose(odd.mean(axis=(0, 2)), c.pedestal_odd_adc, atol=0.15)
        # rounding adds 1/12 count^2 of variance; RMS known to ~1 %, allow 5 %
        rms = np.sqrt(0.5 * (even.var(axis=(0, 2)) + odd.var(axis=(0, 2))))
        np.testing.assert_allclose(rms, np.sqrt(c.noise_adc**2 + 1 / 12), rtol=0.05)
    assert np.abs(constants.sadc["ecal"].pedestal_even_adc
                  - constants.sadc["ecal"].pedestal_odd_adc).max() > 10.0


def test_true_constants_ranges_and_gain_spread(constants, params, tmp_path):
    for c in constants.sadc.values():
        assert (c.pedestal_even_adc >= 100).all() and (c.pedestal_even_adc <= 300).all()
        assert (c.noise_adc >= 1).all() and (c.noise_adc <= 3).all()
    main = constants.sadc["ecal"]
    gain = main.gain_adc_per_GeV[main.channel_class == "ecal_main"]
    nominal = params["sadc"]["gain_adc_per_GeV"]["ecal_main"]
    # 36 channels, 10 % spread: sample std known to ~12 % of itself, mean to 1.7 %
    assert 0.06 < gain.std() / nominal < 0.14
    assert abs(gain.mean() / nominal - 1) < 0.05
    for strips in constants.apv.values():
        assert (strips.pedestal_adc >= 200).all() and (strips.pedestal_adc <= 700).all()
        assert (strips.noise_adc >= 3).all() and (strips.noise_adc <= 8).all()
    path = tmp_path / "true.json"
    write_true_constants(path, constants)
    back = read_true_constants(path)
    np.testing.assert_array_equal(back.sadc["hcal"].gain_adc_per_GeV,
                                  constants.sadc["hcal"].gain_adc_per_GeV)
    np.testing.assert_array_equal(back.apv["GEM4"].noise_adc, constants.apv["GEM4"].noise_adc)


def _peak_sample(wave: np.ndarray) -> np.ndarray:
    """Parabolic interpolation of the maximum of pedestal-subtracted waveforms (n, samples)."""
    k = np.clip(wave.argmax(axis=1), 1, wave.shape[1] - 2)
    rows = np.arange(wave.shape[0])
    a, b, c = wave[rows, k - 1], wave[rows, k], wave[rows, k + 1]
    return k + 0.5 * (a - c) / (a - 2 * b + c)


def _pedestal(c, n_samples: int) -> np.ndarray:
    ped = np.empty((len(c), n_samples))
    ped[:, 0::2] = c.pedestal_even_adc[:, None]
    ped[:, 1::2] = c.pedestal_odd_adc[:, None]
    return ped


def _hcal13_peaks(digitizer, constants, n, dt_ns, seed):
    """Interpolated peak positions and waveforms of HCAL channel 13 (module 1, centre cell)."""
    events = empty_events(n)
    deposits = events.intime if np.isnan(dt_ns) else events.pileup
    deposits.hcal_GeV[:, 1, 1, 1] = 20.0
    events.pileup_dt_ns[:] = dt_ns
    out = digitizer.digitize(events, constants, np.random.default_rng(seed))
    wave = sadc(out, HCAL, n)[:, 13] - _pedestal(constants.sadc["hcal"], 32)[13]
    return _peak_sample(wave), wave


def test_sadc_in_time_pulse_peaks_near_sample_12_with_gain(digitizer, constants):
    c = constants.sadc["hcal"]
    peak, wave = _hcal13_peaks(digitizer, constants, 300, np.nan, 2)
    # the maximum sits at sample 12 (+ channel offset ~1 ns; jitter 2 ns = 0.16 sample);
    # parabolic interpolation of the asymmetric pulse is biased late by up to half a sample
    assert np.isin(wave.argmax(axis=1), (11, 12, 13)).all()
    assert (wave.argmax(axis=1) == 12).mean() > 0.6
    assert abs(peak.mean() - (12 + c.time_offset_ns[13] / 12.5)) < 0.5
    assert 0.05 < peak.std() < 0.3
    # the largest sample is at most the true amplitude, and within 12 % of it (sampling phase)
    ratio = wave.max(axis=1) / (20.0 * c.gain_adc_per_GeV[13])
    assert 0.88 < np.median(ratio) <= 1.0


def test_sadc_pileup_pulse_is_delayed(digitizer, constants):
    in_time, _ = _hcal13_peaks(digitizer, constants, 300, np.nan, 2)
    late, _ = _hcal13_peaks(digitizer, constants, 300, 50.0, 3)
    # 50 ns = 4 samples; the mean peak positions are known to 0.02 sample each
    assert abs(late.mean() - in_time.mean() - 4.0) < 0.06


def test_sadc_saturates_at_4095(digitizer, constants):
    n = 50
    events = empty_events(n)
    e = np.linspace(10.0, 150.0, n)
    events.intime.ecal_GeV[:, 1, 3, 3] = e              # main section, cell (3, 3): channel 51
    out = digitizer.digitize(events, constants, np.random.default_rng(4))
    samples = sadc(out, ECAL, n)
    assert samples.max() == 4095
    c = constants.sadc["ecal"]
    headroom = 4095 - max(c.pedestal_even_adc[51], c.pedestal_odd_adc[51])
    saturating = e * c.gain_adc_per_GeV[51] > 1.05 * headroom
    assert (samples[saturating, 51].max(axis=1) == 4095).all()
    assert (samples[e * c.gain_adc_per_GeV[51] < 0.9 * headroom, 51].max(axis=1) < 4095).all()
    assert (out.n_saturated == (samples.max(axis=2) == 4095).sum(axis=1)).all()


def test_sadc_shape_time_to_peak():
    t = np.linspace(0, 100, 200001)
    rise, decay = 4.0, 40.0
    f = np.exp(-t / decay) - np.exp(-t / rise)
    assert abs(t[f.argmax()] - sadc_time_to_peak_ns(np.array(rise), np.array(decay))) < 1e-3


def _clusters(b, strips, n, plane, window=4):
    """Centroid (strip units) and size of the cluster around the largest strip of ``plane``.

    Test-side clustering: strips within ``window`` of the maximum; NaN where no strip.
    """
    ped = strips.dense(strips.pedestal_adc)[b.channel]
    amp = (b.samples.astype(np.float64) - ped[:, None]).max(axis=1)
    sel = b.channel // 512 == plane
    event, strip, amp = b.event_index[sel], b.channel[sel] % 512, amp[sel]
    centroid, size = np.full(n, np.nan), np.zeros(n, dtype=int)
    bounds = np.searchsorted(event, np.arange(n + 1))
    for i in range(n):
        s, a = strip[bounds[i]:bounds[i + 1]], amp[bounds[i]:bounds[i + 1]]
        if s.size:
            near = np.abs(s - s[a.argmax()]) <= window
            centroid[i] = np.sum(a[near] * (s[near] + 0.5)) / np.sum(a[near])
            size[i] = near.sum()
    return centroid, size


@pytest.mark.parametrize(("block", "name", "lo_um", "hi_um"),
                         [(MM1, "MM1", 55, 90), (GEM3, "GEM3", 80, 125)])
def test_apv_centroid_resolution_and_cluster_size(digitizer, constants, block, name, lo_um, hi_um):
    station = digitizer.stations[block - MM1]
    n = 3000
    rng = np.random.default_rng(5)
    events = empty_events(n)
    half, s = 0.4 * station.size_mm, station.station
    events.intime.track_x_mm[:, s] = station.centre_mm[0] + rng.uniform(-half, half, n)
    events.intime.track_y_mm[:, s] = station.centre_mm[1] + rng.uniform(-half, half, n)
    out = digitizer.digitize(events, constants, np.random.default_rng(6))
    b = out.blocks[block]
    strips = constants.apv[name]
    centroid, size = _clusters(b, strips, n, plane=0)
    x_local = events.intime.track_x_mm[:, s] - station.centre_mm[0] + station.size_mm / 2
    residual_um = 1e3 * (centroid * station.pitch_mm - x_local)
    # core resolution: noise strips far away make outliers, so use the MAD
    good = np.abs(residual_um) < 1000
    sigma = 1.4826 * np.median(np.abs(residual_um[good] - np.median(residual_um[good])))
    assert lo_um < sigma < hi_um, sigma
    # plane efficiency 95 %: binomial error 0.4 % for 3000 events
    assert abs(good.mean() - 0.95) < 0.02
    assert 2.0 <= size[good].mean() <= 4.0


def test_apv_zero_suppression_noise_strips(digitizer, constants):
    n = 500
    out = digitizer.digitize(empty_events(n), constants, np.random.default_rng(7))
    p_pass = 1 - ndtr(3.0) ** 3
    for station in digitizer.stations:
        b = out.blocks[MM1 + digitizer.stations.index(station)]
        strips = constants.apv[station.detector]
        expected = n * strips.channel.size * p_pass
        # Poisson: sqrt(expected) ~ 3 %; dropped duplicate draws are below 0.5 %
        assert abs(b.channel.size / expected - 1) < 0.12
        excess = b.samples.astype(float) - strips.dense(strips.pedestal_adc)[b.channel][:, None]
        sigma = strips.dense(strips.noise_adc)[b.channel]
        assert (excess.max(axis=1) > 3 * sigma - 0.5).all()
        key = b.event_index * 1024 + b.channel
        assert (np.diff(key) > 0).all()


def test_apv_pedestal_mode_reads_every_strip(digitizer, constants):
    n = 20
    out = digitizer.digitize(empty_events(n), constants, np.random.default_rng(8),
                             zero_suppression=False)
    for station in digitizer.stations:
        b = out.blocks[MM1 + digitizer.stations.index(station)]
        assert b.channel.size == n * 2 * station.n_strips
        assert set(np.unique(b.channel // 512)) == {0, 1}


def test_noise_only_strips_follow_the_conditional_distribution():
    rng = np.random.default_rng(9)
    channels = np.arange(1000)
    event, _, x = noise_only_strips(2000, channels, 3.0, 3, rng)
    assert (x.max(axis=1) > 3.0).all()
    # brute force: the same conditional distribution by rejection
    brute = rng.standard_normal((3_000_000, 3))
    brute = brute[brute.max(axis=1) > 3.0]
    # compare first-sample quantiles (a few thousand entries: allow 0.1)
    q = [0.1, 0.5, 0.9]
    np.testing.assert_allclose(np.quantile(x[:, 0], q), np.quantile(brute[:, 0], q), atol=0.1)
    assert abs(event.size / (2000 * 1000 * (1 - ndtr(3.0) ** 3)) - 1) < 0.05


def test_apv_sample_ratios_follow_hit_time(digitizer, constants):
    station = digitizer.stations[0]
    strips = constants.apv[station.detector]
    n = 1
    u = np.full((n, 2, 2), np.nan)
    u[0, 0, 0] = 40.0
    charge = np.full((n, 2, 2), 2000.0)
    ratios = []
    for t_hit in (-50.0, 0.0, 40.0):
        _, channel, samples = apv_station_hits(
            u, np.array([[t_hit, 0.0]]), charge, station, strips, digitizer.apv,
            np.random.default_rng(10))
        ped = strips.dense(strips.pedestal_adc)[channel]
        signal = samples.astype(float) - ped[:, None]
        main = signal[signal.max(axis=1).argmax()]
        ratios.append(main[0] / main[2])
    # later hits: the first sample sees less of the pulse relative to the last
    assert ratios[0] > ratios[1] > ratios[2]


def test_digitisation_is_deterministic(digitizer, constants):
    rng = np.random.default_rng(11)
    events = empty_events(30)
    events.intime.ecal_GeV[:] = rng.uniform(0, 2, events.intime.ecal_GeV.shape)
    events.intime.track_x_mm[:] = rng.normal(0, 3, (30, 4)) + np.array([0, 0, 68.2, 110.2])
    events.intime.track_y_mm[:] = rng.normal(0, 3, (30, 4))
    a = digitizer.digitize(events, constants, np.random.default_rng(12))
    b = digitizer.digitize(events, constants, np.random.default_rng(12))
    for x, y in zip(a.blocks, b.blocks, strict=True):
        np.testing.assert_array_equal(x.samples, y.samples)
        np.testing.assert_array_equal(x.channel, y.channel)


def test_hcal_mip_stands_well_above_noise(digitizer, constants):
    n = 300
    events = empty_events(n)
    events.intime.hcal_GeV[:, :, 1, 1] = 2.5            # a MIP in each module's centre cell
    out = digitizer.digitize(events, constants, np.random.default_rng(13))
    c = constants.sadc["hcal"]
    centre = np.array([4, 13, 22, 31])
    wave = sadc(out, HCAL, n)[:, centre] - _pedestal(c, 32)[centre]
    # pulse height over noise: nominal 62 counts against at most 3 counts rms
    snr = wave.max(axis=2) / c.noise_adc[centre]
    assert np.quantile(snr, 0.01) > 10
