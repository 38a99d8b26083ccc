"""Propagation of a track state along z through the magnetic field.

State at a plane ``z`` (mm): ``(x_mm, y_mm, tx, ty, qop)`` with slopes
``tx = dx/dz``, ``ty = dy/dz`` and ``qop = q/p`` in 1/GeV (q in units of e).

Uniform transverse dipoles (exact helix). In a field ``B = (0, B_y, 0)`` that
depends on z only, ``dp_x/dz = -q c B_y`` and ``p_y`` is conserved
(Lorentz force with ``dz = v_z dt``), so the direction cosine
``u_x(z) = u_x0 - qop c B_y (z - z0)`` is linear in z and, with
``u_z = sqrt(1 - u_x^2 - u_y^2)``,

    x1 = x0 + dz (u_x0 + u_x1) / (u_z0 + u_z1)
    y1 = y0 + u_y / (qop c B_y) * asin(qop c B_y dz W / (1 - u_y^2)),
    W  = u_x0 (u_x0 + u_x1) / (u_z0 + u_z1) + u_z0,

written without cancellation for any field strength (``c = 0.299792458e-3
GeV / (T mm)``). A field with a B_x component is handled by rotating the
frame about z so that the field is along y'. This is the classic helix of
e.g. the PDG review "Passage of particles through matter"/Kinematics, and
of Frühwirth, Strandlie, *Pattern Recognition, Tracking and Vertex
Reconstruction in Particle Detectors* (Springer 2021), ch. 4.

Field maps (4th-order Runge-Kutta). With ``n = sqrt(1 + tx^2 + ty^2)``:

    dtx/dz = qop c n [tx ty B_x - (1 + tx^2) B_y + ty B_z]
    dty/dz = qop c n [(1 + ty^2) B_x - tx ty B_y - tx B_z]

integrated with the classic RK4 scheme in equal steps of at most
``step_mm`` and at most one grid spacing (the trilinear field is only
piecewise smooth) inside the map's z range; outside it the track drifts
straight.
(Bugge, Myrheim, NIM 179 (1981) 365, for RK in track fitting.)
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba.extending import overload

from recon.tracking.field import field_at, field_pack

__all__ = [
    "C_GEV_PER_T_MM",
    "bending_coefficients",
    "propagate",
    "propagate_state",
]

C_GEV_PER_T_MM = 0.299792458e-3  # momentum kick per unit charge: GeV / (T mm)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _asinc(s):
    if abs(s) < 1e-4:
        return 1.0 + s * s / 6.0
    return math.asin(s) / s


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _helix_by(x, y, ux, uy, qop, b_y, dz):
    """Exact step ``dz`` in a uniform field along +y (unit direction in and out)."""
    uz0 = math.sqrt(max(1.0 - ux * ux - uy * uy, 0.0))
    b = qop * C_GEV_PER_T_MM * b_y
    ux1 = ux - b * dz
    c2 = 1.0 - uy * uy
    rest = c2 - ux1 * ux1
    if rest <= 0.0:
        return x, y, ux, uy, False
    uz1 = math.sqrt(rest)
    x1 = x + dz * (ux + ux1) / (uz0 + uz1)
    w = ux * (ux + ux1) / (uz0 + uz1) + uz0
    s = b * dz * w / c2
    if abs(s) >= 1.0:
        return x, y, ux, uy, False
    y1 = y + uy * dz * w / c2 * _asinc(s)
    return x1, y1, ux1, uy, True


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _helix_step(x, y, tx, ty, qop, b_x, b_y, dz):
    """Exact step through a uniform transverse field (B_x, B_y, 0)."""
    n = math.sqrt(1.0 + tx * tx + ty * ty)
    ux, uy = tx / n, ty / n
    b_abs = math.hypot(b_x, b_y)
    if b_abs == 0.0:
        return x + tx * dz, y + ty * dz, tx, ty, True
    ca, sa = b_y / b_abs, b_x / b_abs  # rotation about z that puts B along +y'
    xr, yr = x * ca - y * sa, x * sa + y * ca
    uxr, uyr = ux * ca - uy * sa, ux * sa + uy * ca
    xr, yr, uxr, uyr, ok = _helix_by(xr, yr, uxr, uyr, qop, b_abs, dz)
    x1, y1 = xr * ca + yr * sa, -xr * sa + yr * ca
    ux1, uy1 = uxr * ca + uyr * sa, -uxr * sa + uyr * ca
    uz1 = math.sqrt(max(1.0 - ux1 * ux1 - uy1 * uy1, 1e-300))
    return x1, y1, ux1 / uz1, uy1 / uz1, ok


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _propagate_dipoles(x, y, tx, ty, qop, z0, z1, dipoles):
    """Drifts and exact helices through dipole rows [z_start, z_end, B_x, B_y]."""
    forward = z1 >= z0
    zc = z0
    n = dipoles.shape[0]
    ok = True
    for k in range(n):
        j = k if forward else n - 1 - k
        if forward:
            lo, hi = max(dipoles[j, 0], zc), min(dipoles[j, 1], z1)
            if hi <= lo:
                continue
            x, y = x + tx * (lo - zc), y + ty * (lo - zc)
            x, y, tx, ty, step_ok = _helix_step(
                x, y, tx, ty, qop, dipoles[j, 2], dipoles[j, 3], hi - lo
            )
            zc = hi
        else:
            hi, lo = min(dipoles[j, 1], zc), max(dipoles[j, 0], z1)
            if hi <= lo:
                continue
            x, y = x + tx * (hi - zc), y + ty * (hi - zc)
            x, y, tx, ty, step_ok = _helix_step(
                x, y, tx, ty, qop, dipoles[j, 2], dipoles[j, 3], lo - hi
            )
            zc = lo
        ok = ok and step_ok
    return x + tx * (z1 - zc), y + ty * (z1 - zc), tx, ty, ok


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _slope_derivatives(x, y, z, tx, ty, qop, pack):
    b_x, b_y, b_z = field_at(x, y, z, pack)
    k = qop * C_GEV_PER_T_MM * math.sqrt(1.0 + tx * tx + ty * ty)
    dtx = k * (tx * ty * b_x - (1.0 + tx * tx) * b_y + ty * b_z)
    dty = k * ((1.0 + ty * ty) * b_x - tx * ty * b_y - tx * b_z)
    return dtx, dty


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _rk4_step(x, y, tx, ty, qop, z, h, pack):
    a_tx, a_ty = _slope_derivatives(x, y, z, tx, ty, qop, pack)
    x2, y2 = x + 0.5 * h * tx, y + 0.5 * h * ty
    tx2, ty2 = tx + 0.5 * h * a_tx, ty + 0.5 * h * a_ty
    b_tx, b_ty = _slope_derivatives(x2, y2, z + 0.5 * h, tx2, ty2, qop, pack)
    x3, y3 = x + 0.5 * h * tx2, y + 0.5 * h * ty2
    tx3, ty3 = tx + 0.5 * h * b_tx, ty + 0.5 * h * b_ty
    c_tx, c_ty = _slope_derivatives(x3, y3, z + 0.5 * h, tx3, ty3, qop, pack)
    x4, y4 = x + h * tx3, y + h * ty3
    tx4, ty4 = tx + h * c_tx, ty + h * c_ty
    d_tx, d_ty = _slope_derivatives(x4, y4, z + h, tx4, ty4, qop, pack)
    x_new = x + h / 6.0 * (tx + 2.0 * tx2 + 2.0 * tx3 + tx4)
    y_new = y + h / 6.0 * (ty + 2.0 * ty2 + 2.0 * ty3 + ty4)
    tx_new = tx + h / 6.0 * (a_tx + 2.0 * b_tx + 2.0 * c_tx + d_tx)
    ty_new = ty + h / 6.0 * (a_ty + 2.0 * b_ty + 2.0 * c_ty + d_ty)
    return x_new, y_new, tx_new, ty_new


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _propagate_map(x, y, tx, ty, qop, z0, z1, pack, step_mm):
    frame, grid = pack[0], pack[1]
    z_lo = frame[2]
    z_hi = frame[2] + (grid.shape[2] - 1) * frame[5]
    a, b = max(min(z0, z1), z_lo), min(max(z0, z1), z_hi)
    if b <= a:  # the path does not cross the map
        return x + tx * (z1 - z0), y + ty * (z1 - z0), tx, ty, True
    forward = z1 >= z0
    z_in, z_out = (a, b) if forward else (b, a)
    x, y = x + tx * (z_in - z0), y + ty * (z_in - z0)
    step = min(step_mm, frame[5])  # never step over a grid cell: RK4 needs a smooth field
    n_steps = max(1, math.ceil(abs(z_out - z_in) / step))
    h = (z_out - z_in) / n_steps
    z = z_in
    for _ in range(n_steps):
        x, y, tx, ty = _rk4_step(x, y, tx, ty, qop, z, h, pack)
        z += h
    return x + tx * (z1 - z_out), y + ty * (z1 - z_out), tx, ty, True


def propagate_state(x, y, tx, ty, qop, z0, z1, pack, step_mm):
    """Move one state from plane ``z0`` to ``z1``; returns ``(x, y, tx, ty, ok)`` (numba only).

    Compiled for the field model of ``pack`` (:func:`~recon.tracking.field.field_pack`).
    """
    raise NotImplementedError("propagate_state is called from numba kernels")


@overload(propagate_state, jit_options={"cache": True, "nogil": True, "error_model": "numpy"})
def _propagate_state_overload(x, y, tx, ty, qop, z0, z1, pack, step_mm):
    if len(pack) == 1:

        def dipoles(x, y, tx, ty, qop, z0, z1, pack, step_mm):
            return _propagate_dipoles(x, y, tx, ty, qop, z0, z1, pack[0])

        return dipoles

    def grid_map(x, y, tx, ty, qop, z0, z1, pack, step_mm):
        return _propagate_map(x, y, tx, ty, qop, z0, z1, pack, step_mm)

    return grid_map


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _propagate_many(states, z0, z1, pack, step_mm, out):
    for i in range(states.shape[0]):
        x, y, tx, ty, ok = propagate_state(
            states[i, 0],
            states[i, 1],
            states[i, 2],
            states[i, 3],
            states[i, 4],
            z0[i],
            z1[i],
            pack,
            step_mm,
        )
        if ok:
            out[i, 0], out[i, 1], out[i, 2], out[i, 3] = x, y, tx, ty
        else:
            out[i, :4] = np.nan
        out[i, 4] = states[i, 4]


def propagate(
    states: np.ndarray,
    z_from_mm: float | np.ndarray,
    z_to_mm: float | np.ndarray,
    field,
    *,
    step_mm: float = 20.0,
) -> np.ndarray:
    """Propagate states ``(n, 5)`` = (x_mm, y_mm, tx, ty, qop) between planes.

    ``field`` is a :class:`~recon.tracking.field.UniformDipoles` or
    :class:`~recon.tracking.field.FieldMap`; ``step_mm`` bounds the RK4 step in
    maps. States that cannot reach ``z_to_mm`` (the track curls up) become NaN.
    """
    states = np.atleast_2d(np.asarray(states, dtype=np.float64))
    n = states.shape[0]
    z0 = np.broadcast_to(np.asarray(z_from_mm, dtype=np.float64), (n,)).copy()
    z1 = np.broadcast_to(np.asarray(z_to_mm, dtype=np.float64), (n,)).copy()
    out = np.empty_like(states)
    _propagate_many(states, z0, z1, field_pack(field), float(step_mm), out)
    return out


def bending_coefficients(
    field, z_ref_mm: float, z_mm: np.ndarray, z_range_mm: tuple[float, float], *, step_mm: float
) -> tuple[np.ndarray, float]:
    """Linear (small-angle) bending model of the field along the beam axis.

    Returns ``G(z)`` (mm GeV) such that ``x(z) ~ x0 + tx (z - z_ref) + qop G(z)``
    for a track starting at ``z_ref`` and the field integral ``int B_y dz`` in
    T mm over ``z_range_mm``. Both follow from propagating a stiff
    (``qop = 1e-3 / GeV``) track, so every field model is handled alike.
    """
    qop = 1e-3
    z_mm = np.asarray(z_mm, dtype=np.float64)
    start = np.zeros((z_mm.size, 5))
    start[:, 4] = qop
    end = propagate(start, z_ref_mm, z_mm, field, step_mm=step_mm)
    g = end[:, 0] / qop
    through = propagate(
        np.array([[0.0, 0.0, 0.0, 0.0, qop]]),
        z_range_mm[0] - 1.0,
        z_range_mm[1] + 1.0,
        field,
        step_mm=step_mm,
    )
    n = math.sqrt(1.0 + through[0, 2] ** 2 + through[0, 3] ** 2)
    integral_B_y = -(through[0, 2] / n) / (qop * C_GEV_PER_T_MM)
    return g, float(integral_B_y)
