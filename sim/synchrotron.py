"""Synchrotron radiation of electrons in the dipoles and the SRD response.

Units: GeV, mm, T. Formulas (J. D. Jackson, Classical Electrodynamics, ch. 14;
H. Wiedemann, Particle Accelerator Physics, ch. 24; shared/physics/notes.md):

* bending radius ``rho = p / (c B)`` (``c = 0.299792458`` GeV/(T m));
* critical energy ``E_c = 3 hbar c gamma^3 / (2 rho)`` (11.6 MeV at 100 GeV, 1.75 T);
* photons per unit path ``dN/ds = 5 alpha gamma / (2 sqrt(3) rho)`` (10.8 per metre);
* photon spectrum in ``xi = E/E_c``: ``dN/dxi ∝ Integral_xi^inf K_{5/3}(t) dt``, i.e. the
  universal power spectrum ``S(xi) = 9 sqrt(3)/(8 pi) xi Integral_xi^inf K_{5/3}`` divided by
  xi; mean ``<xi> = 8 / (15 sqrt 3) = 0.308``.

A 100 GeV electron crossing the two 2 m magnets therefore emits about 43 photons,
155 MeV in all. Photons are emitted at uniformly distributed points of the
helix and leave tangent to it; they are followed in straight lines to the SRD
plane, and a photon landing inside an SRD module's (x, y) rectangle (geometry
counters SRD0..2) deposits its energy there. The module's own sampling
fluctuation makes the visible energy Gamma-distributed with mean E and variance
``s^2 E`` (``srd.sampling_GeV_sqrt``). Heavier particles radiate ``(m_e/m)^4``
less at equal momentum: nothing visible, so only electrons are treated. The
energy carried away is subtracted from the electron on average
(:func:`mean_energy_loss_GeV`), not event by event.

Knock-on electrons (NA64 PRL 118 (2017) 011802): a hadron or muon crossing the
vessel exit window knocks out an electron into one SRD module with probability
``srd.knockon_probability``, energy from a 1/E^2 spectrum.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy import constants as sc
from scipy.special import kv

from recon.conditions.geometry import Geometry
from sim.transport import C_GEV_PER_T_MM, Dipoles

__all__ = [
    "MEAN_XI",
    "SrdModules",
    "SrdParams",
    "critical_energy_GeV",
    "knockon_deposits",
    "mean_energy_loss_GeV",
    "photons_per_mm",
    "sample_xi",
    "sr_photons",
    "srd_absorbed_GeV",
    "srd_visible_GeV",
]

ALPHA = sc.fine_structure
M_E_GEV = sc.physical_constants["electron mass energy equivalent in MeV"][0] * 1e-3
HBARC_GEV_MM = sc.physical_constants["reduced Planck constant times c in MeV fm"][0] * 1e-15
MEAN_XI = 8.0 / (15.0 * np.sqrt(3.0))


@dataclass(frozen=True)
class SrdParams:
    sampling_GeV_sqrt: float
    knockon_probability: float
    knockon_energy_range_GeV: tuple[float, float]

    @classmethod
    def from_dict(cls, data: dict) -> SrdParams:
        return cls(
            sampling_GeV_sqrt=float(data["sampling_GeV_sqrt"]),
            knockon_probability=float(data["knockon_probability"]),
            knockon_energy_range_GeV=tuple(float(v) for v in data["knockon_energy_range_GeV"]),
        )


@dataclass(frozen=True)
class SrdModules:
    """Rectangles (mm) of the SRD modules in counter-id order, all at ``z_mm``."""

    x_lo: np.ndarray
    x_hi: np.ndarray
    y_lo: np.ndarray
    y_hi: np.ndarray
    z_mm: float

    @classmethod
    def from_geometry(cls, geometry: Geometry) -> SrdModules:
        mods = sorted(
            (c for c in geometry.counters.values() if c.name.startswith("SRD")), key=lambda c: c.id
        )
        z = {c.z for c in mods}
        if len(z) != 1:
            raise ValueError("SRD modules must share one z plane")
        return cls(
            x_lo=np.array([c.x - c.size_x / 2 for c in mods]),
            x_hi=np.array([c.x + c.size_x / 2 for c in mods]),
            y_lo=np.array([c.y - c.size_y / 2 for c in mods]),
            y_hi=np.array([c.y + c.size_y / 2 for c in mods]),
            z_mm=float(z.pop()),
        )

    def __len__(self) -> int:
        return self.x_lo.shape[0]


def _bend_radius_mm(p_GeV, B_T):
    return np.asarray(p_GeV, float) / (C_GEV_PER_T_MM * np.abs(B_T))


def critical_energy_GeV(p_GeV, B_T, mass_GeV: float = M_E_GEV):
    """E_c = 3 hbar c gamma^3 / (2 rho)."""
    p = np.asarray(p_GeV, float)
    gamma = np.sqrt(p**2 + mass_GeV**2) / mass_GeV
    return 1.5 * HBARC_GEV_MM * gamma**3 / _bend_radius_mm(p, B_T)


def photons_per_mm(p_GeV, B_T, mass_GeV: float = M_E_GEV):
    """dN/ds = 5 alpha gamma / (2 sqrt 3 rho)."""
    p = np.asarray(p_GeV, float)
    gamma = np.sqrt(p**2 + mass_GeV**2) / mass_GeV
    return 5.0 * ALPHA * gamma / (2.0 * np.sqrt(3.0) * _bend_radius_mm(p, B_T))


def mean_energy_loss_GeV(p_GeV, dipoles: Dipoles, mass_GeV: float = M_E_GEV):
    """Mean energy radiated crossing all dipoles (straight-path length approximation)."""
    p = np.asarray(p_GeV, float)
    total = np.zeros_like(p)
    for z0, z1, b in zip(dipoles.z_start_mm, dipoles.z_end_mm, dipoles.b_y_T, strict=True):
        n = photons_per_mm(p, b, mass_GeV) * (z1 - z0)
        total = total + n * MEAN_XI * critical_energy_GeV(p, b, mass_GeV)
    return total


@cache
def _xi_table(n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """(cumulative number fraction, ln xi) of dN/dxi ∝ Integral_xi^inf K_{5/3}."""
    ln_xi = np.linspace(np.log(1e-9), np.log(60.0), n)
    xi = np.exp(ln_xi)
    k53 = kv(5.0 / 3.0, xi) * xi  # integrand in d ln t
    step = np.diff(ln_xi)
    tail = np.concatenate([np.cumsum((0.5 * (k53[1:] + k53[:-1]) * step)[::-1])[::-1], [0.0]])
    dn = tail * xi  # dN/d ln xi
    cdf = np.concatenate([[3.0 * dn[0]], 3.0 * dn[0] + np.cumsum(0.5 * (dn[1:] + dn[:-1]) * step)])
    return cdf / cdf[-1], ln_xi


def sample_xi(u: np.ndarray) -> np.ndarray:
    """Photon energies in units of E_c from uniforms ``u`` (inverse CDF of the number spectrum)."""
    cdf, ln_xi = _xi_table()
    return np.exp(np.interp(u, cdf, ln_xi))


@dataclass
class SrPhotons:
    """Synchrotron photons at the SRD plane: owning event, position (mm), energy (GeV)."""

    event: np.ndarray
    x_mm: np.ndarray
    y_mm: np.ndarray
    E_GeV: np.ndarray


def sr_photons(
    entry: np.ndarray,
    is_electron: np.ndarray,
    dipoles: Dipoles,
    z_plane_mm: float,
    rng: np.random.Generator,
) -> SrPhotons:
    """Photons radiated by electrons in every dipole, followed to ``z_plane_mm``.

    ``entry`` (m, n_dipoles, 5): (x, y, tx, ty, p) at each dipole entrance; ``is_electron``
    (m, n_dipoles) marks an e- there (charge -1; e+ would bend the other way, none occur).
    """
    parts = []
    for j, (z0, z1, b) in enumerate(
        zip(dipoles.z_start_mm, dipoles.z_end_mm, dipoles.b_y_T, strict=True)
    ):
        state = entry[:, j, :]
        idx = np.flatnonzero(is_electron[:, j] & np.isfinite(state[:, 0]))
        x0, y0, tx, ty, p = (state[idx, c] for c in range(5))
        norm = np.sqrt(1.0 + tx**2 + ty**2)
        ux, uy, uz = tx / norm, ty / norm, 1.0 / norm
        r = np.hypot(ux, uz)
        phi0 = np.arctan2(ux, uz)
        kappa = -C_GEV_PER_T_MM * b / p
        phi1 = np.arcsin(np.clip(np.sin(phi0) - kappa * (z1 - z0) / r, -1.0, 1.0))
        path = (phi0 - phi1) / kappa
        rho_mm = 1.0 / (np.abs(kappa) * r)
        gamma = np.sqrt(p**2 + M_E_GEV**2) / M_E_GEV
        mean_n = 5.0 * ALPHA * gamma / (2.0 * np.sqrt(3.0) * rho_mm) * path
        count = rng.poisson(mean_n)
        ev = np.repeat(np.arange(idx.size), count)
        s = rng.random(ev.size) * path[ev]
        phi = phi0[ev] - kappa[ev] * s
        x_e = x0[ev] + (r[ev] / kappa[ev]) * (np.cos(phi) - np.cos(phi0[ev]))
        z_e = z0 + (r[ev] / kappa[ev]) * (np.sin(phi0[ev]) - np.sin(phi))
        y_e = y0[ev] + uy[ev] * s
        lever = z_plane_mm - z_e
        e_c = 1.5 * HBARC_GEV_MM * gamma**3 / rho_mm
        parts.append(
            SrPhotons(
                event=idx[ev],
                x_mm=x_e + np.tan(phi) * lever,
                y_mm=y_e + uy[ev] / (r[ev] * np.cos(phi)) * lever,
                E_GeV=sample_xi(rng.random(ev.size)) * e_c[ev],
            )
        )
    return SrPhotons(
        *(
            np.concatenate([getattr(p, f) for p in parts])
            for f in ("event", "x_mm", "y_mm", "E_GeV")
        )
    )


def srd_absorbed_GeV(photons: SrPhotons, n_events: int, modules: SrdModules) -> np.ndarray:
    """Photon energy landing in each module, (n_events, n_modules)."""
    out = np.zeros(n_events * len(modules))
    edges = zip(modules.x_lo, modules.x_hi, modules.y_lo, modules.y_hi, strict=True)
    for k, (x_lo, x_hi, y_lo, y_hi) in enumerate(edges):  # a loop over the three modules
        inside = (photons.x_mm >= x_lo) & (photons.x_mm < x_hi)
        inside &= (photons.y_mm >= y_lo) & (photons.y_mm < y_hi)
        out += np.bincount(
            photons.event[inside] * len(modules) + k,
            weights=photons.E_GeV[inside],
            minlength=out.size,
        )
    return out.reshape(n_events, len(modules))


def knockon_deposits(
    crosses_window: np.ndarray, rng: np.random.Generator, params: SrdParams, n_modules: int
) -> np.ndarray:
    """Knock-on electron energy per module for non-electrons crossing the vessel exit window."""
    m = crosses_window.shape[0]
    out = np.zeros((m, n_modules))
    hit = np.flatnonzero(crosses_window & (rng.random(m) < params.knockon_probability))
    lo, hi = params.knockon_energy_range_GeV
    energy = 1.0 / (1.0 / lo - rng.random(hit.size) * (1.0 / lo - 1.0 / hi))
    out[hit, rng.integers(0, n_modules, size=hit.size)] = energy
    return out


def srd_visible_GeV(
    absorbed: np.ndarray, rng: np.random.Generator, params: SrdParams
) -> np.ndarray:
    """Sampling fluctuation: Gamma with mean E and variance s^2 E."""
    s2 = params.sampling_GeV_sqrt**2
    return rng.gamma(absorbed / s2, s2) if absorbed.size else absorbed
