"""What happens to a beam particle: process choice with bias weights and process kinematics.

Units: GeV, mm. Particle masses and lifetimes from the ``particle`` package (PDG).

Process choice. Per particle, a categorical choice among processes with true
probabilities ``p_i``; rare ones are enhanced by bias factors ``B_i``: the
choice is made with ``q_i = p_i B_i / sum_j p_j B_j`` and the event carries the
weight ``p_i / q_i``, so that sums of weights estimate numbers of beam particles
(electrons on target). Independent choices multiply their weights.

* Upstream bremsstrahlung in the material elements (x/X0 each): the number of
  photons with energy fraction y > y_min per X0 is
  ``I(y_min) = 4/3 ln(1/y_min) - 4/3 (1 - y_min) + (1 - y_min^2)/2`` from the complete-
  screening spectrum ``dN/dy = (4/3 - 4/3 y + y^2) / y`` (PDG eq. 34.29 / Tsai); y is
  sampled from that spectrum. At most one hard photon per electron.
* Electro/photo-nuclear and dimuon production in the ECAL: a hard bremsstrahlung
  photon of fraction x (same spectrum, x > x_min) interacts hadronically or converts
  into mu+ mu-; the pair shares x E with ``dsigma/du ∝ 1 - 4/3 u (1 - u)`` (Bethe-Heitler,
  high-energy limit). Probabilities per electron are parameters.
* Decays in flight: probability ``1 - exp(-L m / (p c tau))`` over the flight path L,
  decay point from the truncated exponential; channels (PDG branching fractions):
  pi -> mu nu, e nu; K -> mu nu, pi pi0, pi0 e nu (Ke3), pi0 mu nu (Kmu3), 3 pi (taken as
  one pi- carrying the kaon's momentum); mu -> e nu nu (Michel spectrum x^2 (3 - 2x),
  unpolarised). Two-body decays are isotropic in the rest frame; K_l3 decays use
  uniform Dalitz-plot phase space (no form factors), with the pi0 direction fixed
  by the Dalitz kinematics. Daughters are boosted along the parent direction.
* A' emission (signal): x = E_A'/E_e from the shape of dsigma/dx (WW; Bjorken,
  Essig, Schuster, Toro PRD 80 (2009) 075018, eq. A14; Gninenko et al. PRD 94 (2016)
  095025), taken from :func:`recon.analysis.aprime_yield.dsigma_dx_pb`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from particle import Particle

from recon.analysis.aprime_yield import M_E_GEV, dsigma_dx_pb

__all__ = [
    "AprimeSpectrum",
    "DecayProducts",
    "ProcessParams",
    "biased_choice",
    "brems_photons_per_X0",
    "decay_probability",
    "fixed_biased_choice",
    "mass_GeV",
    "sample_brems_fraction",
    "sample_decay_products",
    "sample_decay_z",
    "sample_pair_sharing",
]

_PDG_E, _PDG_MU, _PDG_PI, _PDG_K, _PDG_PI0 = 11, 13, -211, -321, 111


@cache
def mass_GeV(pdg: int) -> float:
    return Particle.from_pdgid(pdg).mass * 1e-3


@cache
def ctau_mm(pdg: int) -> float:
    return float(Particle.from_pdgid(pdg).ctau)


@dataclass(frozen=True)
class ProcessParams:
    brems_y_min: float
    brems_bias: float
    electronuclear_probability: float
    electronuclear_bias: float
    electronuclear_x_min: float
    dimuon_probability: float
    dimuon_bias: float
    dimuon_x_min: float
    decay_bias: float
    decays: dict[str, dict[str, float]]
    aprime_z: float
    aprime_a: float
    aprime_n_table: int

    @classmethod
    def from_dict(cls, processes: dict, upstream_brems: dict, aprime: dict) -> ProcessParams:
        en, dm = processes["electronuclear"], processes["dimuon"]
        return cls(
            brems_y_min=float(upstream_brems["y_min"]),
            brems_bias=float(upstream_brems["bias"]),
            electronuclear_probability=float(en["probability"]),
            electronuclear_bias=float(en["bias"]),
            electronuclear_x_min=float(en["x_min"]),
            dimuon_probability=float(dm["probability"]),
            dimuon_bias=float(dm["bias"]),
            dimuon_x_min=float(dm["x_min"]),
            decay_bias=float(processes["decay_bias"]),
            decays={k: {c: float(b) for c, b in v.items()} for k, v in processes["decays"].items()},
            aprime_z=float(aprime["target_z"]),
            aprime_a=float(aprime["target_a"]),
            aprime_n_table=int(aprime["n_table"]),
        )


def biased_choice(
    prob: np.ndarray, bias: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Choose a category per row of ``prob`` (n, k) with biased probabilities.

    Returns (index, weight) with weight = p_i / q_i of the chosen category.
    """
    q = prob * bias[None, :]
    q = q / q.sum(axis=1, keepdims=True)
    cum = np.cumsum(q, axis=1)
    u = rng.random(prob.shape[0])
    choice = np.minimum((u[:, None] >= cum).sum(axis=1), prob.shape[1] - 1)
    rows = np.arange(prob.shape[0])
    return choice, prob[rows, choice] / q[rows, choice]


