"""Beam particles of the H4 line at the start of the setup, and pile-up.

Units: GeV, mm, rad, ns. Particles start at ``z_start_mm`` (upstream of S1)
moving along +z with slopes ``tx = px/pz``, ``ty = py/pz``.

Composition (spec section 3; NA64, PRL 118 (2017) 011802): 100 GeV e- with
sigma_p/p = 1 %, a Gaussian spot (sigma 3 mm) and divergence (0.1 mrad);
per beam particle a pi- fraction 1e-2, K- 1e-4, mu- 1e-3 (hadrons and muons
share the electrons' momentum band), and a low-energy electron tail of 1e-2
flat in 10..90 GeV. A small halo fraction (any species) has a wide spot and
divergence and can hit the V1 veto outside its hole.

Pile-up: particles arrive as a Poisson process of rate
``particles_per_spill / spill_length_s``; the probability that a second one
falls within +-``pileup_window_ns`` of the triggering one is
``1 - exp(-2 rate window)`` (14 % at 4e6 per 4.8 s, 5.7 % at 1.4e6), and its
time offset is uniform in the window. At most one pile-up particle is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numba as nb
import numpy as np

__all__ = [
    "PDG_ELECTRON",
    "PDG_KAON",
    "PDG_MUON",
    "PDG_PION",
    "BeamParams",
    "BeamParticles",
    "pileup_probability",
    "sample_beam",
    "sample_pileup",
]

PDG_ELECTRON = 11
PDG_MUON = 13
PDG_PION = -211
PDG_KAON = -321


@dataclass(frozen=True)
class BeamParams:
    """Beam composition and optics (``beam`` block of the physics parameters)."""

    momentum_GeV: float
    sigma_p_rel: float
    spot_sigma_mm: float
    divergence_rad: float
    z_start_mm: float
    fraction_pion: float
    fraction_kaon: float
    fraction_muon: float
    fraction_e_tail: float
    tail_range_GeV: tuple[float, float]
    fraction_halo: float
    halo_spot_sigma_mm: float
    halo_divergence_rad: float
    particles_per_spill: float
    spill_length_s: float
    pileup_window_ns: float
    muon_calibration_momentum_GeV: float

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BeamParams:
        values = {f.name: float(data[f.name]) for f in fields(cls) if f.name != "tail_range_GeV"}
        values["tail_range_GeV"] = tuple(float(v) for v in data["tail_range_GeV"])
        return cls(**values)


@dataclass
class BeamParticles:
    """``n`` beam particles at ``z_mm``: PDG id, momentum and transverse state."""

    pdg: np.ndarray  # (n,) int32
    p_GeV: np.ndarray  # (n,)
    x_mm: np.ndarray
    y_mm: np.ndarray
    tx: np.ndarray
    ty: np.ndarray
    z_mm: float

    def __len__(self) -> int:
        return self.pdg.shape[0]


_SPECIES = {"mix": 0, "electron": 1, "muon": 2}
_MIX_CODES = np.array([PDG_PION, PDG_KAON, PDG_MUON, -PDG_ELECTRON, PDG_ELECTRON], dtype=np.int32)


@nb.njit(cache=True, nogil=True)
def _beam_kernel(rng, species, fixed_pdg, edges, codes, p_nominal, sigma_p, tail_lo, tail_hi,
                 f_halo, spot, halo_spot, div, halo_div, pdg, p, x, y, tx, ty):
    """Fill the beam arrays particle by particle (GeV, mm, rad); see :func:`sample_beam`.

    ``species`` 0: mix (one uniform against the cumulative ``edges`` of pi, K, mu, e- tail;
    ``codes`` the PDG ids, -11 marking the tail), else every particle is ``fixed_pdg``.
    The halo flag uses the species uniform rescaled to its interval (uniform and
    independent of the species), or its own uniform for a single species.
    """
    n_edges = edges.shape[0]
    for i in range(pdg.shape[0]):
        code = fixed_pdg
        if species == 0:
            u = rng.random()
            k = 0
            while k < n_edges and u >= edges[k]:
                k += 1
            code = codes[k]
            # u is uniform within its species' interval: rescaled, it decides the halo
            lo = edges[k - 1] if k > 0 else 0.0
            hi = edges[k] if k < n_edges else 1.0
            v = (u - lo) / (hi - lo)
        else:
            v = rng.random()
        halo = v < f_halo
        pi = p_nominal * (1.0 + sigma_p * rng.standard_normal())
        if code == -11:
            pi = tail_lo + (tail_hi - tail_lo) * rng.random()
            code = 11
        pdg[i] = code
        p[i] = pi
        s = halo_spot if halo else spot
        d = halo_div if halo else div
        x[i] = s * rng.standard_normal()
        y[i] = s * rng.standard_normal()
        tx[i] = d * rng.standard_normal()
        ty[i] = d * rng.standard_normal()


def sample_beam(
    n: int,
    rng: np.random.Generator,
    params: BeamParams,
    *,
    species: str = "mix",
    momentum_GeV: float | None = None,
) -> BeamParticles:
    """Sample ``n`` beam particles.

    ``species``: ``"mix"`` (physics beam of spec section 3), ``"electron"``
    (main 100 GeV component only) or ``"muon"`` (mu- at ``momentum_GeV``,
    default the calibration momentum). Momentum spread, spot and divergence
    are the beam's in every case. One numba pass draws each particle's
    species, momentum, halo flag and transverse state in turn.
    """
    if species not in _SPECIES:
        raise ValueError(f"unknown beam species {species!r}")
    p_nominal = params.muon_calibration_momentum_GeV if species == "muon" else params.momentum_GeV
    if momentum_GeV is not None:
        p_nominal = momentum_GeV
    edges = np.cumsum(
        [params.fraction_pion, params.fraction_kaon, params.fraction_muon, params.fraction_e_tail]
    )
    lo, hi = params.tail_range_GeV
    pdg = np.empty(n, dtype=np.int32)
    p, x, y, tx, ty = (np.empty(n) for _ in range(5))
    _beam_kernel(rng, _SPECIES[species], PDG_MUON if species == "muon" else PDG_ELECTRON,
                 edges, _MIX_CODES, float(p_nominal), float(params.sigma_p_rel), float(lo),
                 float(hi), float(params.fraction_halo), float(params.spot_sigma_mm),
                 float(params.halo_spot_sigma_mm), float(params.divergence_rad),
                 float(params.halo_divergence_rad), pdg, p, x, y, tx, ty)
    return BeamParticles(pdg=pdg, p_GeV=p, x_mm=x, y_mm=y, tx=tx, ty=ty, z_mm=params.z_start_mm)


def pileup_probability(params: BeamParams) -> float:
    """Probability of a second beam particle within +-window of a given one."""
    rate_per_ns = params.particles_per_spill / (params.spill_length_s * 1e9)
    return float(1.0 - np.exp(-2.0 * rate_per_ns * params.pileup_window_ns))


def sample_pileup(
    n: int, rng: np.random.Generator, params: BeamParams
) -> tuple[np.ndarray, np.ndarray]:
    """(mask of events with a pile-up particle, its time offset in ns, NaN where none)."""
    has = rng.random(n) < pileup_probability(params)
    dt = np.full(n, np.nan)
    window = params.pileup_window_ns
    dt[has] = rng.uniform(-window, window, size=int(has.sum()))
    return has, dt
