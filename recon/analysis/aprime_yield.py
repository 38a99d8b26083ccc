"""A' bremsstrahlung e Z -> e Z A' in the improved Weizsaecker-Williams (IWW) approximation.

Units: masses and energies in GeV, momentum transfer t in GeV^2, cross sections in pb,
target thickness in radiation lengths X0 (g/cm^2 in :class:`Material`).

Effective photon flux (Bjorken, Essig, Schuster, Toro [BEST], PRD 80 (2009) 075018, app. A;
form factors of Tsai, Rev. Mod. Phys. 46 (1974) 815 and Kim-Tsai, PRD 8 (1973) 3109)::

    chi = Integral_{t_min}^{t_max} dt (t - t_min) / t^2 [G2_el(t) + G2_inel(t)],
    t_min = (m^2 / 2E)^2,  t_max = m^2
    G2_el   = Z^2 [a^2 t / (1 + a^2 t)]^2 [1 / (1 + t/d)]^2,  a = 111 Z^(-1/3) / m_e,
              d = 0.164 A^(-2/3) GeV^2
    G2_inel = Z [a'^2 t / (1 + a'^2 t)]^2 [(1 + t (mu_p^2 - 1) / 4 m_p^2) / (1 + t/0.71)^4]^2,
              a' = 773 Z^(-2/3) / m_e

Energy-fraction spectrum, x = E_A' / E_e, m_A'/E_e < x < 1 - m_e/E_e (BEST app. A, the
angular integral of their double-differential form; Gninenko, Krasnikov, Kirsanov,
Kirpichnikov, PRD 94 (2016) 095025)::

    dsigma/dx = 4 alpha^3 eps^2 beta chi (1 - x + x^2/3) / (m^2 (1 - x)/x + m_e^2 x),
    beta = sqrt(1 - m^2 / E_e^2)

The prefactor is 4 alpha^3: the double-differential form carries 8 alpha^3 and the angular
integral halves it. The project notes write 8 alpha^3, which doubles every value and
contradicts the notes' own reference cross sections (docs/physics/aprime-yield-and-limit.md).

A' yield per electron on target in a thick target (Gninenko et al. 2016)::

    n_A' = (N_A X0 / A) Integral dE_e T(E_e) Integral_{x E_e in (x_min E0, E0)} dsigma/dx dx

with T(E_e) the electron track length per unit energy (X0/GeV), by default the primary-electron
depth profile of Tsai (see :mod:`recon.analysis.track_length`).

Physical constants (alpha, m_e, m_p, mu_p, N_A, hbar c) come from :mod:`scipy.constants`
(CODATA 2018). Lead properties: PDG "Atomic and nuclear properties of materials" (Pb).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import constants as sc

from recon.analysis.track_length import (
    TSAI_B,
    TrackLengthSpectrum,
    primary_depth_weights,
)

__all__ = [
    "ALPHA_EM",
    "AVOGADRO_PER_MOL",
    "GEV2_TO_PB",
    "LEAD",
    "M_E_GEV",
    "Material",
    "aprime_yield_per_eot",
    "chi_flux",
    "dsigma_dx_pb",
    "sigma_total_pb",
    "signal_cross_section_pb",
]

ALPHA_EM: float = sc.fine_structure
M_E_GEV: float = sc.physical_constants["electron mass energy equivalent in MeV"][0] * 1e-3
M_P_GEV: float = sc.physical_constants["proton mass energy equivalent in MeV"][0] * 1e-3
MU_P: float = sc.physical_constants["proton mag. mom. to nuclear magneton ratio"][0]
AVOGADRO_PER_MOL: float = sc.Avogadro
_HBARC_GEV_FM: float = sc.physical_constants["reduced Planck constant times c in MeV fm"][0] * 1e-3
GEV2_TO_PB: float = _HBARC_GEV_FM**2 * 1e10  # 1 fm^2 = 1e-26 cm^2 = 1e10 pb -> 3.894e8 pb
PB_TO_CM2: float = 1e-36

# Form-factor parameters of Tsai (1974) as used by BEST (2009), app. A.
_A_ELASTIC_COEF = 111.0  # atomic screening radius a = 111 Z^(-1/3) / m_e
_A_INELASTIC_COEF = 773.0  # inelastic screening a' = 773 Z^(-2/3) / m_e
_D_NUCLEAR_GEV2 = 0.164  # nuclear size d = 0.164 A^(-2/3) GeV^2
_PROTON_DIPOLE_GEV2 = 0.71  # proton dipole form-factor scale

# Quadrature orders: Gauss-Legendre in ln t (flux) and in ln(1 - x) (energy fraction).
_N_T_NODES = 128
_N_X_NODES = 192
_N_E_GRID = 257
_MASS_CHUNK = 8
_T_NODES, _T_WEIGHTS = np.polynomial.legendre.leggauss(_N_T_NODES)
_X_NODES, _X_WEIGHTS = np.polynomial.legendre.leggauss(_N_X_NODES)


@dataclass(frozen=True)
class Material:
    """Target material: atomic number Z, molar mass A (g/mol), radiation length, density."""

    name: str
    Z: float
    A_g_mol: float
    X0_g_cm2: float
    density_g_cm3: float

    @property
    def atoms_per_cm2_per_X0(self) -> float:
        """N_A X0 / A: atoms per cm^2 in one radiation length."""
        return AVOGADRO_PER_MOL * self.X0_g_cm2 / self.A_g_mol


LEAD = Material(name="Pb", Z=82.0, A_g_mol=207.2, X0_g_cm2=6.37, density_g_cm3=11.35)


def _gauss_legendre(lo: NDArray, hi: NDArray, nodes: NDArray, weights: NDArray):
    """Nodes (shape lo.shape + (n,)) and weights for Integral_lo^hi on a fixed rule."""
    half = 0.5 * (hi - lo)
    mid = 0.5 * (hi + lo)
    return mid[..., None] + half[..., None] * nodes, half[..., None] * weights


def _form_factor_sq(t: NDArray, Z: float, A: float) -> NDArray:
    """G2_el + G2_inel of BEST app. A (t in GeV^2)."""
    a2 = (_A_ELASTIC_COEF * Z ** (-1.0 / 3.0) / M_E_GEV) ** 2
    d = _D_NUCLEAR_GEV2 * A ** (-2.0 / 3.0)
    ap2 = (_A_INELASTIC_COEF * Z ** (-2.0 / 3.0) / M_E_GEV) ** 2
    elastic = Z**2 * (a2 * t / (1.0 + a2 * t)) ** 2 / (1.0 + t / d) ** 2
    proton = (1.0 + t * (MU_P**2 - 1.0) / (4.0 * M_P_GEV**2)) / (1.0 + t / _PROTON_DIPOLE_GEV2) ** 4
    inelastic = Z * (ap2 * t / (1.0 + ap2 * t)) ** 2 * proton**2
    return elastic + inelastic


def chi_flux(m_GeV: ArrayLike, E0_GeV: ArrayLike, *, Z: float, A: float) -> NDArray:
    """Effective photon flux chi (dimensionless) for an A' of mass m and beam energy E0.

    Integrated over ln t with a fixed Gauss-Legendre rule (128 nodes); broadcasts m, E0.

    >>> round(float(chi_flux(0.01, 100.0, Z=82, A=207.2)) / 82**2, 1)
    11.5
    """
    m, E0 = np.broadcast_arrays(np.asarray(m_GeV, float), np.asarray(E0_GeV, float))
    t_min = (m**2 / (2.0 * E0)) ** 2
    t_max = m**2
    ok = (m > 0) & (t_max > t_min)
    safe_min = np.where(ok, t_min, 1e-30)
    safe_max = np.where(ok, t_max, 1e-29)
    ln_t, w = _gauss_legendre(np.log(safe_min), np.log(safe_max), _T_NODES, _T_WEIGHTS)
    t = np.exp(ln_t)
    integrand = (t - safe_min[..., None]) / t * _form_factor_sq(t, Z, A)  # dt = t dln t
    return np.where(ok, np.sum(w * integrand, axis=-1), 0.0)


def _x_shape(x: NDArray, m: NDArray, E: NDArray) -> NDArray:
    """beta (1 - x + x^2/3) / (m^2 (1-x)/x + m_e^2 x), GeV^-2."""
    beta = np.sqrt(np.clip(1.0 - (m / E) ** 2, 0.0, None))
    return beta * (1.0 - x + x**2 / 3.0) / (m**2 * (1.0 - x) / x + M_E_GEV**2 * x)


def _x_shape_integral(m: NDArray, E: NDArray, x_lo: NDArray) -> NDArray:
    """Integral_{max(x_lo, m/E)}^{1 - m_e/E} of :func:`_x_shape` dx (GeV^-2).

    Substitution v = ln(1 - x) resolves the peak at 1 - x ~ m_e^2/m^2.
    """
    m, E, x_lo = np.broadcast_arrays(*(np.asarray(a, float) for a in (m, E, x_lo)))
    lo = np.maximum(x_lo, m / E)
    hi = 1.0 - M_E_GEV / E
    ok = (lo < hi) & (m < E)
    v_hi = np.log1p(-np.where(ok, lo, 0.0))
    v_lo = np.log(np.where(ok, 1.0 - hi, 0.5))
    v, w = _gauss_legendre(v_lo, v_hi, _X_NODES, _X_WEIGHTS)
    one_minus_x = np.exp(v)
    values = _x_shape(1.0 - one_minus_x, m[..., None], E[..., None]) * one_minus_x
    return np.where(ok, np.sum(w * values, axis=-1), 0.0)


def _prefactor_pb(eps: ArrayLike, chi: NDArray) -> NDArray:
    return 4.0 * ALPHA_EM**3 * np.asarray(eps, float) ** 2 * chi * GEV2_TO_PB


def dsigma_dx_pb(
    x: ArrayLike, m_GeV: ArrayLike, E_GeV: ArrayLike, *, eps: ArrayLike, Z: float, A: float
) -> NDArray:
    """dsigma/dx (pb) for e Z -> e Z A' at electron energy E; zero outside m/E < x < 1 - m_e/E.

    >>> float(dsigma_dx_pb(1.5, 0.01, 100.0, eps=1e-4, Z=82, A=207.2))
    0.0
    """
    x, m, E = np.broadcast_arrays(*(np.asarray(a, float) for a in (x, m_GeV, E_GeV)))
    inside = (x > m / E) & (x < 1.0 - M_E_GEV / E) & (m < E)
    x_safe = np.where(inside, x, 0.5)
    value = _prefactor_pb(eps, chi_flux(m, E, Z=Z, A=A)) * _x_shape(x_safe, m, E)
    return np.where(inside, value, 0.0)


def signal_cross_section_pb(
    m_GeV: ArrayLike, E_GeV: ArrayLike, x_lo: ArrayLike, *, eps: ArrayLike, Z: float, A: float
) -> NDArray:
    """Integral of dsigma/dx (pb) over max(x_lo, m/E) < x < 1 - m_e/E."""
    m, E = np.broadcast_arrays(np.asarray(m_GeV, float), np.asarray(E_GeV, float))
    chi = chi_flux(m, E, Z=Z, A=A)
    return _prefactor_pb(eps, chi) * _x_shape_integral(m, E, x_lo)


def sigma_total_pb(
    m_GeV: ArrayLike, E_GeV: ArrayLike, *, eps: ArrayLike, Z: float, A: float
) -> NDArray:
    """Total IWW cross section (pb) integrated over m/E < x < 1 - m_e/E.

    >>> round(float(sigma_total_pb(0.1, 100.0, eps=1e-4, Z=82, A=207.2)))
    169
    """
    return signal_cross_section_pb(m_GeV, E_GeV, 0.0, eps=eps, Z=Z, A=A)


def _signal_xsec_on_energy_grid(
    m: NDArray, E_grid: NDArray, E_signal_min: float, material: Material
) -> NDArray:
    """sigma(x E_e > E_signal_min) at eps = 1 (pb), shape (n_masses, n_grid).

    Masses go in chunks to bound the (mass, energy, node) temporaries to ~40 MB.
    """
    x_lo = E_signal_min / E_grid
    chunks = np.array_split(m, max(1, -(-m.size // _MASS_CHUNK)))
    return np.concatenate(
        [
            signal_cross_section_pb(
                chunk[:, None],
                E_grid[None, :],
                x_lo[None, :],
                eps=1.0,
                Z=material.Z,
                A=material.A_g_mol,
            )
            for chunk in chunks
        ]
    )


def _interp_rows(x_new: NDArray, x_grid: NDArray, rows: NDArray) -> NDArray:
    """Linear interpolation of every row of ``rows`` (on ``x_grid``) at ``x_new``; 0 outside."""
    idx = np.clip(np.searchsorted(x_grid, x_new) - 1, 0, x_grid.size - 2)
    frac = (x_new - x_grid[idx]) / (x_grid[idx + 1] - x_grid[idx])
    inside = (x_new >= x_grid[0]) & (x_new <= x_grid[-1])
    values = rows[:, idx] * (1.0 - frac) + rows[:, idx + 1] * frac
    return np.where(inside, values, 0.0)


def aprime_yield_per_eot(
    m_GeV: ArrayLike,
    *,
    eps: ArrayLike,
    E0_GeV: float = 100.0,
    x_min: float = 0.5,
    material: Material = LEAD,
    track_length: TrackLengthSpectrum | None = None,
    depth_X0: float = np.inf,
    b: float = TSAI_B,
) -> NDArray:
    """Number of A' per electron on target with x_min E0 < E_A' < E0, as a function of mass.

    ``track_length`` None uses Tsai's primary-electron profile integrated over depth
    (0, ``depth_X0``); otherwise the given histogram of track length (X0/GeV) is used.
    Scales exactly as eps^2.

    >>> y = aprime_yield_per_eot([0.01, 0.1], eps=1.0)
    >>> bool(y[0] > y[1] > 0)
    True
    """
    m = np.asarray(m_GeV, float).ravel()
    E_signal_min = x_min * E0_GeV
    ln_grid = np.linspace(np.log(E_signal_min), np.log(E0_GeV), _N_E_GRID)
    E_grid = np.exp(ln_grid)
    sigma_grid_pb = _signal_xsec_on_energy_grid(m, E_grid, E_signal_min, material)
    if track_length is None:
        E_nodes, weight_X0 = primary_depth_weights(E0_GeV, E_signal_min, depth_X0=depth_X0, b=b)
    else:
        E_nodes, weight_X0 = track_length.quadrature(E_signal_min, E0_GeV)
    sigma_nodes = _interp_rows(np.log(E_nodes), ln_grid, sigma_grid_pb)
    per_eot_eps1 = material.atoms_per_cm2_per_X0 * PB_TO_CM2 * (sigma_nodes @ weight_X0)
    return per_eot_eps1.reshape(np.shape(m_GeV)) * np.asarray(eps, float) ** 2