def fixed_biased_choice(
    prob: np.ndarray, bias: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`biased_choice` for ``n`` rows sharing one probability vector ``prob`` (k,)."""
    q = prob * bias
    q = q / q.sum()
    choice = np.minimum(np.searchsorted(np.cumsum(q), rng.random(n), side="right"), prob.size - 1)
    return choice, (prob / q)[choice]


def brems_photons_per_X0(y_min: float) -> float:
    """Photons with energy fraction above y_min per radiation length (complete screening)."""
    return 4.0 / 3.0 * np.log(1.0 / y_min) - 4.0 / 3.0 * (1.0 - y_min) + 0.5 * (1.0 - y_min**2)


def sample_brems_fraction(n: int, rng: np.random.Generator, y_min: float) -> np.ndarray:
    """y in [y_min, 1) from (4/3 - 4/3 y + y^2)/y: 1/y proposal, accept (1 - y + 3y^2/4)."""
    out = np.empty(n)
    todo = np.arange(n)
    while todo.size:
        y = y_min ** rng.random(todo.size)
        ok = rng.random(todo.size) < 1.0 - y + 0.75 * y * y
        out[todo[ok]] = y[ok]
        todo = todo[~ok]
    return out


def sample_pair_sharing(k_GeV: np.ndarray, m_GeV: float, rng: np.random.Generator) -> np.ndarray:
    """Energy fraction u of one lepton of a pair from a photon of energy k (Bethe-Heitler)."""
    u_min = np.minimum(m_GeV / k_GeV, 0.499)
    out = np.empty(k_GeV.shape[0])
    todo = np.arange(k_GeV.shape[0])
    while todo.size:
        lo = u_min[todo]
        u = lo + (1.0 - 2.0 * lo) * rng.random(todo.size)
        ok = rng.random(todo.size) < 1.0 - 4.0 / 3.0 * u * (1.0 - u)
        out[todo[ok]] = u[ok]
        todo = todo[~ok]
    return out


def decay_probability(p_GeV: np.ndarray, pdg: int, length_mm) -> np.ndarray:
    """Probability to decay within ``length_mm`` of flight."""
    decay_length = np.asarray(p_GeV, float) / mass_GeV(pdg) * ctau_mm(pdg)
    return -np.expm1(-np.asarray(length_mm, float) / decay_length)


def sample_decay_z(
    p_GeV: np.ndarray, pdg: int, z_from_mm: float, z_to_mm: float, rng: np.random.Generator
) -> np.ndarray:
    """Decay points given a decay in [z_from, z_to] (truncated exponential)."""
    decay_length = np.asarray(p_GeV, float) / mass_GeV(pdg) * ctau_mm(pdg)
    span = -np.expm1(-(z_to_mm - z_from_mm) / decay_length)
    return z_from_mm - decay_length * np.log1p(-rng.random(decay_length.shape[0]) * span)


@dataclass
class DecayProducts:
    """Per decaying particle: charged daughter and the pi0 (if any), kicks relative to parent."""

    channel: np.ndarray  # index into the parent's channel list
    pdg: np.ndarray
    p_GeV: np.ndarray
    dtx: np.ndarray
    dty: np.ndarray
    neutral_E_GeV: np.ndarray
    neutral_dtx: np.ndarray
    neutral_dty: np.ndarray


def _two_body_momentum(M, m1, m2):
    return np.sqrt((M**2 - (m1 + m2) ** 2) * (M**2 - (m1 - m2) ** 2)) / (2.0 * M)


def _isotropic(n: int, rng: np.random.Generator) -> np.ndarray:
    cos_t = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    sin_t = np.sqrt(1.0 - cos_t**2)
    return np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t], axis=1)


def _boost(E_star, p_vec, M, P):
    """Boost rest-frame (E*, p*) along +z to a parent of mass M, momentum P: (p, dtx, dty)."""
    gamma = np.sqrt(P**2 + M**2) / M
    beta_gamma = P / M
    p_long = gamma * p_vec[:, 2] + beta_gamma * E_star
    p_long = np.where(p_long > 0, p_long, np.nan)  # backward daughters are lost
    p_abs = np.sqrt(p_long**2 + p_vec[:, 0] ** 2 + p_vec[:, 1] ** 2)
    return p_abs, p_vec[:, 0] / p_long, p_vec[:, 1] / p_long


def _dalitz_energies(M, m1, m2, m3, n, rng):
    """Rest-frame energies of particles 1 and 2 and cos(angle 1-2), uniform Dalitz plot."""
    e1, e2, cos12 = (np.empty(n) for _ in range(3))
    todo = np.arange(n)
    while todo.size:
        k = todo.size
        m12 = rng.uniform((m1 + m2) ** 2, (M - m3) ** 2, k)
        m23 = rng.uniform((m2 + m3) ** 2, (M - m1) ** 2, k)
        E1 = (M**2 + m1**2 - m23) / (2 * M)
        E2 = (M**2 + m2**2 - (M**2 + m1**2 + m2**2 + m3**2 - m12 - m23)) / (2 * M)
        p1 = np.sqrt(np.maximum(E1**2 - m1**2, 0.0))
        p2 = np.sqrt(np.maximum(E2**2 - m2**2, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            c = (m12 - m1**2 - m2**2 - 2 * E1 * E2) / (-2 * p1 * p2)
        ok = (m1 <= E1) & (m2 <= E2) & (np.abs(c) <= 1.0)
        e1[todo[ok]], e2[todo[ok]], cos12[todo[ok]] = E1[ok], E2[ok], c[ok]
        todo = todo[~ok]
    return e1, e2, cos12


def _direction_at_angle(axis: np.ndarray, cos_a: np.ndarray, rng) -> np.ndarray:
    """Unit vectors at angle acos(cos_a) from ``axis`` with uniform azimuth."""
    helper = np.where(np.abs(axis[:, [0]]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    e1 = np.cross(axis, helper)
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(axis, e1)
    phi = rng.uniform(0.0, 2.0 * np.pi, axis.shape[0])
    sin_a = np.sqrt(np.maximum(1.0 - cos_a**2, 0.0))
    return cos_a[:, None] * axis + sin_a[:, None] * (
        np.cos(phi)[:, None] * e1 + np.sin(phi)[:, None] * e2
    )


_CHANNELS = {
    # name -> (charged daughter, pi0 present, other masses: neutral1, neutral2 or None)
    "mu_nu": (_PDG_MU, False, 2),
    "e_nu": (_PDG_E, False, 2),
    "pi_pi0": (_PDG_PI, True, 2),
    "e3": (_PDG_E, True, 3),
    "mu3": (_PDG_MU, True, 3),
    "three_pi": (_PDG_PI, False, 0),
    "e_nu_nu": (_PDG_E, False, -1),
}


def _channel_kinematics(name, M, P, rng):
    """(charged pdg, p, dtx, dty, pi0 E, pi0 dtx, pi0 dty) arrays for one channel."""
    n = P.shape[0]
    charged, has_pi0, kind = _CHANNELS[name]
    m1 = mass_GeV(charged)
    zeros = np.zeros(n)
    if kind == 0:  # K -> 3 pi taken as one pi- with the kaon's momentum
        return np.full(n, charged), P.copy(), zeros, zeros, zeros, zeros, zeros
    if kind == 2:
        m2 = mass_GeV(_PDG_PI0) if has_pi0 else 0.0
        p_star = _two_body_momentum(M, m1, m2)
        direction = _isotropic(n, rng)
        E1 = np.full(n, np.sqrt(p_star**2 + m1**2))
        E2 = np.full(n, np.sqrt(p_star**2 + m2**2))
        p1_vec = p_star * direction
        p2_vec = -p1_vec
    elif kind == 3:
        m2 = mass_GeV(_PDG_PI0)
        E1, E2, cos12 = _dalitz_energies(M, m1, m2, 0.0, n, rng)
        direction = _isotropic(n, rng)
        p1_vec = np.sqrt(E1**2 - m1**2)[:, None] * direction
        p2_vec = np.sqrt(np.maximum(E2**2 - m2**2, 0.0))[:, None] * _direction_at_angle(
            direction, cos12, rng
        )
    else:  # muon decay, Michel spectrum x^2 (3 - 2x), x = 2E/m_mu
        x = np.empty(n)
        todo = np.arange(n)
        while todo.size:
            trial = rng.random(todo.size)
            ok = rng.random(todo.size) < trial**2 * (3.0 - 2.0 * trial)
            x[todo[ok]] = trial[ok]
            todo = todo[~ok]
        E1 = np.maximum(0.5 * M * x, m1)
        p1_vec = np.sqrt(E1**2 - m1**2)[:, None] * _isotropic(n, rng)
        E2, p2_vec = zeros, np.zeros((n, 3))
    p1, dtx, dty = _boost(E1, p1_vec, M, P)
    if not has_pi0:
        return np.full(n, charged), p1, dtx, dty, zeros, zeros, zeros
    p2, ndtx, ndty = _boost(E2, p2_vec, M, P)
    e2 = np.sqrt(p2**2 + mass_GeV(_PDG_PI0) ** 2)
    return np.full(n, charged), p1, dtx, dty, e2, ndtx, ndty


_PARENT_KEY = {_PDG_PI: "pion", _PDG_K: "kaon", _PDG_MU: "muon"}


def sample_decay_products(
    pdg: int, p_GeV: np.ndarray, params: ProcessParams, rng: np.random.Generator
) -> DecayProducts:
    """Channel and daughter kinematics for decays of ``pdg`` parents of momentum ``p_GeV``."""
    table = params.decays[_PARENT_KEY[pdg]]
    names = list(table)
    br = np.array([table[k] for k in names])
    channel = np.searchsorted(np.cumsum(br / br.sum()), rng.random(p_GeV.shape[0]), side="right")
    channel = np.minimum(channel, len(names) - 1)
    n = p_GeV.shape[0]
    out = DecayProducts(
        channel=channel,
        pdg=np.zeros(n, dtype=np.int32),
        **{
            k: np.zeros(n)
            for k in ("p_GeV", "dtx", "dty", "neutral_E_GeV", "neutral_dtx", "neutral_dty")
        },
    )
    M = mass_GeV(pdg)
    for c, name in enumerate(names):
        idx = np.flatnonzero(channel == c)
        if not idx.size:
            continue
        values = _channel_kinematics(name, M, p_GeV[idx], rng)
        for field, value in zip(
            ("pdg", "p_GeV", "dtx", "dty", "neutral_E_GeV", "neutral_dtx", "neutral_dty"),
            values,
            strict=True,
        ):
            getattr(out, field)[idx] = value
    return out


class AprimeSpectrum:
    """Inverse-CDF sampler of x = E_A'/E_e from the shape of dsigma/dx at (m, E0)."""

    def __init__(self, mass_GeV: float, E0_GeV: float, *, Z: float, A: float, n_table: int = 4000):
        if not 0.0 < mass_GeV < E0_GeV:
            raise ValueError("A' mass must be in (0, E0)")
        u_lo = np.log(M_E_GEV / E0_GeV)  # u = ln(1 - x)
        u_hi = np.log1p(-mass_GeV / E0_GeV)
        u = np.linspace(u_lo, u_hi, n_table)
        x = -np.expm1(u)
        pdf_u = dsigma_dx_pb(x, mass_GeV, E0_GeV, eps=1.0, Z=Z, A=A) * (1.0 - x)
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf_u[1:] + pdf_u[:-1]) * np.diff(u))])
        self._cdf = cdf / cdf[-1]
        self._u = u
        self.mass_GeV = mass_GeV
        self.E0_GeV = E0_GeV

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return -np.expm1(np.interp(rng.random(n), self._cdf, self._u))
