"""The fused electron kernel of the cheap stage against the vectorised numpy path."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import gammainc

from sim.beam import sample_beam
from sim.cheap import (
    REJECT_PROBABILITY,
    _em_contained,
    _em_contained_lower,
    _surely_above,
    igam,
    inc_gamma_table,
    regularized_lower_gamma,
)
from sim.cheap import _helix as helix_fast
from sim.deposits import Process
from sim.generator import _Context, _stage1, _stage1_numpy, load_physics_params
from sim.transport import _helix
from sim.trigger import ecal_thresholds, trigger_config


@pytest.fixture(scope="module")
def ctx(db):
    field, _ = db.data("field", "invis2016", 1)
    return _Context.build(db.geometry("invis2016", 1), field, load_physics_params())


def test_incomplete_gamma_table_accuracy():
    rng = np.random.default_rng(1)
    a = rng.uniform(1.05, 16.0, 200_000)
    x = np.exp(rng.uniform(np.log(1e-6), np.log(80.0), a.size))
    assert np.abs(regularized_lower_gamma(a, x) - gammainc(a, x)).max() < 1e-6
    # outside the table: the exact series / continued fraction
    a2, x2 = rng.uniform(0.3, 40.0, 20_000), rng.uniform(0.0, 300.0, 20_000)
    assert np.abs(regularized_lower_gamma(a2, x2) - gammainc(a2, x2)).max() < 1e-6
    assert igam(2.0, 0.0) == 0.0 and igam(3.0, 1e4) == pytest.approx(1.0)


def test_helix_matches_transport_helix():
    rng = np.random.default_rng(2)
    for _ in range(2000):
        x, y, tx, ty = rng.normal(0, 3), rng.normal(0, 3), rng.normal(0, 0.05), rng.normal(0, 0.05)
        dz, kappa = rng.uniform(10, 2000), rng.uniform(-1e-4, 1e-4)
        ref = np.array(_helix(x, y, tx, ty, dz, kappa))
        new = np.array(helix_fast(x, y, tx, ty, dz, kappa))
        np.testing.assert_allclose(new, ref, rtol=1e-9, atol=1e-9)


def test_electron_kernel_matches_numpy_path(ctx):
    """Same beam through both paths: identical transport, same ECAL total distribution."""
    n = 40_000
    beam = sample_beam(n, np.random.default_rng(3), ctx.params.beam, species="electron")
    fast = _stage1(beam, np.random.default_rng(4), ctx, None, unbiased=False)
    slow = _stage1_numpy(beam, np.random.default_rng(5), ctx, None, unbiased=False)
    assert (fast.flag == 0).mean() > 0.99  # electrons showering: the kernel
    out = fast.take(np.arange(n))
    np.testing.assert_array_equal(out.pdg, beam.pdg)
    plain = (out.process == Process.EM_SHOWER) & (slow.process == Process.EM_SHOWER)
    # transport without brems is deterministic: the same ECAL face state
    np.testing.assert_allclose(out.face[plain], slow.face[plain], rtol=0, atol=1e-9)
    np.testing.assert_allclose(out.p_true[plain], slow.p_true[plain], rtol=1e-12)
    for name in ("s1", "v1", "s2"):
        np.testing.assert_array_equal(getattr(out, name)[plain], getattr(slow, name)[plain])
    # the same process mix and ECAL response (statistical)
    for code in (Process.UPSTREAM_BREMS, Process.HADRONIC):
        p_fast, p_slow = (out.process == code).mean(), (slow.process == code).mean()
        assert abs(p_fast - p_slow) < 5 * np.sqrt(p_slow / n) + 1e-4, code
    e_fast, e_slow = out.e_ecal[plain], slow.e_ecal[plain]
    err = np.std(e_slow) / np.sqrt(e_slow.size)
    assert np.mean(e_fast) == pytest.approx(np.mean(e_slow), abs=5 * err)
    assert np.std(e_fast) == pytest.approx(np.std(e_slow), rel=0.05)
    # the stored shower components are those of the numpy reduction
    np.testing.assert_allclose(out.em[plain, 0, :6], slow.em[plain, 0, :6], atol=1e-9)
    assert np.all(out.em[plain, 1, 0] == 0.0)
    np.testing.assert_array_equal(out.em_in_hcal[plain], slow.em_in_hcal[plain])


def test_contained_lower_bound_is_below_exact(ctx):
    """The early-rejection bound never exceeds the kernel's contained energy."""
    t, g = ctx.electron_tables[False], inc_gamma_table()
    rng = np.random.default_rng(6)
    rect = t.ecal_rect
    n = 3000
    em = np.zeros((n, 1, 8))
    em[:, 0, 0] = rng.uniform(1.0, 120.0, n)
    em[:, 0, 1] = rng.uniform(rect[0] - 100.0, rect[1] + 100.0, n)
    em[:, 0, 2] = rng.uniform(rect[2] - 100.0, rect[3] + 100.0, n)
    em[:, 0, 3:5] = rng.normal(0.0, 0.02, (n, 2))
    em[:, 0, 6] = rng.uniform(1.2, 12.0, n)
    em[:, 0, 7] = rng.uniform(0.15, 1.0, n)
    co = t.contain_origin
    exact = np.array([
        _em_contained(em, i, 0, t.bounds, t.x0_mm, t.contain, co[0], co[1], co[2], g.values,
                      g.a0, g.ha, g.hs, g.a_max, g.x_max, True) for i in range(n)])
    lower = np.array([
        _em_contained_lower(em, i, 0, t.bounds, t.x0_mm, t.contain, co[0], co[1], co[2])
        for i in range(n)])
    assert np.all(lower <= exact)
    # not vacuous: tight for beam-like showers (centre of the matrix, GP a ~ 5, b ~ 0.45)
    central = ((np.abs(em[:, 0, 1] - 0.5 * (rect[0] + rect[1])) < 30)
               & (np.abs(em[:, 0, 2] - 0.5 * (rect[2] + rect[3])) < 30)
               & (em[:, 0, 6] < 8.0) & (em[:, 0, 7] > 0.3))
    assert central.sum() > 10 and np.all(lower[central] > 0.95 * exact[central])


