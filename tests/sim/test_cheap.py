"""The fused electron kernel of the cheap stage against the vectorised numpy path."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import gammainc

from sim.beam import sample_beam
from sim.cheap import _helix as helix_fast
from sim.cheap import igam, regularized_lower_gamma
from sim.deposits import Process
from sim.generator import _Context, _stage1, _stage1_numpy, load_physics_params
from sim.transport import _helix


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
