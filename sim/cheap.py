"""Fused numba kernel of the generator's cheap stage for beam electrons.

Units: GeV, mm, rad, radiation lengths X0.

About 99 % of a physics beam are electrons that shower in the ECAL (possibly
after a hard upstream bremsstrahlung) and are rejected by the trigger. For
them the whole cheap stage of :mod:`sim.generator` runs here, one particle at
a time without intermediate arrays: process choice (EM shower, electronuclear,
dimuon), upstream brems choice and photon fraction, transport without
multiple scattering through a precomputed list of straight and helix steps
(:func:`transport_program`; the helix of :func:`sim.transport._helix`),
S1/V1/S2 hits, the mean synchrotron loss, the EM components at the ECAL face
(electron and brems photon), their Grindhammer-Peters longitudinal parameters,
the section fractions, the tabulated lateral containment and the visible
total. The formulas are those of the vectorised numpy path (same
distributions; the random numbers are drawn in another order).

Electrons that undergo an electronuclear or dimuon interaction, and every
other species, are flagged and left to the numpy path.

Early rejection: given the events' ECAL trigger thresholds (``e_cut``), a
particle is given ``e_ecal`` = inf before its section fractions and visible
energy are drawn when it passes its threshold with a probability below
``REJECT_PROBABILITY`` (1e-18): a lower bound on the contained energy from the
Chernoff bound of the Gamma profile's tail beyond the last section and the
smallest lateral containment (:func:`_em_contained_lower`), and the Chernoff
bound of the Gamma sampling fluctuation's left tail (:func:`_surely_above`).
Pile-up only adds energy, so such an event cannot trigger. About 95 % of a
physics beam stops there (docs/simulation-physics.md).

Section fractions need the regularised lower incomplete gamma function
``P(a, x)``; :class:`IncGammaTable` tabulates it on a grid of ``a`` (step
0.05) and ``s = sqrt(x)`` (step 0.02) and interpolates with 4 x 4-point
Lagrange polynomials: the absolute error is below 1e-6 for ``a`` in
[1.5, 16] and ``x`` in [0, 80] (below 0.1 MeV of a 100 GeV shower's section
energies; tested against ``scipy.special.gammainc``). Outside the grid
(soft showers with a < 1.5, far tails) the exact series / continued fraction
(Cephes ``igam``/``igamc`` algorithms) is used, out of the hot path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numba as nb
import numpy as np
from scipy.special import gammainc

from sim.transport import C_GEV_PER_T_MM

__all__ = [
    "FLAG_FAST",
    "FLAG_SLOW",
    "REJECT_PROBABILITY",
    "ElectronTables",
    "IncGammaTable",
    "igam",
    "inc_gamma_table",
    "regularized_lower_gamma",
]

FLAG_FAST = 0  # the kernel simulated the particle's cheap stage
FLAG_SLOW = 1  # left to the numpy path

_A0, _HA, _A_MAX = 1.0, 0.05, 16.0  # table grid in a (exact igam below _A_EXACT)
_A_EXACT = 1.5
_HS, _X_MAX = 0.02, 80.0  # table grid in s = sqrt(x)
_EM_SHOWER, _HADRONIC, _DIMUON, _UPSTREAM_BREMS = 0, 1, 2, 3  # sim.deposits.Process
# A particle whose visible ECAL energy exceeds its event's trigger threshold with a
# probability above 1 - REJECT_PROBABILITY is rejected without drawing that energy
# (far below the 2^-53 resolution of the uniform variates behind every sampler).
REJECT_PROBABILITY = 1e-18
_LOG_REJECT = math.log(REJECT_PROBABILITY)


# ---------------------------------------------------------------------------- incomplete gamma


@nb.njit(cache=True, nogil=True)
def igam(a, x):
    """Regularised lower incomplete gamma P(a, x), a > 0 (Cephes igam/igamc algorithms)."""
    if x <= 0.0:
        return 0.0
    ax = math.exp(a * math.log(x) - x - math.lgamma(a))
    if x > 1.0 and x > a:  # continued fraction for Q = 1 - P
        y = 1.0 - a
        z = x + y + 1.0
        c = 0.0
        pkm2, qkm2 = 1.0, x
        pkm1, qkm1 = x + 1.0, z * x
        ans = pkm1 / qkm1
        for _ in range(1000):
            c += 1.0
            y += 1.0
            z += 2.0
            yc = y * c
            pk = pkm1 * z - pkm2 * yc
            qk = qkm1 * z - qkm2 * yc
            t = 1.0
            if qk != 0.0:
                r = pk / qk
                t = abs((ans - r) / r)
                ans = r
            pkm2, pkm1, qkm2, qkm1 = pkm1, pk, qkm1, qk
            if abs(pk) > 4503599627370496.0:
                pkm2 *= 2.220446049250313e-16
                pkm1 *= 2.220446049250313e-16
                qkm2 *= 2.220446049250313e-16
                qkm1 *= 2.220446049250313e-16
            if t <= 1e-15:
                break
        return 1.0 - ans * ax
    r = a
    c = 1.0
    ans = 1.0
    for _ in range(2000):
        r += 1.0
        c *= x / r
        ans += c
        if c <= ans * 1e-15:
            break
    return ans * ax / a


@dataclass(frozen=True)
class IncGammaTable:
    """P(a, x) on the grid a = a0 + i ha, x = (j hs)^2 (see the module docstring)."""

    a0: float
    ha: float
    hs: float
    a_max: float
    x_max: float
    values: np.ndarray  # (n_a, n_s)


@cache
def inc_gamma_table() -> IncGammaTable:
    """The P(a, x) table (1.1 MB), built once per process with scipy."""
    n_a = round((_A_MAX - _A0) / _HA) + 4
    n_s = math.ceil(math.sqrt(_X_MAX) / _HS) + 4
    a = _A0 + _HA * (np.arange(n_a) - 1.0)
    s = _HS * (np.arange(n_s) - 1.0)
    values = gammainc(a[:, None], (np.sign(s) * s * s)[None, :].clip(0.0))
    values[:, 0] = values[:, 2]  # P ~ s^(2a) near s = 0: even extension to the node s = -hs
    return IncGammaTable(_A0 - _HA, _HA, _HS, _A_MAX, _X_MAX, np.ascontiguousarray(values))


@nb.njit(cache=True, nogil=True)
def _p_table(a, x, table, a0, ha, hs, a_max, x_max):
    """P(a, x) from the table; 0 for x <= 0, -1 outside the table's domain.

    Tensor product of 4-point Lagrange interpolations at nodes -1, 0, 1, 2 around the
    cell (fractions t, u); ``table`` columns are s = sqrt(x) = (j - 1) hs.
    """
    if x <= 0.0:
        return 0.0
    if a < _A_EXACT or a > a_max or x > x_max:
        return -1.0
    fa = (a - a0) * (1.0 / ha)
    fs = math.sqrt(x) * (1.0 / hs) + 1.0
    ia = int(fa)
    js = int(fs)
    t = fa - ia
    u = fs - js
    sixth = 1.0 / 6.0
    tm1, tm2, tp1 = t - 1.0, t - 2.0, t + 1.0
    um1, um2, up1 = u - 1.0, u - 2.0, u + 1.0
    wa0 = -t * tm1 * tm2 * sixth
    wa1 = 0.5 * tp1 * tm1 * tm2
    wa2 = -0.5 * tp1 * t * tm2
    wa3 = tp1 * t * tm1 * sixth
    ws0 = -u * um1 * um2 * sixth
    ws1 = 0.5 * up1 * um1 * um2
    ws2 = -0.5 * up1 * u * um2
    ws3 = up1 * u * um1 * sixth
    r0, r1, r2, r3 = ia - 1, ia, ia + 1, ia + 2
    c0, c1, c2, c3 = js - 1, js, js + 1, js + 2
    total = (
        wa0 * (ws0 * table[r0, c0] + ws1 * table[r0, c1] + ws2 * table[r0, c2]
               + ws3 * table[r0, c3])
        + wa1 * (ws0 * table[r1, c0] + ws1 * table[r1, c1] + ws2 * table[r1, c2]
                 + ws3 * table[r1, c3])
        + wa2 * (ws0 * table[r2, c0] + ws1 * table[r2, c1] + ws2 * table[r2, c2]
                 + ws3 * table[r2, c3])
        + wa3 * (ws0 * table[r3, c0] + ws1 * table[r3, c1] + ws2 * table[r3, c2]
                 + ws3 * table[r3, c3])
    )
    return min(max(total, 0.0), 1.0)


@nb.njit(cache=True, nogil=True)
def _p_many(a, x, table, a0, ha, hs, a_max, x_max, out):
    for i in range(a.shape[0]):
        out[i] = _p_table(a[i], x[i], table, a0, ha, hs, a_max, x_max)
        if out[i] < 0.0:
            out[i] = igam(a[i], x[i])


def regularized_lower_gamma(a, x) -> np.ndarray:
    """P(a, x) through the table (vectorised; for tests and numpy callers)."""
    a, x = np.broadcast_arrays(np.asarray(a, float), np.asarray(x, float))
    t = inc_gamma_table()
    out = np.empty(a.size)
    _p_many(np.ascontiguousarray(a).ravel(), np.ascontiguousarray(x).ravel(), t.values,
            t.a0, t.ha, t.hs, t.a_max, t.x_max, out)
    return out.reshape(a.shape)


# ---------------------------------------------------------------------------- electron kernel


def transport_program(
    plane_z: np.ndarray,
    record_slot: np.ndarray,
    action_planes: np.ndarray,
    dip_z0: np.ndarray,
    dip_z1: np.ndarray,
    dip_b: np.ndarray,
    z_start: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Steps of a transport from ``z_start``: (end z, B_y, record slot, plane index).

    Each step goes straight (B_y = 0) or along a helix (inside a dipole) from the previous
    step's end to its own; a step ending on a plane that is recorded (``record_slot`` >= 0)
    or may act on the particle (``action_planes``, e.g. upstream brems) carries the slot and
    the plane index (else -1). Planes upstream of ``z_start`` are not crossed.
    """
    events: list[tuple[float, int, int, int]] = []  # z, order, slot, plane
    for k, z in enumerate(plane_z):
        if z >= z_start and (record_slot[k] >= 0 or k in set(action_planes.tolist())):
            events.append((float(z), 1, int(record_slot[k]), k))
    for z0, z1 in zip(dip_z0, dip_z1, strict=True):
        for z in (max(z0, z_start), z1):
            if z1 > max(z0, z_start):
                events.append((float(z), 0, -1, -1))
    events.sort()
    st_z, st_b, st_slot, st_plane = [], [], [], []
    for z, _, slot, plane in events:
        inside = [b for z0, z1, b in zip(dip_z0, dip_z1, dip_b, strict=True)
                  if z0 < z <= z1 and (st_z[-1] if st_z else z_start) >= z0]
        st_z.append(z)
        st_b.append(float(inside[0]) if inside else 0.0)
        st_slot.append(slot)
        st_plane.append(plane)
    return (np.array(st_z, dtype=float), np.array(st_b, dtype=float),
            np.array(st_slot, dtype=np.int64), np.array(st_plane, dtype=np.int64))



