"""Field models and propagation: the spec's trajectory numbers, helix vs RK4 map, formats."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from synthetic_tracker_events import _transport

from recon.conditions import ConditionsDB
from recon.tracking.field import FieldMap, field_values, load_field, write_field_map_npz
from recon.tracking.propagation import bending_coefficients, propagate

P_BEAM = 100.0


def _beam_state(p=P_BEAM):
    return np.array([[0.0, 0.0, 0.0, 0.0, -1.0 / p]])


def test_spec_trajectory_of_a_100_GeV_electron(field, geometry):
    """Spec section 2: 21.0 mrad, x = 47.2 after the magnets, 68.2 / 110.2 at GEM3 / GEM4,
    456.5 at the ECAL face (numbers quoted to 0.1 mm)."""
    start = _beam_state()
    at = {z: propagate(start, -3500.0, z, field)[0] for z in (4500.0, 5500.0, 7500.0, 24000.0)}
    deflection_mrad = np.arctan(at[24000.0][2]) * 1e3
    assert deflection_mrad == pytest.approx(0.299792458 * 7.0 / P_BEAM * 1e3, abs=0.01)
    assert deflection_mrad == pytest.approx(21.0, abs=0.05)
    assert abs(at[4500.0][0] - 47.2) < 0.05
    assert abs(at[5500.0][0] - geometry.trackers["GEM3"].x) < 0.05
    assert abs(at[7500.0][0] - geometry.trackers["GEM4"].x) < 0.05
    assert abs(at[24000.0][0] - geometry.ecal.x_centre) < 0.05
    assert at[24000.0][0] > 0.0  # a negative particle bends towards +x


def test_exact_helix_agrees_with_independent_circle_geometry(field, field_data):
    rng = np.random.default_rng(3)
    n = 200
    p = rng.uniform(20.0, 200.0, n)
    states = np.column_stack(
        [
            rng.normal(0, 5, n),
            rng.normal(0, 5, n),
            rng.normal(0, 2e-3, n),
            rng.normal(0, 2e-3, n),
            -1.0 / p,
        ]
    )
    ours = propagate(states, -3500.0, 24000.0, field)
    dipoles = [(d["z_start"], d["z_end"], d["B_y"]) for d in field_data["dipoles"]]
    x, y, tx, ty = _transport(*states[:, :4].T, p, -3500.0, 24000.0, dipoles)
    np.testing.assert_allclose(ours[:, 0], x, atol=1e-6)
    np.testing.assert_allclose(ours[:, 1], y, atol=1e-6)
    np.testing.assert_allclose(ours[:, 2], tx, atol=1e-10)
    np.testing.assert_allclose(ours[:, 3], ty, atol=1e-10)


def test_backward_propagation_inverts_forward(field):
    state = np.array([[1.0, -2.0, 3e-3, -1e-3, -1.0 / 60.0]])
    there = propagate(state, -3000.0, 9000.0, field)
    back = propagate(there, 9000.0, -3000.0, field)
    np.testing.assert_allclose(back, state, atol=1e-9)


def test_rk4_through_a_sampled_field_map_matches_the_helix(field):
    # nodes half a cell off the dipole edges, so the trilinear ramps keep the field integral
    fmap = FieldMap.sample(
        field, (-105.0, 205.0), (-55.0, 55.0), (-105.0, 4605.0), (10.0, 10.0, 10.0)
    )
    states = np.array([[1.0, 2.0, 1e-3, 2e-3, -0.01], [0.0, 0.0, 0.0, 0.0, -1.0 / 80.0]])
    exact = propagate(states, -3000.0, 24000.0, field)
    rk4 = propagate(states, -3000.0, 24000.0, fmap, step_mm=10.0)
    np.testing.assert_allclose(rk4[:, :2], exact[:, :2], atol=1e-3)  # 1 um after 27 m
    np.testing.assert_allclose(rk4[:, 2:4], exact[:, 2:4], atol=1e-8)


def test_trilinear_interpolation_is_exact_for_a_linear_field():
    axes = [np.arange(0.0, 41.0, 10.0), np.arange(-20.0, 21.0, 10.0), np.arange(0.0, 101.0, 25.0)]
    gx, gy, gz = np.meshgrid(*axes, indexing="ij")
    linear = np.stack([0.01 * gx + 0.002 * gz, 1.5 - 0.003 * gy, np.full(gx.shape, 0.02)], axis=-1)
    fmap = FieldMap(
        origin_mm=np.array([0.0, -20.0, 0.0]), spacing_mm=np.array([10.0, 10.0, 25.0]), B_T=linear
    )
    rng = np.random.default_rng(4)
    x, y, z = rng.uniform(0, 40, 50), rng.uniform(-20, 20, 50), rng.uniform(0, 100, 50)
    expected = np.column_stack([0.01 * x + 0.002 * z, 1.5 - 0.003 * y, np.full(50, 0.02)])
    np.testing.assert_allclose(field_values(fmap, x, y, z), expected, atol=1e-12)
    assert np.all(field_values(fmap, [50.0], [0.0], [50.0]) == 0.0)  # outside the grid


def test_field_map_condition_file_and_inline_formats(tmp_path, field):
    fmap = FieldMap.sample(field, (-10.0, 10.0), (-10.0, 10.0), (-5.0, 4505.0), (10.0, 10.0, 10.0))
    folder = tmp_path / "invis2016" / "field"
    folder.mkdir(parents=True)
    write_field_map_npz(folder / "map_v2.npz", fmap)
    header = {"kind": "field", "setup": "invis2016", "valid_runs": [0, 10], "description": "map"}
    (folder / "v2.yaml").write_text(
        yaml.safe_dump(
            {**header, "version": "v2", "data": {"model": "grid_map", "file": "map_v2.npz"}}
        )
    )
    inline = {
        "model": "grid_map",
        "origin_mm": fmap.origin_mm.tolist(),
        "spacing_mm": fmap.spacing_mm.tolist(),
        "shape": list(fmap.B_T.shape[:3]),
        "B_T": fmap.B_T.ravel().tolist(),
    }
    (folder / "v3.yaml").write_text(
        yaml.safe_dump({**header, "version": "v3", "valid_runs": [11, 20], "data": inline})
    )
    db = ConditionsDB([tmp_path])
    for run in (5, 15):
        loaded = load_field(db, "invis2016", run)
        np.testing.assert_array_equal(loaded.B_T, fmap.B_T)
        np.testing.assert_array_equal(loaded.origin_mm, fmap.origin_mm)


def test_bending_coefficients_give_the_field_integral(field, geometry):
    z = np.array([s.z for s in sorted(geometry.trackers.values(), key=lambda s: s.id)])
    g, integral = bending_coefficients(field, z[0], z, (0.0, 4500.0), step_mm=20.0)
    assert integral == pytest.approx(7000.0, rel=1e-9)  # T mm, both magnets
    assert np.all(g[:2] == 0.0) and np.all(g[2:] < 0.0)
    # downstream, small-angle: G = -c int B (z - z_kink), z_kink = 2250 mm (field centroid)
    np.testing.assert_allclose(g[2:], -0.299792458e-3 * 7000.0 * (z[2:] - 2250.0), rtol=1e-5)