def test_surely_above_is_conservative():
    """Rejected only where P(Gamma(mu/s^2, s^2) < cut) < REJECT_PROBABILITY."""
    s2 = 0.01
    mu, cut = np.meshgrid(np.linspace(5.0, 150.0, 300), np.linspace(1.0, 110.0, 300))
    rejected = np.array(
        [_surely_above(m, c, s2) for m, c in zip(mu.ravel(), cut.ravel(), strict=True)])
    p_pass = gammainc(mu.ravel() / s2, cut.ravel() / s2)
    assert np.all(p_pass[rejected] < REJECT_PROBABILITY)
    assert not np.any(rejected[p_pass > 1e-12])
    assert rejected[(mu.ravel() > 95) & (cut.ravel() < 82)].all()  # 100 GeV e- vs threshold


def test_early_rejection_keeps_the_trigger_candidates(ctx):
    """With the events' thresholds the kernel skips surely rejected particles only."""
    n = 100_000
    beam = sample_beam(n, np.random.default_rng(7), ctx.params.beam)
    config = trigger_config("physics", ctx.params.trigger)
    threshold = ecal_thresholds(n, config, np.random.default_rng(8))
    cut = _stage1(beam, np.random.default_rng(9), ctx, None, unbiased=False, e_cut=threshold)
    full = _stage1(beam, np.random.default_rng(10), ctx, None, unbiased=False)
    skipped = np.isinf(cut.e_ecal)
    assert skipped.mean() > 0.9 and np.all(cut.flag[skipped] == 0)
    assert np.all(np.isfinite(full.e_ecal))
    below_cut, below_full = cut.e_ecal < threshold, full.e_ecal < threshold
    k, m = below_cut.sum(), below_full.sum()
    assert abs(k - m) < 5 * np.sqrt(k + m)  # same candidate rate (about 1.5 % of the beam)
    e_cut, e_full = cut.e_ecal[below_cut], full.e_ecal[below_full]
    err = np.hypot(e_cut.std() / np.sqrt(k), e_full.std() / np.sqrt(m))
    assert e_cut.mean() == pytest.approx(e_full.mean(), abs=5 * err)