@dataclass(frozen=True)
class ElectronTables:
    """Constant inputs of :func:`electron_stage1_kernel` (flat arrays and scalars)."""

    # process choice among EM shower, electronuclear, dimuon: cumulative biased q, weights p/q
    process_cum_q: np.ndarray
    process_weight: np.ndarray
    # upstream brems: cumulative biased q over (none, plane...), weights, plane per choice
    brems_cum_q: np.ndarray
    brems_weight: np.ndarray
    brems_planes: np.ndarray
    brems_y_min: float
    # transport
    plane_z: np.ndarray
    record_slot: np.ndarray  # per plane: 0 S1, 1 V1, 2 MM1, 3 S2, 4 ECAL, -1 not recorded
    dip_z0: np.ndarray
    dip_z1: np.ndarray
    dip_b: np.ndarray
    # counters S1, V1, S2: (3, 5) rows of x, y, size_x, size_y, hole radius
    counters: np.ndarray
    # EM longitudinal (GP): E_c, t_offset, alpha c0..c2/Z folded, sigma/rho coefficients
    longi: np.ndarray
    # ECAL and HCAL front rectangles (x_lo, x_hi, y_lo, y_hi), HCAL lever arm
    ecal_rect: np.ndarray
    hcal_rect: np.ndarray
    hcal_dz: float
    x0_mm: float
    bounds: np.ndarray  # section bounds in X0
    contain: np.ndarray  # (n_sections, nx, ny) containment tables
    contain_origin: np.ndarray  # x0, y0, step
    sampling: float
    constant: float
    # mean synchrotron loss (sim.synchrotron.mean_energy_loss_GeV) in closed form:
    # loss = sr_coeff (p^2 + m_e^2)^2 / p^2, i.e. proportional to gamma^4 / rho^2 per dipole
    sr_coeff: float
    m_e2: float

    def program(self, z_start: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The transport steps from ``z_start`` (:func:`transport_program`)."""
        return _program(self.plane_z.tobytes(), self.record_slot.tobytes(),
                        self.brems_planes.tobytes(), self.dip_z0.tobytes(),
                        self.dip_z1.tobytes(), self.dip_b.tobytes(), float(z_start))


@cache
def _program(plane_z, record_slot, planes, dip_z0, dip_z1, dip_b, z_start):
    def arr(b, dtype=float):
        return np.frombuffer(b, dtype=dtype)

    return transport_program(arr(plane_z), arr(record_slot, np.int64), arr(planes, np.int64),
                             arr(dip_z0), arr(dip_z1), arr(dip_b), z_start)


@nb.njit(cache=True, nogil=True)
def _helix(x, y, tx, ty, dz, kappa):
    """Exact helix step over dz in a uniform B_y, as :func:`sim.transport._helix`.

    The same formulas with the direction written through q = 1/sqrt(1 + tx^2):
    sin(phi0) = tx q, cos(phi0) = q, u_y / r = ty q and 1/r = q sqrt(1 + tx^2 + ty^2)
    (fewer divisions and square roots).
    """
    if abs(kappa * dz) < 1e-15:
        return x + tx * dz, y + ty * dz, tx, ty
    norm = math.sqrt(1.0 + tx * tx + ty * ty)
    q = 1.0 / math.sqrt(1.0 + tx * tx)
    s0 = tx * q
    s1 = s0 - kappa * dz * norm * q
    if abs(s1) >= 1.0:
        return np.nan, np.nan, np.nan, np.nan
    c1 = math.sqrt(1.0 - s1 * s1)
    inv_c1 = 1.0 / c1
    turn = math.asin(s0 * c1 - q * s1)  # phi0 - phi1
    return (x + dz * (s0 + s1) / (q + c1), y + ty * turn / (norm * kappa), s1 * inv_c1,
            ty * q * inv_c1)


@nb.njit(cache=True, nogil=True)
def _inside(x, y, c, j):
    """Inside counter j: rectangle (row j of ``c``: x, y, size_x, size_y) outside its hole."""
    dx = x - c[j, 0]
    dy = y - c[j, 1]
    box = abs(dx) <= 0.5 * c[j, 2] and abs(dy) <= 0.5 * c[j, 3]
    return box and dx * dx + dy * dy >= c[j, 4] * c[j, 4]


@nb.njit(cache=True, nogil=True)
def _in_rect(x, y, r):
    return x >= r[0] and x <= r[1] and y >= r[2] and y <= r[3]


@nb.njit(cache=True, nogil=True)
def _contained(x, y, table, k, x0, y0, step):
    """Bilinear interpolation of containment table k (0 outside it), as ContainmentTable."""
    fx = (x - x0) / step
    fy = (y - y0) / step
    nx, ny = table.shape[1], table.shape[2]
    if not (fx >= 0.0 and fx < nx - 1 and fy >= 0.0 and fy < ny - 1):
        return 0.0
    ix = int(fx)
    iy = int(fy)
    wx = fx - ix
    wy = fy - iy
    return (
        (1.0 - wx) * (1.0 - wy) * table[k, ix, iy]
        + wx * (1.0 - wy) * table[k, ix + 1, iy]
        + (1.0 - wx) * wy * table[k, ix, iy + 1]
        + wx * wy * table[k, ix + 1, iy + 1]
    )


@nb.njit(cache=True, nogil=True)
def _longitudinal(E, rng, lp):
    """GP (a, b) of an EM shower of energy E (as sim.showers.sample_em_longitudinal)."""
    ec, t_offset, c0, c1z, st0, st1, sa0, sa1, r0, r1 = (
        lp[0], lp[1], lp[2], lp[3], lp[4], lp[5], lp[6], lp[7], lp[8], lp[9]
    )
    ln_y = math.log(max(E, 2.0 * ec) / ec)
    ln_y = max(ln_y, 1.5)
    # exp(<ln T> + ...) and exp(<ln a> + ...) with the means' logarithms folded in
    mean_t = max(ln_y + t_offset, 0.5)
    mean_a = c0 + c1z * ln_y
    sig_t = 1.0 / max(st0 + st1 * ln_y, 1.0)
    sig_a = 1.0 / max(sa0 + sa1 * ln_y, 1.0)
    rho = min(max(r0 + r1 * ln_y, -1.0), 1.0)
    z1 = rng.standard_normal()
    z2 = rng.standard_normal()
    t_max = mean_t * math.exp(sig_t * z1)
    a = max(mean_a * math.exp(sig_a * (rho * z1 + math.sqrt(1.0 - rho * rho) * z2)), 1.05)
    return a, (a - 1.0) / t_max


@nb.njit(cache=True, nogil=True)
def _em_contained(em, i, s, bounds, x0_mm, contain, cx0, cy0, cstep, gt, ga0, gha, ghs, gamax,
                  gxmax, exact):
    """Contained energy of EM component em[i, s] = (E, x, y, tx, ty, t0, a, b).

    With ``exact`` False the section fractions come from the P(a, x) table and -1 is
    returned if a bound falls outside it; with ``exact`` True from :func:`igam` (the
    rare fallback, kept out of the hot path).
    """
    E, x, y, tx, ty = em[i, s, 0], em[i, s, 1], em[i, s, 2], em[i, s, 3], em[i, s, 4]
    t0, a, b = em[i, s, 5], em[i, s, 6], em[i, s, 7]
    mean = t0 + a / b
    mu = 0.0
    lo_cdf = 0.0
    for k in range(bounds.shape[0]):
        depth_x = b * (bounds[k] - t0)
        if exact:
            hi_cdf = igam(a, depth_x)
        else:
            hi_cdf = _p_table(a, depth_x, gt, ga0, gha, ghs, gamax, gxmax)
            if hi_cdf < 0.0:
                return -1.0
        if k > 0:
            lo = max(bounds[k - 1], t0)
            depth = min(max(mean, lo), max(lo, bounds[k])) * x0_mm
            mu += E * (hi_cdf - lo_cdf) * _contained(x + tx * depth, y + ty * depth, contain,
                                                     k - 1, cx0, cy0, cstep)
        lo_cdf = hi_cdf
    return mu


@nb.njit(cache=True, nogil=True)
def _em_contained_lower(em, i, s, bounds, x0_mm, contain, cx0, cy0, cstep):
    """A lower bound on :func:`_em_contained` without the incomplete gamma function.

    The section fractions add up to P(a, b (t_last - t0)) >= 1 - Q, with the Chernoff
    bound Q(a, x) <= (x/a)^a exp(a - x) for x > a (plus a margin for the table's
    interpolation error), and each section's lateral containment is at least the
    smallest of them. 0 when no bound applies.
    """
    E, x, y, tx, ty = em[i, s, 0], em[i, s, 1], em[i, s, 2], em[i, s, 3], em[i, s, 4]
    t0, a, b = em[i, s, 5], em[i, s, 6], em[i, s, 7]
    n_b = bounds.shape[0]
    x_last = b * (bounds[n_b - 1] - t0)
    if t0 < bounds[0] or x_last <= a:
        return 0.0
    # 1e-5: margin for the P(a, x) table's interpolation error (below 1e-6)
    q = math.exp(a * math.log(x_last / a) + a - x_last) + 1e-5
    if q >= 1.0:
        return 0.0
    mean = t0 + a / b
    c_min = 1.0
    for k in range(1, n_b):
        lo = max(bounds[k - 1], t0)
        depth = min(max(mean, lo), max(lo, bounds[k])) * x0_mm
        c_min = min(c_min, _contained(x + tx * depth, y + ty * depth, contain, k - 1, cx0,
                                      cy0, cstep))
    return E * (1.0 - q) * c_min


@nb.njit(cache=True, nogil=True)
def _surely_above(mu_low, e_cut, s2):
    """True if P(Gamma(mu/s2, scale s2) < e_cut) < REJECT_PROBABILITY for every mu >= mu_low.

    Gamma(k, s2) grows stochastically with k; for y = e_cut/s2 < k the Chernoff bound
    P(G < y) <= (y/k)^k exp(k - y) holds for G ~ Gamma(k, 1).
    """
    k = mu_low / s2
    y = e_cut / s2
    if not (y < k):
        return False
    r = y / k
    return k * (math.log(r) + 1.0 - r) < _LOG_REJECT


@nb.njit(cache=True, nogil=True)
def electron_stage1_kernel(
    rng,
    pdg,
    z0,
    bx,
    by,
    btx,
    bty,
    bp,
    process_cum_q,
    process_weight,
    brems_cum_q,
    brems_weight,
    brems_planes,
    brems_y_min,
    st_z,
    st_b,
    st_slot,
    st_plane,
    z_ecal,
    counters,
    longi,
    ecal_rect,
    hcal_rect,
    hcal_dz,
    x0_mm,
    bounds,
    contain,
    contain_origin,
    sampling,
    constant,
    sr_coeff,
    m_e2,
    e_cut,
    gt,
    ga0,
    gha,
    ghs,
    gamax,
    gxmax,
    flag,
    process,
    weight,
    hits,
    e_ecal,
    p_true,
    face,
    em,
    em_in_hcal,
    em_visible,
    brems_plane,
    brems_y,
):
    """Cheap stage of every beam electron that showers in the ECAL (see the module docstring).

    Per particle i: ``flag`` FLAG_FAST (simulated here) or FLAG_SLOW (numpy path; for an
    electron ``process``/``weight`` then hold its electronuclear/dimuon choice, else -1/1).
    Fast rows get ``hits`` (S1, V1, S2), ``e_ecal`` (GeV), ``p_true`` (at MM1), ``face``
    (x, y, tx, ty, p at the ECAL face), ``em`` (2, 8) components (E, x, y, tx, ty, t0, a,
    b), ``em_in_hcal``, ``em_visible`` and the brems plane (-1: none) and fraction.
    """
    n = pdg.shape[0]
    cx0, cy0, cstep = contain_origin[0], contain_origin[1], contain_origin[2]
    s2 = sampling * sampling
    n_steps = st_z.shape[0]
    n_proc = process_cum_q.shape[0]
    n_brems = brems_cum_q.shape[0]
    for i in range(n):
        if pdg[i] != 11:
            flag[i] = FLAG_SLOW
            process[i] = -1
            weight[i] = 1.0
            continue
        u = rng.random()
        choice = 0
        while choice < n_proc - 1 and u >= process_cum_q[choice]:
            choice += 1
        weight[i] = process_weight[choice]
        if choice != 0:  # electronuclear or dimuon: numpy path
            flag[i] = FLAG_SLOW
            process[i] = _HADRONIC if choice == 1 else _DIMUON
            continue
        flag[i] = FLAG_FAST
        process[i] = _EM_SHOWER
        # upstream brems: u rescaled to [0, 1) within the EM-shower interval is a fresh uniform
        u = u / process_cum_q[0]
        choice = 0
        while choice < n_brems - 1 and u >= brems_cum_q[choice]:
            choice += 1
        weight[i] *= brems_weight[choice]
        plane = -1
        y_b = 0.0
        if choice > 0:
            plane = brems_planes[choice - 1]
            process[i] = _UPSTREAM_BREMS
            while True:
                y_b = brems_y_min ** rng.random()
                if rng.random() < 1.0 - y_b + 0.75 * y_b * y_b:
                    break
        brems_plane[i] = plane
        brems_y[i] = y_b
        # transport without multiple scattering (the step program of transport_program)
        x, y, tx, ty, p = bx[i], by[i], btx[i], bty[i], bp[i]
        kappa_per_T = -C_GEV_PER_T_MM / p
        z = z0
        nE, nz, nx, ny, ntx, nty = 0.0, 0.0, np.nan, np.nan, np.nan, np.nan
        for c in range(5):
            face[i, c] = np.nan
        s1 = v1 = s2h = False
        for k in range(n_steps):
            zt = st_z[k]
            if st_b[k] != 0.0:
                x, y, tx, ty = _helix(x, y, tx, ty, zt - z, kappa_per_T * st_b[k])
            else:
                x += tx * (zt - z)
                y += ty * (zt - z)
            z = zt
            slot = st_slot[k]
            if slot == 0:
                s1 = _inside(x, y, counters, 0)
            elif slot == 1:
                v1 = _inside(x, y, counters, 1)
            elif slot == 2:
                p_true[i] = p
            elif slot == 3:
                s2h = _inside(x, y, counters, 2)
            elif slot == 4:
                face[i, 0], face[i, 1], face[i, 2], face[i, 3], face[i, 4] = x, y, tx, ty, p
            if st_plane[k] == plane and plane >= 0:
                nE, nz, nx, ny, ntx, nty = y_b * p, z, x, y, tx, ty
                p *= 1.0 - y_b
                kappa_per_T = -C_GEV_PER_T_MM / p
        hits[i, 0], hits[i, 1], hits[i, 2] = s1, v1, s2h
        # EM components at the ECAL face: slot 0 the electron, slot 1 the brems photon
        mu = 0.0
        for s in range(2):
            for c in range(8):
                em[i, s, c] = 0.0
            em[i, s, 6], em[i, s, 7] = 2.0, 0.5
            em_in_hcal[i, s] = False
        if math.isfinite(face[i, 0]):
            pf = face[i, 4]
            em[i, 0, 0] = pf - sr_coeff * (pf * pf + m_e2) ** 2 / (pf * pf)
            em[i, 0, 1], em[i, 0, 2], em[i, 0, 3], em[i, 0, 4] = face[i, 0], face[i, 1], face[
                i, 2], face[i, 3]
        if nE > 0.0:
            em[i, 1, 0] = nE
            em[i, 1, 1], em[i, 1, 2] = nx + ntx * (z_ecal - nz), ny + nty * (z_ecal - nz)
            em[i, 1, 3], em[i, 1, 4] = ntx, nty
        mu_low = 0.0
        for s in range(2):
            if em[i, s, 0] > 0.0:
                a, b = _longitudinal(em[i, s, 0], rng, longi)
                em[i, s, 6], em[i, s, 7] = a, b
                ex, ey = em[i, s, 1], em[i, s, 2]
                if not _in_rect(ex, ey, ecal_rect) and _in_rect(
                    ex + em[i, s, 3] * hcal_dz, ey + em[i, s, 4] * hcal_dz, hcal_rect
                ):
                    em_in_hcal[i, s] = True
                elif e_cut[i] < np.inf:
                    mu_low += _em_contained_lower(em, i, s, bounds, x0_mm, contain, cx0, cy0,
                                                  cstep)
        # visible = Gamma(mu/s2, s2) * max(1 + constant N(0,1), 0); the constant-term factor
        # first, so that a particle surely above its trigger threshold stops here
        factor = max(1.0 + constant * rng.standard_normal(), 0.0) if constant > 0.0 else 1.0
        if factor > 0.0 and _surely_above(mu_low, e_cut[i] / factor, s2):
            em_visible[i] = np.inf
            e_ecal[i] = np.inf
            continue
        for s in range(2):
            if em[i, s, 0] > 0.0 and not em_in_hcal[i, s]:
                mu_s = _em_contained(em, i, s, bounds, x0_mm, contain, cx0, cy0, cstep,
                                     gt, ga0, gha, ghs, gamax, gxmax, False)
                if mu_s < 0.0:
                    mu_s = _em_contained(em, i, s, bounds, x0_mm, contain, cx0, cy0,
                                         cstep, gt, ga0, gha, ghs, gamax, gxmax, True)
                mu += mu_s
        visible = 0.0
        if mu > 0.0:
            visible = rng.gamma(mu / s2, s2) * factor
        em_visible[i] = visible
        e_ecal[i] = visible
