"""Parametrised showers and MIP deposits in the ECAL and HCAL.

Units: GeV, mm, depth in radiation lengths X0 (ECAL, EM) or interaction lengths
lambda_I (hadronic).

EM longitudinal profile (Longo and Sestili, NIM 128 (1975) 283; PDG "Passage of
particles through matter", eq. 34.36):

    dE/dt = E b (b t)^(a-1) e^(-b t) / Gamma(a),   T = (a - 1)/b  (shower maximum)

with event-by-event correlated fluctuations of ln T and ln a as parametrised by
Grindhammer and Peters (hep-ex/0001020, homogeneous media, y = E/E_c):
``<ln T> = ln(ln y + t_offset)``, ``<ln a> = ln(c0 + (c1 + c2/Z) ln y)``,
``sigma(ln T) = 1/(-1.4 + 1.26 ln y)``, ``sigma(ln a) = 1/(-0.58 + 0.86 ln y)``,
``rho = 0.705 + 0.023 ln y``. The energy of a section [t1, t2] of a shower
starting at depth t0 is ``P(a, b (t2 - t0)) - P(a, b (t1 - t0))`` with P the
regularised lower incomplete gamma function (preshower about 3 % at 100 GeV).

Lateral profile: two components of the Grindhammer-Peters radial form
``f(r) = 2 r R^2 / (r^2 + R^2)^2``, i.e. the 2D density
``R^2 / (pi (x^2 + y^2 + R^2)^2)``, whose integral over the quadrant
[0, a] x [0, b] is analytic,

    G(a, b) = [a/A atan(b/A) + b/B atan(a/B)] / (2 pi),  A = sqrt(a^2 + R^2), B = sqrt(b^2 + R^2),

so cell energies are exact rectangle integrals (four G per cell and component).
Radii in Moliere radii per section (``ecal.lateral``), fitted to 90 % of the
energy within 1 R_M and 95 % within 2 R_M.

Energy resolution: the visible energy of a shower is Gamma-distributed with mean
mu (the contained energy) and variance ``s^2 mu`` (``s = 0.10 GeV^1/2``), times
``(1 + c N(0, 1))`` with ``c = 1 %``. Because independent Gamma variables of a
common scale sum to a Gamma, the event total can be drawn first (cheaply, for the
trigger) and split over cells afterwards with a Dirichlet draw of the same shape
parameters: cell energies then fluctuate as independent sampling fluctuations
and add up exactly to the total.

Hadronic showers: longitudinal Gamma profile in lambda_I from the first
interaction (``hadron.profile_a/b``, ``a`` log-normal per event), visible energy
with ``60 %/sqrt(E)`` in the HCAL (same Gamma/Dirichlet scheme); lateral
two-component profile in mm. MIPs: Moyal-distributed (Moyal, Phil. Mag. 46
(1955) 263; an approximation of the Landau distribution) with mode ``mpv``:
``E = mpv (1 + w X)``, ``X = -ln(Z^2)``, ``Z ~ N(0, 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numba as nb
import numpy as np
from scipy.special import gammainc

from recon.conditions.geometry import Geometry

__all__ = [
    "CaloLayout",
    "ContainmentTable",
    "EcalParams",
    "HadronParams",
    "HcalParams",
    "LateralProfile",
    "LongitudinalParams",
    "add_cell_deposits",
    "containment_table",
    "dirichlet_split",
    "em_section_fractions",
    "gamma_profile_cdf",
    "hadron_section_fractions",
    "lateral_fraction",
    "moyal",
    "sample_em_longitudinal",
    "sample_visible_total",
]


@dataclass(frozen=True)
class LongitudinalParams:
    critical_energy_GeV: float
    z_eff: float
    t_offset: float
    alpha_coeffs: tuple[float, float, float]
    sigma_ln_t_coeffs: tuple[float, float]
    sigma_ln_alpha_coeffs: tuple[float, float]
    rho_coeffs: tuple[float, float]

    @classmethod
    def from_dict(cls, d: dict) -> LongitudinalParams:
        return cls(
            critical_energy_GeV=float(d["critical_energy_GeV"]),
            z_eff=float(d["z_eff"]),
            t_offset=float(d["t_offset"]),
            alpha_coeffs=tuple(d["alpha_coeffs"]),
            sigma_ln_t_coeffs=tuple(d["sigma_ln_t_coeffs"]),
            sigma_ln_alpha_coeffs=tuple(d["sigma_ln_alpha_coeffs"]),
            rho_coeffs=tuple(d["rho_coeffs"]),
        )


@dataclass(frozen=True)
class LateralProfile:
    """Two-component radial profile: radii in mm and the core fraction."""

    core_radius_mm: float
    tail_radius_mm: float
    core_fraction: float


@dataclass(frozen=True)
class EcalParams:
    """ECAL response; lateral radii in Moliere radii, per section name."""

    sampling_GeV_sqrt: float
    constant_term: float
    depth_lambda: float
    longitudinal: LongitudinalParams
    lateral_RM: dict[str, LateralProfile]
    hadron_radius_mm: float
    mip_mpv_GeV: dict[str, float]
    mip_width_rel: float
    muon_energy_loss_GeV: float

    @classmethod
    def from_dict(cls, d: dict) -> EcalParams:
        lateral = {
            name: LateralProfile(
                core_radius_mm=float(spec["core_radius_RM"]),
                tail_radius_mm=float(spec["tail_radius_RM"]),
                core_fraction=float(spec["core_fraction"]),
            )
            for name, spec in d["lateral"].items()
            if isinstance(spec, dict)
        }
        return cls(
            sampling_GeV_sqrt=float(d["sampling_GeV_sqrt"]),
            constant_term=float(d["constant_term"]),
            depth_lambda=float(d["depth_lambda"]),
            longitudinal=LongitudinalParams.from_dict(d["longitudinal"]),
            lateral_RM=lateral,
            hadron_radius_mm=float(d["lateral"]["hadron_radius_mm"]),
            mip_mpv_GeV={k: float(v) for k, v in d["mip_mpv_GeV"].items()},
            mip_width_rel=float(d["mip_width_rel"]),
            muon_energy_loss_GeV=float(d["muon_energy_loss_GeV"]),
        )

    def profiles_mm(
        self, sections: tuple[str, ...], moliere_mm: float
    ) -> tuple[LateralProfile, ...]:
        """Per-section profiles with radii converted to mm."""
        return tuple(
            LateralProfile(
                core_radius_mm=self.lateral_RM[s].core_radius_mm * moliere_mm,
                tail_radius_mm=self.lateral_RM[s].tail_radius_mm * moliere_mm,
                core_fraction=self.lateral_RM[s].core_fraction,
            )
            for s in sections
        )


@dataclass(frozen=True)
class HcalParams:
    sampling_GeV_sqrt: float
    mip_mode_GeV: float
    mip_width_rel: float
    muon_energy_loss_per_module_GeV: float
    lateral: LateralProfile
    punch_through_scale_GeV: float

    @classmethod
    def from_dict(cls, d: dict) -> HcalParams:
        return cls(
            sampling_GeV_sqrt=float(d["sampling_GeV_sqrt"]),
            mip_mode_GeV=float(d["mip_mode_GeV"]),
            mip_width_rel=float(d["mip_width_rel"]),
            muon_energy_loss_per_module_GeV=float(d["muon_energy_loss_per_module_GeV"]),
            lateral=LateralProfile(**{k: float(v) for k, v in d["lateral"].items()}),
            punch_through_scale_GeV=float(d["punch_through_scale_GeV"]),
        )


@dataclass(frozen=True)
class HadronParams:
    profile_a: float
    profile_b: float
    sigma_ln_a: float
    ecal_sampling_GeV_sqrt: float
    invisible_fraction_max: float
    charge_exchange_fraction: float
    charge_exchange_bias: float
    charge_exchange_pi0_fraction: tuple[float, float]
    neutron_escape_probability: float
    v2_tracks_per_leak_GeV: float

    @classmethod
    def from_dict(cls, d: dict) -> HadronParams:
        values = {k: v for k, v in d.items() if k != "charge_exchange_pi0_fraction"}
        lo, hi = d["charge_exchange_pi0_fraction"]
        return cls(
            **{k: float(v) for k, v in values.items()},
            charge_exchange_pi0_fraction=(float(lo), float(hi)),
        )


@dataclass(frozen=True)
class CaloLayout:
    """Cell edges (mm) of a calorimeter matrix and its longitudinal layers."""

    x_edges: np.ndarray
    y_edges: np.ndarray
    layer_bounds: np.ndarray  # ECAL: section bounds in X0; HCAL: module bounds in lambda_I
    layer_z_mm: np.ndarray  # front z of each layer
    depth_unit_mm: float  # mm per X0 (ECAL) or per lambda_I (HCAL)
    layer_names: tuple[str, ...]

    @classmethod
    def ecal(cls, geometry: Geometry) -> CaloLayout:
        g = geometry.ecal
        depths = np.array([s["depth_X0"] for s in g.extra["sections"]], dtype=float)
        bounds = np.concatenate([[0.0], np.cumsum(depths)])
        x0_mm = float(g.extra["radiation_length"])
        return cls(
            x_edges=g.cell_x(np.arange(g.n_x + 1) - 0.5),
            y_edges=g.cell_y(np.arange(g.n_y + 1) - 0.5),
            layer_bounds=bounds,
            layer_z_mm=g.z_front + bounds[:-1] * x0_mm,
            depth_unit_mm=x0_mm,
            layer_names=tuple(str(s["name"]) for s in g.extra["sections"]),
        )

    @classmethod
    def hcal(cls, geometry: Geometry) -> CaloLayout:
        g = geometry.hcal
        n = len(geometry.hcal_z_fronts)
        lam = float(g.extra["depth_lambda"])
        length = float(g.extra["module_length"])
        return cls(
            x_edges=g.cell_x(np.arange(g.n_x + 1) - 0.5),
            y_edges=g.cell_y(np.arange(g.n_y + 1) - 0.5),
            layer_bounds=lam * np.arange(n + 1, dtype=float),
            layer_z_mm=np.asarray(geometry.hcal_z_fronts, dtype=float),
            depth_unit_mm=length / lam,
            layer_names=tuple(f"module{k}" for k in range(n)),
        )

    @property
    def n_layers(self) -> int:
        return self.layer_bounds.shape[0] - 1


# ---------------------------------------------------------------------------- longitudinal


def sample_em_longitudinal(
    E_GeV: np.ndarray, rng: np.random.Generator, params: LongitudinalParams
) -> tuple[np.ndarray, np.ndarray]:
    """Gamma-profile parameters (a, b) per shower with GP correlated fluctuations."""
    ln_y = np.log(
        np.maximum(np.asarray(E_GeV, float), 2.0 * params.critical_energy_GeV)
        / params.critical_energy_GeV
    )
    ln_y = np.maximum(ln_y, 1.5)  # keeps the GP widths finite for soft showers
    c0, c1, c2 = params.alpha_coeffs
    mean_ln_t = np.log(np.maximum(ln_y + params.t_offset, 0.5))
    mean_ln_a = np.log(c0 + (c1 + c2 / params.z_eff) * ln_y)
    sig_t = 1.0 / np.maximum(params.sigma_ln_t_coeffs[0] + params.sigma_ln_t_coeffs[1] * ln_y, 1.0)
    sig_a = 1.0 / np.maximum(
        params.sigma_ln_alpha_coeffs[0] + params.sigma_ln_alpha_coeffs[1] * ln_y, 1.0
    )
    rho = np.clip(params.rho_coeffs[0] + params.rho_coeffs[1] * ln_y, -1.0, 1.0)
    z1, z2 = rng.standard_normal((2, ln_y.shape[0]))
    t_max = np.exp(mean_ln_t + sig_t * z1)
    a = np.maximum(np.exp(mean_ln_a + sig_a * (rho * z1 + np.sqrt(1.0 - rho**2) * z2)), 1.05)
    return a, (a - 1.0) / t_max


def gamma_profile_cdf(a, b, depth):
    """Fraction of a Gamma(a, b) profile before ``depth`` (0 for depth <= 0)."""
    return gammainc(a, b * np.maximum(depth, 0.0))


def em_section_fractions(a, b, t0_X0, bounds_X0: np.ndarray) -> np.ndarray:
    """(n, n_sections) energy fractions of EM showers starting at depth ``t0_X0``.

    Incomplete-gamma evaluations only where the bound lies behind the shower start.
    """
    cdf = np.zeros((a.shape[0], bounds_X0.shape[0]))
    for j, bound in enumerate(bounds_X0):
        depth = bound - t0_X0
        positive = depth > 0
        if positive.all():
            cdf[:, j] = gammainc(a, b * depth)
        elif positive.any():
            cdf[positive, j] = gammainc(a[positive], b[positive] * depth[positive])
    return np.diff(cdf, axis=1)


def hadron_section_fractions(a, b, start, bounds: np.ndarray) -> np.ndarray:
    """(n, n_layers) fractions of a hadronic profile started at depth ``start`` (lambda_I)."""
    return em_section_fractions(a, b, start, bounds)


# ---------------------------------------------------------------------------- lateral


@nb.njit(cache=True, nogil=True)
def _quadrant(a, b, radius):
    if a == 0.0 or b == 0.0:
        return 0.0
    big_a = np.sqrt(a * a + radius * radius)
    big_b = np.sqrt(b * b + radius * radius)
    return (a / big_a * np.arctan(b / big_a) + b / big_b * np.arctan(a / big_b)) / (2.0 * np.pi)


@nb.njit(cache=True, nogil=True)
def _quadrant_pre(a, a_over_big_a, inv_big_a, b, b_over_big_b, inv_big_b):
    """:func:`_quadrant` with ``A = sqrt(a^2 + R^2)``, ``B`` and their ratios precomputed."""
    if a == 0.0 or b == 0.0:
        return 0.0
    return (a_over_big_a * np.arctan(b * inv_big_a) + b_over_big_b * np.arctan(a * inv_big_b)) / (
        2.0 * np.pi
    )


@nb.njit(cache=True, nogil=True)
def _cells_kernel(E, x, y, x_edges, y_edges, r_core, r_tail, p_core, out):
    """Cell integrals from the quadrant function at the (nx+1) x (ny+1) cell corners.

    The square roots ``A = sqrt(a^2 + R^2)`` depend on one corner coordinate only and are
    computed once per column / row and radius.
    """
    m, n_layers = E.shape
    nx = x_edges.shape[0] - 1
    ny = y_edges.shape[0] - 1
    corner = np.empty((nx + 1, ny + 1))
    col = np.empty((2, 3, nx + 1))  # per radius: a, a/A, 1/A
    row = np.empty((2, 3, ny + 1))
    for i in range(m):
        for k in range(n_layers):
            e = E[i, k]
            if e == 0.0 or not np.isfinite(x[i, k]):
                continue
            for r in range(2):
                radius = r_core[k] if r == 0 else r_tail[k]
                for ix in range(nx + 1):
                    a = x_edges[ix] - x[i, k]
                    inv = 1.0 / np.sqrt(a * a + radius * radius)
                    col[r, 0, ix], col[r, 1, ix], col[r, 2, ix] = a, a * inv, inv
                for iy in range(ny + 1):
                    b = y_edges[iy] - y[i, k]
                    inv = 1.0 / np.sqrt(b * b + radius * radius)
                    row[r, 0, iy], row[r, 1, iy], row[r, 2, iy] = b, b * inv, inv
            w_core = p_core[k]
            w_tail = 1.0 - p_core[k]
            for ix in range(nx + 1):
                for iy in range(ny + 1):
                    value = 0.0
                    if w_core != 0.0:  # single-component profiles skip the other one
                        value += w_core * _quadrant_pre(
                            col[0, 0, ix], col[0, 1, ix], col[0, 2, ix],
                            row[0, 0, iy], row[0, 1, iy], row[0, 2, iy],
                        )
                    if w_tail != 0.0:
                        value += w_tail * _quadrant_pre(
                            col[1, 0, ix], col[1, 1, ix], col[1, 2, ix],
                            row[1, 0, iy], row[1, 1, iy], row[1, 2, iy],
                        )
                    corner[ix, iy] = value
            for ix in range(nx):
                for iy in range(ny):
                    out[i, k, ix, iy] += e * (
                        corner[ix + 1, iy + 1]
                        - corner[ix, iy + 1]
                        - corner[ix + 1, iy]
                        + corner[ix, iy]
                    )


def add_cell_deposits(
    out: np.ndarray,
    E_GeV: np.ndarray,
    x_mm: np.ndarray,
    y_mm: np.ndarray,
    layout: CaloLayout,
    profiles: tuple[LateralProfile, ...],
) -> None:
    """Add showers of energy ``E_GeV`` (m, n_layers) centred at (x, y) (m, n_layers) to cells.

    ``out`` has shape (m, n_layers, n_x, n_y); ``profiles`` one per layer.
    """
    _cells_kernel(
        np.ascontiguousarray(E_GeV, dtype=float),
        np.ascontiguousarray(x_mm, dtype=float),
        np.ascontiguousarray(y_mm, dtype=float),
        layout.x_edges,
        layout.y_edges,
        np.array([p.core_radius_mm for p in profiles]),
        np.array([p.tail_radius_mm for p in profiles]),
        np.array([p.core_fraction for p in profiles]),
        out,
    )


def _quadrant_np(a, b, radius):
    big_a = np.sqrt(a * a + radius * radius)
    big_b = np.sqrt(b * b + radius * radius)
    return (a / big_a * np.arctan(b / big_a) + b / big_b * np.arctan(a / big_b)) / (2.0 * np.pi)


def lateral_fraction(x_mm, y_mm, x_lo, x_hi, y_lo, y_hi, profile: LateralProfile):
    """Fraction of a shower centred at (x, y) inside the rectangle (vectorised)."""
    total = 0.0
    for radius, weight in (
        (profile.core_radius_mm, profile.core_fraction),
        (profile.tail_radius_mm, 1.0 - profile.core_fraction),
    ):
        x1, x2 = x_lo - x_mm, x_hi - x_mm
        y1, y2 = y_lo - y_mm, y_hi - y_mm
        total = total + weight * (
            _quadrant_np(x2, y2, radius)
            - _quadrant_np(x1, y2, radius)
            - _quadrant_np(x2, y1, radius)
            + _quadrant_np(x1, y1, radius)
        )
    return np.where(np.isfinite(total), total, 0.0)


@dataclass(frozen=True)
class ContainmentTable:
    """Fraction of a shower inside a rectangle versus the axis position, on a 1 mm grid.

    Bilinear interpolation of :func:`lateral_fraction`; zero beyond the grid
    (``margin_mm`` outside the rectangle, where less than 0.2 % would be contained).
    """

    x0_mm: float
    y0_mm: float
    step_mm: float
    values: np.ndarray

    def __call__(self, x_mm: np.ndarray, y_mm: np.ndarray) -> np.ndarray:
        fx = (np.asarray(x_mm, float) - self.x0_mm) / self.step_mm
        fy = (np.asarray(y_mm, float) - self.y0_mm) / self.step_mm
        nx, ny = self.values.shape
        ok = (fx >= 0) & (fx < nx - 1) & (fy >= 0) & (fy < ny - 1)
        fx = np.where(ok, fx, 0.0)
        fy = np.where(ok, fy, 0.0)
        ix = fx.astype(np.int64)
        iy = fy.astype(np.int64)
        wx = fx - ix
        wy = fy - iy
        v = self.values
        inter = (
            (1 - wx) * (1 - wy) * v[ix, iy]
            + wx * (1 - wy) * v[ix + 1, iy]
            + (1 - wx) * wy * v[ix, iy + 1]
            + wx * wy * v[ix + 1, iy + 1]
        )
        return np.where(ok, inter, 0.0)


@cache
def containment_table(
    rect: tuple[float, float, float, float], profile: LateralProfile, margin_mm: float = 400.0
) -> ContainmentTable:
    """Tabulate the containment of ``profile`` in ``rect`` = (x_lo, x_hi, y_lo, y_hi)."""
    x_lo, x_hi, y_lo, y_hi = rect
    step = 1.0
    xs = np.arange(x_lo - margin_mm, x_hi + margin_mm + step, step)
    ys = np.arange(y_lo - margin_mm, y_hi + margin_mm + step, step)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    values = lateral_fraction(gx, gy, x_lo, x_hi, y_lo, y_hi, profile)
    return ContainmentTable(float(xs[0]), float(ys[0]), step, values)


# ---------------------------------------------------------------------------- fluctuations


def sample_visible_total(
    mu_GeV: np.ndarray, rng: np.random.Generator, stochastic: float, constant: float = 0.0
) -> np.ndarray:
    """Visible energy: Gamma(mu/s^2, s^2) (variance s^2 mu) times (1 + c N(0,1))."""
    s2 = stochastic**2
    total = rng.gamma(np.maximum(mu_GeV, 0.0) / s2, s2)
    if constant > 0.0:
        total *= np.maximum(1.0 + constant * rng.standard_normal(total.shape), 0.0)
    return total


@nb.njit(cache=True, nogil=True)
def _dirichlet_kernel(rng, flat, total, inv_s2, out):
    """Per row: Gamma(mu / s^2) draws for cells with mu > 0, normalised, times the total."""
    m, n_cells = flat.shape
    for i in range(m):
        norm = 0.0
        fallback = 0.0
        for c in range(n_cells):
            mu = flat[i, c]
            fallback += mu
            d = rng.gamma(mu * inv_s2, 1.0) if mu > 0.0 else 0.0
            out[i, c] = d
            norm += d
        if norm > 0.0:
            scale = total[i] / norm
            for c in range(n_cells):
                out[i, c] *= scale
        else:
            scale = total[i] / fallback if fallback > 0.0 else total[i]
            for c in range(n_cells):
                out[i, c] = flat[i, c] * scale


def dirichlet_split(
    expected: np.ndarray, total: np.ndarray, rng: np.random.Generator, stochastic: float
) -> np.ndarray:
    """Split ``total`` (m,) over cells with the sampling fluctuations of ``expected`` (m, ...).

    Independent Gamma(mu_cell / s^2) draws normalised per event: the Dirichlet
    distribution of independent sampling fluctuations conditioned on their sum
    (one numba pass, the draws in cell order; cells with mu <= 0 draw nothing). If
    every draw is zero the split follows ``expected``.
    """
    m = expected.shape[0]
    flat = np.ascontiguousarray(expected.reshape(m, -1), dtype=np.float64)
    out = np.empty_like(flat)
    _dirichlet_kernel(rng, flat, np.ascontiguousarray(total, dtype=np.float64),
                      1.0 / stochastic**2, out)
    return out.reshape(expected.shape)


def moyal(rng: np.random.Generator, size) -> np.ndarray:
    """Standard Moyal variates (mode 0, mean 1.27): X = -ln(Z^2), Z ~ N(0, 1)."""
    z = rng.standard_normal(size)
    return -np.log(np.maximum(z * z, 1e-300))
