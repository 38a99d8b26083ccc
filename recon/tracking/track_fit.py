"""Track finding and momentum fit over all events (numba), with the deflection cross-check.

Units: mm, GeV; ``qop = q/p`` in 1/GeV. Track parameters ``(x, y, tx, ty, qop)``
at the reference plane ``z_ref`` (the most upstream station).

Finding. Per event every combination of one space point (or none) per station
is tried (:mod:`recon.tracking.space_points` bounds their number). A
combination needs ``min_x_planes`` x and ``min_y_planes`` y measurements,
``min_measurements`` in all, and a solvable seed. The seed is the linear
small-angle model ``x_i = x + tx dz_i + qop G_i``, ``y_i = y + ty dz_i``,
with the bending coefficients ``G_i`` of the field
(:func:`~recon.tracking.propagation.bending_coefficients`), solved by weighted
least squares (errors inflated by ``seed_extra_error_mm`` for scattering).
A combination failing ``chi2/ndf <= seed_chi2ndf_max`` loses its worst
coordinate (largest normalised residual: a noise cluster paired with a real
one) and is refitted, up to ``max_dropped_measurements`` times. Accepted
combinations are candidates, ranked by number of measurements, then by
``chi2 + (tx^2 + ty^2) / rank_angle^2``: a weak preference for the beam
direction that breaks the tie between a track and a noise cluster when only
three x points exist (the x fit then has no redundancy).

``n_track_candidates`` counts the candidates picked greedily in that order
that share no X-plane cluster with an earlier pick and have a seed momentum
in ``[p_min_GeV, p_max_GeV]``; after the first, only candidates with more
than ``min_x_planes`` x points count (with exactly three, any three noise
clusters fit the three x parameters). Only bending-plane clusters count:
with two tracks the X-Y association is ambiguous (ghost combinations fit as
well as the true ones), the X one is not. A second in-time particle gives 2.

Fit. The best candidate is fitted with the full model: the measurement
prediction is the exact propagation (helix or RK4) from ``z_ref`` and the
measurement covariance includes multiple scattering in every tracker plane
(a process-noise term, Highland formula, PDG review "Passage of particles
through matter", eq. 34.16)

    V_ij = sigma_i^2 delta_ij + sum_{k: z_k < z_i, z_j} theta_k^2 (z_i - z_k)(z_j - z_k),
    theta_k = 13.6 MeV / p * sqrt(x_k/X0) * (1 + 0.038 ln(x_k/X0)),

separately for x and y. Gauss-Newton iterations minimise
``chi2 = r^T V^-1 r`` with a finite-difference Jacobian; the parameter
covariance is ``(H^T V^-1 H)^-1`` (a global chi2 fit with correlated
scattering errors, equivalent to a Kalman filter with process noise:
Frühwirth, NIM A 262 (1987) 444; Billoir, NIM 225 (1984) 352). If the fit
has ``chi2/ndf > chi2ndf_max``, the measurement with the largest normalised
residual is removed (when the requirements allow) and the fit repeated.

Deflection cross-check: with a field ``B_y(z)``, ``Delta p_x = -q c int B_y dz``
exactly, so from the upstream and downstream straight segments
``p = |c int B_y dz / (u_x,out - u_x,in)|`` (``u_x`` the direction cosine).
"""

from __future__ import annotations

import math
from collections import namedtuple
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from recon.tracking.field import field_pack, field_z_range_mm, is_dipole_pack
from recon.tracking.propagation import C_GEV_PER_T_MM, bending_coefficients, propagate_state
from recon.tracking.space_points import SpacePoints, StationLayout

__all__ = ["FitConfig", "TrackFitResult", "find_and_fit_tracks"]

_Workspace = namedtuple(
    "_Workspace", "pred_x pred_y px2 py2 jac cov_m resid normal rhs col cov_p step theta2"
)


@dataclass(frozen=True)
class FitConfig:
    """Requirements, cuts and numerics of track finding and fitting."""

    min_x_planes: int
    min_y_planes: int
    min_measurements: int
    seed_extra_error_mm: float
    seed_chi2ndf_max: float
    max_dropped_measurements: int
    rank_angle_mrad: float
    chi2ndf_max: float
    max_iterations: int
    p_min_GeV: float
    p_max_GeV: float
    rk4_step_mm: float
    max_candidates: int

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> FitConfig:
        ints = (
            "min_x_planes",
            "min_y_planes",
            "min_measurements",
            "max_iterations",
            "max_candidates",
            "max_dropped_measurements",
        )
        return cls(**{k: (int(v) if k in ints else float(v)) for k, v in data.items()})


