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


def _species_mix(n: int, rng: np.random.Generator, params: BeamParams) -> np.ndarray:
    """PDG ids of the physics beam mix; the e- tail is marked with -11 and fixed later."""
    edges = np.cumsum(
        [params.fraction_pion, params.fraction_kaon, params.fraction_muon, params.fraction_e_tail]
    )
    codes = np.array([PDG_PION, PDG_KAON, PDG_MUON, -PDG_ELECTRON, PDG_ELECTRON], dtype=np.int32)
    return codes[np.searchsorted(edges, rng.random(n), side="right")]


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
    are the beam's in every case.
    """
    p_nominal = params.momentum_GeV
    if species == "mix":
        pdg = _species_mix(n, rng, params)
    elif species == "electron":
        pdg = np.full(n, PDG_ELECTRON, dtype=np.int32)
    elif species == "muon":
        pdg = np.full(n, PDG_MUON, dtype=np.int32)
        p_nominal = params.muon_calibration_momentum_GeV
    else:
        raise ValueError(f"unknown beam species {species!r}")
    if momentum_GeV is not None:
        p_nominal = momentum_GeV
    p = p_nominal * (1.0 + params.sigma_p_rel * rng.standard_normal(n))
    tail = pdg == -PDG_ELECTRON
    lo, hi = params.tail_range_GeV
    p[tail] = rng.uniform(lo, hi, size=int(tail.sum()))
    pdg[tail] = PDG_ELECTRON
    halo = rng.random(n) < params.fraction_halo
    spot = np.where(halo, params.halo_spot_sigma_mm, params.spot_sigma_mm)
    divergence = np.where(halo, params.halo_divergence_rad, params.divergence_rad)
    gauss = rng.standard_normal((4, n))
    return BeamParticles(
        pdg=pdg,
        p_GeV=p,
        x_mm=spot * gauss[0],
        y_mm=spot * gauss[1],
        tx=divergence * gauss[2],
        ty=divergence * gauss[3],
        z_mm=params.z_start_mm,
    )


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
