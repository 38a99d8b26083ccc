"""The generate() entry point: kinds, determinism, normalisation, signal and scan steering."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from sim.deposits import Deposits, Process
from sim.generator import generate, load_physics_params


@pytest.fixture(scope="module")
def kw(db):
    field, _ = db.data("field", "invis2016", 1)
    return {
        "geometry": db.geometry("invis2016", 1),
        "field_data": field,
        "params": load_physics_params(),
    }


def _equal(a, b) -> bool:
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, Deposits):
            if not _equal(x, y):
                return False
        elif not np.array_equal(x, y, equal_nan=True):
            return False
    return True


def test_determinism_for_a_seed(kw):
    first = generate("physics", 20_000, np.random.default_rng(42), **kw)
    second = generate("physics", 20_000, np.random.default_rng(42), **kw)
    other = generate("physics", 20_000, np.random.default_rng(43), **kw)
    assert first[1] == second[1]
    assert _equal(first[0], second[0])
    assert not (len(first[0]) == len(other[0]) and _equal(first[0], other[0]))


def test_random_kind_is_empty(kw):
    events, n_eot = generate("random", 50, np.random.default_rng(1), **kw)
    assert len(events) == 50 and n_eot == 0
    assert np.all(events.process == Process.NO_PARTICLE)
    assert not events.intime.ecal_GeV.any() and not events.intime.counters_GeV.any()


def test_signal_missing_energy(kw):
    events, n_eot = generate("signal", 2000, np.random.default_rng(2), mass_GeV=0.0167, **kw)
    assert n_eot == 2000
    assert np.all(events.process == Process.APRIME)
    e_ecal = events.intime.ecal_GeV.sum(axis=(1, 2, 3))
    # visible + A' energy = beam energy minus SR and the leakage of the (soft) EM part
    total = (e_ecal + events.e_aprime_GeV)[events.pileup_pdg == 0]
    assert np.median(total / 100.0) == pytest.approx(0.995, abs=0.01)
    assert np.mean(events.e_aprime_GeV > 50.0) > 0.5  # the A' takes most of the energy
    assert not events.intime.hcal_GeV.any(axis=(1, 2, 3))[events.pileup_pdg == 0].any()


def test_ecal_scan_is_steered_to_the_target(kw):
    rng = np.random.default_rng(3)
    target = np.tile([456.5 + 2 * 38.2, -38.2], (500, 1))  # centre of cell (5, 2)
    events, _ = generate("ecal_scan", 500, rng, beam_target_xy_mm=target, pileup=False, **kw)
    assert len(events) > 450
    hottest = events.intime.ecal_GeV[:, 1].reshape(len(events), -1).argmax(axis=1)
    assert np.mean(hottest == 5 * 6 + 2) > 0.95


def test_ecal_scan_at_another_beam_energy_keeps_the_trajectory(kw):
    """The energy scan scales the spectrometer with the beam: 10 GeV electrons hit the aimed
    cell; the nominal momentum given explicitly is the nominal run itself."""
    target = np.tile([456.5, 0.0], (300, 1))  # centre of cell (3, 3)
    events, _ = generate("ecal_scan", 300, np.random.default_rng(4), beam_target_xy_mm=target,
                         pileup=False, beam_momentum_GeV=10.0, **kw)
    assert len(events) > 270
    assert np.median(events.p_true_GeV) == pytest.approx(10.0, rel=0.005)
    e_ecal = events.intime.ecal_GeV.sum(axis=(1, 2, 3))
    assert np.median(e_ecal / events.p_true_GeV) == pytest.approx(0.975, abs=0.01)
    hottest = events.intime.ecal_GeV[:, 1].reshape(len(events), -1).argmax(axis=1)
    shower = events.process != Process.UPSTREAM_BREMS  # else the photon may land elsewhere
    assert np.mean(hottest[shower] == 3 * 6 + 3) > 0.97
    nominal = generate("ecal_scan", 300, np.random.default_rng(4), beam_target_xy_mm=target,
                       pileup=False, **kw)
    explicit = generate("ecal_scan", 300, np.random.default_rng(4), beam_target_xy_mm=target,
                        pileup=False, beam_momentum_GeV=100.0, **kw)
    assert nominal[1] == explicit[1] and _equal(nominal[0], explicit[0])


def test_weights_and_rare_process_bias(kw):
    from dataclasses import replace

    params = kw["params"]
    biased = replace(params, processes=replace(params.processes, dimuon_bias=1000.0))
    events, _ = generate(
        "ecal_scan",
        5000,
        np.random.default_rng(4),
        geometry=kw["geometry"],
        field_data=kw["field_data"],
        params=biased,
        pileup=False,
    )
    dimuon = events.process == Process.DIMUON
    assert 20 < dimuon.sum() < 90  # 1e-5 x 1000 x 5000 = 50
    assert np.allclose(events.weight[dimuon], 1e-3, rtol=0.01)
    assert np.all(events.intime.counters_GeV[dimuon, 3] > 0)  # muons cross V2
    assert events.weight.sum() == pytest.approx(len(events), rel=0.02)


def test_physics_run_populates_regions(kw):
    events, _ = generate("physics", 100_000, np.random.default_rng(5), **kw)
    processes = set(np.unique(events.process))
    assert {Process.HADRON_PASSING, Process.HADRON_SHOWER, Process.MUON_PASSING} <= processes
    had = events.process == Process.HADRONIC
    e_sum = events.intime.ecal_GeV.sum(axis=(1, 2, 3)) + events.intime.hcal_GeV.sum(axis=(1, 2, 3))
    assert np.median(e_sum[had]) == pytest.approx(90.0, abs=10.0)  # region II: E_ECAL + E_HCAL ~ E0
    tracks = events.intime.track_x_mm
    assert np.isfinite(tracks[:, :2]).mean() > 0.99  # upstream trackers see the beam