@dataclass(frozen=True)
class TrackFitResult:
    """Per-event fit output; NaN (or -1 / False) where no track was found.

    ``state_ref`` (n, 5) at ``z_ref_mm``, ``cov_ref`` (n, 5, 5), ``state_out``
    at the most downstream station, ``meas_*`` / ``pred_*`` (n, n_stations)
    measured and fitted coordinates of the best track (for alignment).
    """

    z_ref_mm: float
    z_out_mm: float
    n_candidates: np.ndarray
    found: np.ndarray
    converged: np.ndarray
    state_ref: np.ndarray
    cov_ref: np.ndarray
    chi2: np.ndarray
    ndf: np.ndarray
    state_out: np.ndarray
    x_ecal_mm: np.ndarray
    y_ecal_mm: np.ndarray
    p_deflection_GeV: np.ndarray
    meas_x: np.ndarray
    meas_y: np.ndarray
    pred_x: np.ndarray
    pred_y: np.ndarray


# ---------------------------------------------------------------- small dense algebra


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _cholesky(a, n, rel_tol):
    """In-place lower Cholesky factor of the leading n x n block; False if not positive."""
    for j in range(n):
        s = a[j, j]
        for k in range(j):
            s -= a[j, k] * a[j, k]
        if s <= rel_tol * abs(a[j, j]) or s <= 0.0:
            return False
        d = math.sqrt(s)
        a[j, j] = d
        for i in range(j + 1, n):
            s = a[i, j]
            for k in range(j):
                s -= a[i, k] * a[j, k]
            a[i, j] = s / d
    return True


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _forward(l_mat, n, b):
    """Solve L y = b in place (L lower, leading n x n)."""
    for i in range(n):
        s = b[i]
        for k in range(i):
            s -= l_mat[i, k] * b[k]
        b[i] = s / l_mat[i, i]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _backward(l_mat, n, b):
    """Solve L^T x = b in place."""
    for i in range(n - 1, -1, -1):
        s = b[i]
        for k in range(i + 1, n):
            s -= l_mat[k, i] * b[k]
        b[i] = s / l_mat[i, i]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _cholesky_inverse(l_mat, n, out, col):
    for j in range(n):
        col[:n] = 0.0
        col[j] = 1.0
        _forward(l_mat, n, col)
        _backward(l_mat, n, col)
        out[:n, j] = col[:n]


# ---------------------------------------------------------------- seed (linear model)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _seed_fit(st_sel, x, y, sx, sy, dz, g, extra, mat, vec):
    """Weighted linear fit of one combination; returns (ok, chi2, ndf, x0, tx, qop, y0, ty)."""
    n_xpar = np.int64(3)  # np.int64: a literal would compile a specialisation per value
    mat[:, :] = 0.0
    vec[:] = 0.0
    nx = 0
    ny = 0
    for m in range(st_sel.shape[0]):
        s = st_sel[m]
        if s < 0:
            continue
        if not math.isnan(x[m]):
            w = 1.0 / (sx[m] * sx[m] + extra * extra)
            val = x[m]
            basis = (1.0, dz[s], g[s])
            for a in range(n_xpar):
                vec[a] += w * basis[a] * val
                for b in range(n_xpar):
                    mat[a, b] += w * basis[a] * basis[b]
            nx += 1
        if not math.isnan(y[m]):
            w = 1.0 / (sy[m] * sy[m] + extra * extra)
            mat[3, 3] += w
            mat[3, 4] += w * dz[s]
            mat[4, 4] += w * dz[s] * dz[s]
            vec[3] += w * y[m]
            vec[4] += w * y[m] * dz[s]
            ny += 1
    if nx < n_xpar or ny < 2:
        return False, 0.0, 0, 0.0, 0.0, 0.0, 0.0, 0.0
    if not _cholesky(mat, n_xpar, 1e-12):
        return False, 0.0, 0, 0.0, 0.0, 0.0, 0.0, 0.0
    _forward(mat, n_xpar, vec)
    _backward(mat, n_xpar, vec)
    # y block: 2 x 2 normal equations solved directly
    det = mat[3, 3] * mat[4, 4] - mat[3, 4] * mat[3, 4]
    if det <= 1e-12 * mat[3, 3] * mat[4, 4]:
        return False, 0.0, 0, 0.0, 0.0, 0.0, 0.0, 0.0
    y0 = (mat[4, 4] * vec[3] - mat[3, 4] * vec[4]) / det
    ty = (mat[3, 3] * vec[4] - mat[3, 4] * vec[3]) / det
    x0, tx = vec[0], vec[1]
    qop = vec[2]
    chi2 = 0.0
    for m in range(st_sel.shape[0]):
        s = st_sel[m]
        if s < 0:
            continue
        if not math.isnan(x[m]):
            r = x[m] - x0 - tx * dz[s] - qop * g[s]
            chi2 += r * r / (sx[m] * sx[m] + extra * extra)
        if not math.isnan(y[m]):
            r = y[m] - y0 - ty * dz[s]
            chi2 += r * r / (sy[m] * sy[m] + extra * extra)
    return True, chi2, nx + ny - n_xpar - 2, x0, tx, qop, y0, ty


# ---------------------------------------------------------------- full fit


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _predict(par, z_ref, st_z, order, pack, step, pred_x, pred_y):
    """Propagate parameters to every station (in z order); False if a step fails."""
    x, y, tx, ty, qop = par[0], par[1], par[2], par[3], par[4]
    z = z_ref
    for j in range(order.shape[0]):
        s = order[j]
        x, y, tx, ty, ok = propagate_state(x, y, tx, ty, qop, z, st_z[s], pack, step)
        if not ok:
            return False
        z = st_z[s]
        pred_x[s], pred_y[s] = x, y
    return True


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _highland(p, x_over_x0):
    return 0.0136 / p * math.sqrt(x_over_x0) * (1.0 + 0.038 * math.log(x_over_x0))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _measurement_covariance(n_m, m_st, m_coord, m_sig, st_z, st_x0, p, theta2, cov):
    n_st = st_z.shape[0]
    for k in range(n_st):
        th = _highland(p, st_x0[k])
        theta2[k] = th * th
    for a in range(n_m):
        za = st_z[m_st[a]]
        for b in range(a + 1):
            v = 0.0
            if m_coord[a] == m_coord[b]:
                zb = st_z[m_st[b]]
                for k in range(n_st):
                    zk = st_z[k]
                    if zk < za and zk < zb:
                        v += theta2[k] * (za - zk) * (zb - zk)
            if a == b:
                v += m_sig[a] * m_sig[a]
            cov[a, b] = v
            cov[b, a] = v


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _jacobian(par, n_par, n_m, m_st, m_coord, z_ref, st_z, order, pack, step, ws):
    """d(prediction)/d(parameter) by forward differences; analytic x, y columns for dipoles."""
    h = ws.step
    h[0], h[1], h[2], h[3], h[4] = 1e-2, 1e-2, 1e-6, 1e-6, 1e-5 * abs(par[4]) + 1e-9
    analytic = is_dipole_pack(pack)  # x, y enter linearly and uncoupled
    for j in range(n_par):
        if analytic and j < 2:
            for a in range(n_m):
                ws.jac[a, j] = 1.0 if m_coord[a] == j else 0.0
            continue
        hj = h[j]
        par[j] += hj
        ok = _predict(par, z_ref, st_z, order, pack, step, ws.px2, ws.py2)
        par[j] -= hj
        if not ok:
            return False
        for a in range(n_m):
            s = m_st[a]
            d = (ws.px2[s] - ws.pred_x[s]) if m_coord[a] == 0 else (ws.py2[s] - ws.pred_y[s])
            ws.jac[a, j] = d / hj
    return True


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _whitened_residuals(n_m, m_st, m_coord, m_val, ws):
    """Residuals at the last prediction, whitened with the Cholesky factor in ``ws.cov_m``."""
    for a in range(n_m):
        s = m_st[a]
        ws.resid[a] = m_val[a] - (ws.pred_x[s] if m_coord[a] == 0 else ws.pred_y[s])
    _forward(ws.cov_m, n_m, ws.resid)
    chi2 = 0.0
    for a in range(n_m):
        chi2 += ws.resid[a] * ws.resid[a]
    return chi2


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _normal_equations(n_par, n_m, ws):
    """Whiten the Jacobian and form H^T V^-1 H (in ``ws.normal``) and H^T V^-1 r (``ws.rhs``)."""
    for j in range(n_par):
        for a in range(n_m):
            ws.col[a] = ws.jac[a, j]
        _forward(ws.cov_m, n_m, ws.col)
        for a in range(n_m):
            ws.jac[a, j] = ws.col[a]
    for i in range(n_par):
        s = 0.0
        for a in range(n_m):
            s += ws.jac[a, i] * ws.resid[a]
        ws.rhs[i] = s
        for j in range(i + 1):
            s = 0.0
            for a in range(n_m):
                s += ws.jac[a, i] * ws.jac[a, j]
            ws.normal[i, j] = s
            ws.normal[j, i] = s


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _outlier(n_m, m_st, m_coord, m_val, m_sig, ws, min_x, min_y, min_meas):
    """Index of the largest normalised residual whose removal keeps the requirements, or -1."""
    nx = 0
    for a in range(n_m):
        nx += 1 if m_coord[a] == 0 else 0
    ny = n_m - nx
    worst, k = -1.0, -1
    for a in range(n_m):
        if (
            n_m - 1 < min_meas
            or (m_coord[a] == 0 and nx - 1 < min_x)
            or (m_coord[a] == 1 and ny - 1 < min_y)
        ):
            continue
        pred = ws.pred_x[m_st[a]] if m_coord[a] == 0 else ws.pred_y[m_st[a]]
        r = abs(m_val[a] - pred) / m_sig[a]
        if r > worst:
            worst, k = r, a
    return k


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _remove_measurement(k, n_m, m_st, m_coord, m_val, m_sig):
    for a in range(k, n_m - 1):
        m_st[a], m_coord[a], m_val[a], m_sig[a] = (
            m_st[a + 1],
            m_coord[a + 1],
            m_val[a + 1],
            m_sig[a + 1],
        )
    return n_m - 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _full_fit(
    par,
    n_par,
    n_m,
    m_st,
    m_coord,
    m_val,
    m_sig,
    z_ref,
    st_z,
    st_x0,
    order,
    pack,
    step,
    max_iter,
    prior_qop,
    prior_w,
    ws,
):
    """Gauss-Newton fit, ``par`` updated in place; returns (ok, converged, chi2).

    ``prior_w > 0`` adds the constraint ``prior_w (qop - prior_qop)^2`` (not
    counted in the returned measurement chi2).

    Converged when every update is below 1% of the parameter's error; the
    covariance (``ws.cov_p``) is that of the last iteration.
    """
    converged = False
    for _ in range(max_iter):
        if not _predict(par, z_ref, st_z, order, pack, step, ws.pred_x, ws.pred_y):
            return False, False, np.nan
        if not _jacobian(par, n_par, n_m, m_st, m_coord, z_ref, st_z, order, pack, step, ws):
            return False, False, np.nan
        p = 1.0 / max(abs(par[4]), 1e-6)
        _measurement_covariance(n_m, m_st, m_coord, m_sig, st_z, st_x0, p, ws.theta2, ws.cov_m)
        if not _cholesky(ws.cov_m, n_m, 0.0):
            return False, False, np.nan
        _whitened_residuals(n_m, m_st, m_coord, m_val, ws)
        _normal_equations(n_par, n_m, ws)
        ws.normal[4, 4] += prior_w
        ws.rhs[4] += prior_w * (prior_qop - par[4])
        if not _cholesky(ws.normal, n_par, 1e-14):
            return False, False, np.nan
        _cholesky_inverse(ws.normal, n_par, ws.cov_p, ws.col)
        _forward(ws.normal, n_par, ws.rhs)
        _backward(ws.normal, n_par, ws.rhs)
        converged = True
        for j in range(n_par):
            par[j] += ws.rhs[j]
            converged = converged and abs(ws.rhs[j]) < 0.01 * math.sqrt(ws.cov_p[j, j])
        if converged:
            break
    if not _predict(par, z_ref, st_z, order, pack, step, ws.pred_x, ws.pred_y):
        return False, False, np.nan
    return True, converged, _whitened_residuals(n_m, m_st, m_coord, m_val, ws)


# ---------------------------------------------------------------- the event loop


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _segment_slope(idx_row, stations_on_side, st_z, pt_x):
    """Least-squares slope dx/dz of the chosen x points on one side of the field (NaN if < 2)."""
    n, sz, sx, szz, szx = 0, 0.0, 0.0, 0.0, 0.0
    for s in range(st_z.shape[0]):
        i = idx_row[s]
        if stations_on_side[s] and i >= 0 and not math.isnan(pt_x[i]):
            n += 1
            sz += st_z[s]
            sx += pt_x[i]
            szz += st_z[s] * st_z[s]
            szx += st_z[s] * pt_x[i]
    if n < 2:
        return np.nan
    return (n * szx - sz * sx) / (n * szz - sz * sz)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _deflection_momentum(idx_row, upstream, downstream, st_z, pt_x, ty, integral_by):
    tx_in = _segment_slope(idx_row, upstream, st_z, pt_x)
    tx_out = _segment_slope(idx_row, downstream, st_z, pt_x)
    if math.isnan(tx_in) or math.isnan(tx_out) or integral_by == 0.0:
        return np.nan
    u_in = tx_in / math.sqrt(1.0 + tx_in * tx_in + ty * ty)
    u_out = tx_out / math.sqrt(1.0 + tx_out * tx_out + ty * ty)
    qop = -(u_out - u_in) / (C_GEV_PER_T_MM * integral_by)
    return 1.0 / abs(qop) if qop != 0.0 else np.nan


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _worst_measurement(sel_x, sel_y, sel_sx, sel_sy, dz, g, extra, x0, tx, qop, y0, ty):
    """(station, coordinate) of the largest normalised seed residual."""
    worst, worst_s, worst_c = -1.0, -1, 0
    for s in range(dz.shape[0]):
        if not math.isnan(sel_x[s]):
            r = (sel_x[s] - x0 - tx * dz[s] - qop * g[s]) ** 2 / (sel_sx[s] ** 2 + extra * extra)
            if r > worst:
                worst, worst_s, worst_c = r, s, 0
        if not math.isnan(sel_y[s]):
            r = (sel_y[s] - y0 - ty * dz[s]) ** 2 / (sel_sy[s] ** 2 + extra * extra)
            if r > worst:
                worst, worst_s, worst_c = r, s, 1
    return worst_s, worst_c


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _enumerate_candidates(
    lo,
    hi,
    pt_st,
    pt_x,
    pt_y,
    pt_ex,
    pt_ey,
    st_first,
    st_count,
    dz,
    g,
    min_x,
    min_y,
    min_meas,
    extra,
    seed_cut,
    max_drop,
    inv_angle2,
    sel_st,
    sel_x,
    sel_y,
    sel_sx,
    sel_sy,
    choice,
    mat,
    vec,
    cand_cx,
    cand_cy,
    cand_nmeas,
    cand_rank,
    cand_par,
):
    """Seed-fit every point combination, dropping up to ``max_drop`` outlying coordinates;
    keep the best ``max_candidates``. Returns their count."""
    n_st = dz.shape[0]
    max_cand = cand_nmeas.shape[0]
    st_count[:] = 0
    for i in range(lo, hi):
        s = pt_st[i]
        if st_count[s] == 0:
            st_first[s] = i
        st_count[s] += 1
    total = 1
    for s in range(n_st):
        total *= st_count[s] + 1
    n_c = 0
    for combo in range(total):
        rem = combo
        nx = 0
        ny = 0
        for s in range(n_st):
            base = st_count[s] + 1
            c = rem % base
            rem //= base
            if c < st_count[s]:
                i = st_first[s] + c
                choice[s], sel_st[s] = i, s
                sel_x[s], sel_y[s], sel_sx[s], sel_sy[s] = pt_x[i], pt_y[i], pt_ex[i], pt_ey[i]
                nx += 0 if math.isnan(pt_x[i]) else 1
                ny += 0 if math.isnan(pt_y[i]) else 1
            else:
                choice[s], sel_st[s] = -1, -1
                sel_x[s] = sel_y[s] = np.nan
        accepted = False
        for n_dropped in range(max_drop + 1):
            if nx < min_x or ny < min_y or nx + ny < min_meas:
                break
            ok, chi2, ndf, x0, tx, qop, y0, ty = _seed_fit(
                sel_st, sel_x, sel_y, sel_sx, sel_sy, dz, g, extra, mat, vec
            )
            if not ok or ndf < 1:
                break
            if chi2 <= seed_cut * ndf:
                accepted = True
                break
            if n_dropped == max_drop:
                break
            s, coord = _worst_measurement(
                sel_x, sel_y, sel_sx, sel_sy, dz, g, extra, x0, tx, qop, y0, ty
            )
            if coord == 0:
                sel_x[s] = np.nan
                nx -= 1
            else:
                sel_y[s] = np.nan
                ny -= 1
        if not accepted:
            continue
        rank = chi2 + (tx * tx + ty * ty) * inv_angle2
        slot = n_c
        if n_c == max_cand:  # full: replace the worst if this one is better
            slot = 0
            for k in range(1, max_cand):
                if (cand_nmeas[k] < cand_nmeas[slot]) or (
                    cand_nmeas[k] == cand_nmeas[slot] and cand_rank[k] > cand_rank[slot]
                ):
                    slot = k
            if nx + ny < cand_nmeas[slot] or (
                nx + ny == cand_nmeas[slot] and rank >= cand_rank[slot]
            ):
                continue
        else:
            n_c += 1
        for s in range(n_st):
            cand_cx[slot, s] = -1 if math.isnan(sel_x[s]) else choice[s]
            cand_cy[slot, s] = -1 if math.isnan(sel_y[s]) else choice[s]
        cand_nmeas[slot], cand_rank[slot] = nx + ny, rank
        cand_par[slot, 0], cand_par[slot, 1], cand_par[slot, 2] = x0, y0, tx
        cand_par[slot, 3], cand_par[slot, 4] = ty, qop
    return n_c


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _x_clusters_of(c, cand_cx, pt_cx, out):
    """The X-plane cluster indices a candidate uses; returns their number."""
    n = 0
    for s in range(cand_cx.shape[1]):
        if cand_cx[c, s] >= 0:
            out[n] = pt_cx[cand_cx[c, s]]
            n += 1
    return n


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _count_distinct(n_c, rank, cand_cx, pt_cx, cand_par, qop_min, qop_max, min_x, used, mine):
    """Candidates picked in rank order sharing no X-plane cluster with earlier picks,
    with a seed momentum ``qop_min <= |q/p| <= qop_max`` and, after the first, more than
    ``min_x`` x points (with exactly ``min_x`` any three noise clusters would fit)."""
    n_used = 0
    n_distinct = 0
    for r in range(n_c):
        if not (qop_min <= abs(cand_par[rank[r], 4]) <= qop_max):
            continue
        n_mine = _x_clusters_of(rank[r], cand_cx, pt_cx, mine)
        if n_distinct > 0 and n_mine <= min_x:  # an extra track needs redundant x points
            continue
        clash = False
        for k in range(n_mine):
            for u in range(n_used):
                clash = clash or used[u] == mine[k]
        if clash:
            continue
        n_distinct += 1
        for k in range(n_mine):
            if n_used < used.shape[0]:
                used[n_used] = mine[k]
                n_used += 1
    return n_distinct


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _insertion_argsort(values, n, order):
    """Indices sorting ``values[:n]`` ascending, into ``order`` (n is small)."""
    for j in range(n):
        k = j
        while k > 0 and values[order[k - 1]] > values[j]:
            order[k] = order[k - 1]
            k -= 1
        order[k] = j


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _find_fit_all(
    pt_off,
    pt_st,
    pt_x,
    pt_y,
    pt_ex,
    pt_ey,
    pt_cx,
    pt_cy,
    st_z,
    st_x0,
    order,
    g,
    z_ref,
    z_out,
    z_ecal,
    upstream,
    downstream,
    integral_by,
    pack,
    step,
    min_x,
    min_y,
    min_meas,
    extra,
    seed_cut,
    max_drop,
    inv_angle2,
    chi2ndf_max,
    max_iter,
    max_cand,
    prior_qop,
    prior_w,
    qop_min,
    qop_max,
    n_cand,
    found,
    conv,
    state_ref,
    cov_ref,
    chi2_out,
    ndf_out,
    state_out,
    x_ecal,
    y_ecal,
    p_defl,
    meas_x,
    meas_y,
    pred_x,
    pred_y,
):
    n_ev = pt_off.shape[0] - 1
    n_st = st_z.shape[0]
    dz = st_z - z_ref
    st_first = np.zeros(n_st, dtype=np.int64)
    st_count = np.zeros(n_st, dtype=np.int64)
    choice = np.empty(n_st, dtype=np.int64)
    sel_st = np.empty(n_st, dtype=np.int64)
    sel_x, sel_y, sel_sx, sel_sy = np.empty(n_st), np.empty(n_st), np.empty(n_st), np.empty(n_st)
    cand_cx = np.empty((max_cand, n_st), dtype=np.int64)
    cand_cy = np.empty((max_cand, n_st), dtype=np.int64)
    cand_nmeas = np.empty(max_cand, dtype=np.int64)
    cand_rank = np.empty(max_cand)
    cand_par = np.empty((max_cand, 5))
    score = np.empty(max_cand)
    rank = np.empty(max_cand, dtype=np.int64)
    used = np.empty(2 * n_st * max_cand, dtype=np.int64)
    mine = np.empty(2 * n_st, dtype=np.int64)
    mat, vec = np.zeros((5, 5)), np.zeros(5)
    n_mmax = 2 * n_st
    ws = _Workspace(
        np.empty(n_st),
        np.empty(n_st),
        np.empty(n_st),
        np.empty(n_st),
        np.empty((n_mmax, 5)),
        np.empty((n_mmax, n_mmax)),
        np.empty(n_mmax),
        np.empty((5, 5)),
        np.empty(5),
        np.empty(n_mmax),
        np.empty((5, 5)),
        np.empty(5),
        np.empty(n_st),
    )
    m_st = np.empty(n_mmax, dtype=np.int64)
    m_coord = np.empty(n_mmax, dtype=np.int64)
    m_val, m_sig = np.empty(n_mmax), np.empty(n_mmax)
    par = np.empty(5)
    n_par = np.int64(5)  # np.int64: no literal-value specialisations downstream
    for e in range(n_ev):
        n_c = _enumerate_candidates(
            pt_off[e],
            pt_off[e + 1],
            pt_st,
            pt_x,
            pt_y,
            pt_ex,
            pt_ey,
            st_first,
            st_count,
            dz,
            g,
            min_x,
            min_y,
            min_meas,
            extra,
            seed_cut,
            max_drop,
            inv_angle2,
            sel_st,
            sel_x,
            sel_y,
            sel_sx,
            sel_sy,
            choice,
            mat,
            vec,
            cand_cx,
            cand_cy,
            cand_nmeas,
            cand_rank,
            cand_par,
        )
        n_cand[e] = 0
        if n_c == 0:
            continue
        for c in range(n_c):
            score[c] = -1e6 * cand_nmeas[c] + cand_rank[c]
        _insertion_argsort(score, n_c, rank)
        n_cand[e] = _count_distinct(
            n_c, rank, cand_cx, pt_cx, cand_par, qop_min, qop_max, min_x, used, mine
        )
        best = rank[0]
        n_m = np.int64(0)
        for s in range(n_st):
            i = cand_cx[best, s]
            if i >= 0:
                m_st[n_m], m_coord[n_m], m_val[n_m], m_sig[n_m] = s, 0, pt_x[i], pt_ex[i]
                n_m += 1
                meas_x[e, s] = pt_x[i]
            i = cand_cy[best, s]
            if i >= 0:
                m_st[n_m], m_coord[n_m], m_val[n_m], m_sig[n_m] = s, 1, pt_y[i], pt_ey[i]
                n_m += 1
                meas_y[e, s] = pt_y[i]
        par[:] = cand_par[best]
        ok, converged, chi2 = _full_fit(
            par,
            n_par,
            n_m,
            m_st,
            m_coord,
            m_val,
            m_sig,
            z_ref,
            st_z,
            st_x0,
            order,
            pack,
            step,
            max_iter,
            prior_qop,
            prior_w,
            ws,
        )
        if ok and chi2 > chi2ndf_max * (n_m - n_par):
            k = _outlier(n_m, m_st, m_coord, m_val, m_sig, ws, min_x, min_y, min_meas)
            if k >= 0:
                if m_coord[k] == 0:
                    meas_x[e, m_st[k]] = np.nan
                else:
                    meas_y[e, m_st[k]] = np.nan
                n_m = _remove_measurement(k, n_m, m_st, m_coord, m_val, m_sig)
                par[:] = cand_par[best]
                ok, converged, chi2 = _full_fit(
                    par,
                    n_par,
                    n_m,
                    m_st,
                    m_coord,
                    m_val,
                    m_sig,
                    z_ref,
                    st_z,
                    st_x0,
                    order,
                    pack,
                    step,
                    max_iter,
                    prior_qop,
                    prior_w,
                    ws,
                )
        p_defl[e] = _deflection_momentum(
            cand_cx[best], upstream, downstream, st_z, pt_x, par[3], integral_by
        )
        if not ok:
            continue
        found[e], conv[e] = True, converged
        state_ref[e, :] = par
        cov_ref[e, :n_par, :n_par] = ws.cov_p[:n_par, :n_par]
        chi2_out[e], ndf_out[e] = chi2, n_m - n_par
        pred_x[e, :] = ws.pred_x
        pred_y[e, :] = ws.pred_y
        x, y, tx, ty, ok_out = propagate_state(
            par[0], par[1], par[2], par[3], par[4], z_ref, z_out, pack, step
        )
        if ok_out:
            state_out[e, 0], state_out[e, 1], state_out[e, 2], state_out[e, 3] = x, y, tx, ty
            state_out[e, 4] = par[4]
            x, y, tx, ty, ok_ecal = propagate_state(x, y, tx, ty, par[4], z_out, z_ecal, pack, step)
            if ok_ecal:
                x_ecal[e], y_ecal[e] = x, y


def find_and_fit_tracks(
    points: SpacePoints,
    layout: StationLayout,
    field,
    config: FitConfig,
    *,
    z_ecal_mm: float,
    qop_prior: tuple[float, float] | None = None,
) -> TrackFitResult:
    """Find and fit the best track of every event (see the module docstring).

    ``qop_prior = (mean, sigma)`` (1/GeV) constrains q/p in the full fit to a
    beam of known momentum (alignment); by default q/p is free.
    """
    n_ev = points.offsets.shape[0] - 1
    n_st = layout.n_stations
    z_ref, z_out = float(layout.z_mm.min()), float(layout.z_mm.max())
    z_lo, z_hi = field_z_range_mm(field)
    g, integral_by = bending_coefficients(
        field, z_ref, layout.z_mm, (z_lo, z_hi), step_mm=config.rk4_step_mm
    )
    out = TrackFitResult(
        z_ref_mm=z_ref,
        z_out_mm=z_out,
        n_candidates=np.zeros(n_ev, dtype=np.int32),
        found=np.zeros(n_ev, dtype=bool),
        converged=np.zeros(n_ev, dtype=bool),
        state_ref=np.full((n_ev, 5), np.nan),
        cov_ref=np.zeros((n_ev, 5, 5)),
        chi2=np.full(n_ev, np.nan),
        ndf=np.zeros(n_ev, dtype=np.int32),
        state_out=np.full((n_ev, 5), np.nan),
        x_ecal_mm=np.full(n_ev, np.nan),
        y_ecal_mm=np.full(n_ev, np.nan),
        p_deflection_GeV=np.full(n_ev, np.nan),
        meas_x=np.full((n_ev, n_st), np.nan),
        meas_y=np.full((n_ev, n_st), np.nan),
        pred_x=np.full((n_ev, n_st), np.nan),
        pred_y=np.full((n_ev, n_st), np.nan),
    )
    _find_fit_all(
        np.asarray(points.offsets, dtype=np.int64),
        points.station,
        points.x_mm,
        points.y_mm,
        points.x_err_mm,
        points.y_err_mm,
        points.cluster_x,
        points.cluster_y,
        layout.z_mm,
        layout.x_over_X0,
        np.argsort(layout.z_mm),
        g,
        z_ref,
        z_out,
        float(z_ecal_mm),
        layout.z_mm < z_lo,
        layout.z_mm > z_hi,
        integral_by,
        field_pack(field),
        float(config.rk4_step_mm),
        int(config.min_x_planes),
        int(config.min_y_planes),
        int(config.min_measurements),
        float(config.seed_extra_error_mm),
        float(config.seed_chi2ndf_max),
        int(config.max_dropped_measurements),
        1.0 / (1e-3 * config.rank_angle_mrad) ** 2,
        float(config.chi2ndf_max),
        int(config.max_iterations),
        int(config.max_candidates),
        0.0 if qop_prior is None else float(qop_prior[0]),
        0.0 if qop_prior is None else 1.0 / float(qop_prior[1]) ** 2,
        1.0 / config.p_max_GeV,
        1.0 / config.p_min_GeV,
        out.n_candidates,
        out.found,
        out.converged,
        out.state_ref,
        out.cov_ref,
        out.chi2,
        out.ndf,
        out.state_out,
        out.x_ecal_mm,
        out.y_ecal_mm,
        out.p_deflection_GeV,
        out.meas_x,
        out.meas_y,
        out.pred_x,
        out.pred_y,
    )
    return out
