"""Electron and positron track length per unit energy in a thick target (X0/GeV).

Units: energies in GeV, depth t in radiation lengths X0, track-length spectra in X0/GeV,
L = ln(E0/E) the logarithmic energy loss below the beam energy E0.

**Primary electron.** Tsai's Bethe-Heitler approximation for the energy distribution of the
primary at depth t (Y.-S. Tsai, Rev. Mod. Phys. 46 (1974) 815; Bjorken et al., PRD 38 (1988)
3375; Gninenko et al., PRD 94 (2016) 095025)::

    I_e(E0, E, t) = (ln(E0/E))^(b t - 1) / (E0 Gamma(b t)),   b = 4/3

so that L at depth t is Gamma-distributed with shape b t, and the primary track length is
T_0(E) = Integral_0^D I_e(E0, E, t) dt; the track with E in (E1, E2) is
Integral dt [P(b t, ln(E0/E1)) - P(b t, ln(E0/E2))], P the regularised incomplete gamma function.

**Shower e+-.** Generation n + 1 of e+- comes from the photons radiated by generation n
(generation 0 is the primary). Per X0 of e+- track, bremsstrahlung in complete screening
(PDG Review "Passage of particles through matter", complete-screening bremsstrahlung; Tsai 1974)::

    k dN/dk = 4/3 - 4/3 y + y^2,   y = k/E,

photons convert at 7/9 per X0 (same review, pair production), the electron taking a fraction u
of k with::

    dN/du = 1 - 4/3 u (1 - u)      (Integral_0^1 = 7/9)

and each e+ and e- then degrades with Tsai's I_e from its creation energy and depth. In L and
t all kernels depend on differences only, so the cascade is a chain of 2-d convolutions on a
grid of 128 cells in L over (0, ln(E0/E_min)) and >= 64 steps of <= 0.05 X0 over (0, D). Densities
are cell averages; the kernels are cell-to-cell transfers integrated exactly in L (moments of
the incomplete gamma function for I_e, triangle weights for uniform sources) and with
Gauss-Legendre in t. Particles below E_min never feed back above it, so the grid is closed.

Simplifications, quantified in docs/physics/aprime-yield-and-limit.md: Tsai's I_e removes
b ln 2 = 0.924 E per X0 from an electron while the complete-screening photons carry E, so each
generation carries 8% too much energy; in the deep cascade (E << E0) the track length exceeds
Rossi's approximation A (0.437 E0/E^2) by 15-20%. Above E0/2 the primary and one generation
of secondaries dominate and the surplus is below 1% of the track length. No ionisation loss,
no positron annihilation, no LPM suppression (irrelevant for k > 2 GeV in lead at 100 GeV).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import signal, special

__all__ = [
    "PHOTON_CONVERSION_PER_X0",
    "SHOWER_GENERATIONS",
    "TSAI_B",
    "ShowerTrackLength",
    "TrackLengthSpectrum",
    "bremsstrahlung_photons_per_X0",
    "pair_sharing_per_X0",
    "primary_depth_weights",
    "primary_energy_density_per_GeV",
    "primary_track_length_per_GeV",
    "shower_track_length",
    "shower_track_weights",
]

TSAI_B: float = 4.0 / 3.0
PHOTON_CONVERSION_PER_X0: float = 7.0 / 9.0
SHOWER_GENERATIONS: int = 2
_MAX_DEPTH_SCAN_X0 = 400.0
_NEGLIGIBLE_PROBABILITY = 1e-13
_PHOTON_DEPTH_MARGIN_X0 = np.log(1e9) / PHOTON_CONVERSION_PER_X0  # photon survival 1e-9
_N_DEPTH = 96
_N_LOG_DEPTH = 160
_N_W = 64
_N_PER_BIN = 8
_N_LOG_ENERGY_CELLS = 128
_MAX_DEPTH_STEP_X0 = 0.05
_MIN_DEPTH_STEPS = 64
_DEPTH_NODES, _DEPTH_WEIGHTS = np.polynomial.legendre.leggauss(_N_DEPTH)
_LOG_DEPTH_NODES, _LOG_DEPTH_WEIGHTS = np.polynomial.legendre.leggauss(_N_LOG_DEPTH)
_W_NODES, _W_WEIGHTS = np.polynomial.legendre.leggauss(_N_W)
_BIN_NODES, _BIN_WEIGHTS = np.polynomial.legendre.leggauss(_N_PER_BIN)


def primary_energy_density_per_GeV(
    E_GeV: ArrayLike, E0_GeV: float, t_X0: ArrayLike, *, b: float = TSAI_B
) -> NDArray:
    """Tsai's I_e(E0, E, t) (1/GeV): probability density of the primary energy at depth t."""
    E, t = np.broadcast_arrays(np.asarray(E_GeV, float), np.asarray(t_X0, float))
    inside = (E > 0) & (E0_GeV > E) & (t > 0)
    log_ratio = np.log(E0_GeV / np.where(inside, E, 0.5 * E0_GeV))
    shape = b * np.where(inside, t, 1.0)
    log_density = (shape - 1.0) * np.log(log_ratio) - special.gammaln(shape)
    return np.where(inside, np.exp(log_density) / E0_GeV, 0.0)


def _depth_cutoff_X0(E0_GeV: float, E_min_GeV: float, depth_X0: float, b: float) -> float:
    """Depth beyond which P(primary energy > E_min) is negligible, capped at depth_X0."""
    scan = np.linspace(0.0, _MAX_DEPTH_SCAN_X0, 4001)[1:]
    alive = special.gammainc(b * scan, np.log(E0_GeV / E_min_GeV)) > _NEGLIGIBLE_PROBABILITY
    reach = scan[np.flatnonzero(alive)[-1] + 1] if alive.any() else scan[0]
    return float(min(depth_X0, reach))


def primary_track_length_per_GeV(
    E_GeV: ArrayLike, E0_GeV: float, *, depth_X0: float = np.inf, b: float = TSAI_B
) -> NDArray:
    """Primary-electron track length per unit energy T(E) (X0/GeV), 0 < E < E0.

    Integrated over ln t (Gauss-Legendre, 160 nodes) from 1e-8 X0 to the depth where the
    primary has degraded below E; diverges (integrably) as 1/(b L ln^2 L), L = ln(E0/E) -> 0.

    >>> round(float(primary_track_length_per_GeV(50.0, 100.0)), 4)
    0.016
    """
    E = np.asarray(E_GeV, float)
    E_floor = np.clip(np.min(E, initial=E0_GeV), 1e-12 * E0_GeV, None)
    t_hi = _depth_cutoff_X0(E0_GeV, E_floor, depth_X0, b)
    ln_t = 0.5 * (np.log(t_hi) + np.log(1e-8)) + 0.5 * (np.log(t_hi) - np.log(1e-8)) * (
        _LOG_DEPTH_NODES
    )
    weights = 0.5 * (np.log(t_hi) - np.log(1e-8)) * _LOG_DEPTH_WEIGHTS * np.exp(ln_t)
    density = primary_energy_density_per_GeV(E[..., None], E0_GeV, np.exp(ln_t), b=b)
    return np.sum(density * weights, axis=-1)


def primary_depth_weights(
    E0_GeV: float, E_min_GeV: float, *, depth_X0: float = np.inf, b: float = TSAI_B
) -> tuple[NDArray, NDArray]:
    """Quadrature for Integral_{E_min}^{E0} T(E) f(E) dE ~= sum_k weight_k f(E_k).

    Depth t on Gauss-Legendre nodes; at each depth the substitution w = L^(b t),
    L = ln(E0/E), removes the L^(b t - 1) singularity at E -> E0, leaving
    Integral_0^{L_max^(b t)} e^(-L) f(E0 e^(-L)) dw / Gamma(b t + 1). Weights in X0.
    Their sum is the primary track length above E_min (0.870 X0 for E_min = E0/2).
    """
    L_max = np.log(E0_GeV / E_min_GeV)
    t_hi = _depth_cutoff_X0(E0_GeV, E_min_GeV, depth_X0, b)
    t = 0.5 * t_hi * (_DEPTH_NODES + 1.0)
    t_weights = 0.5 * t_hi * _DEPTH_WEIGHTS
    w_hi = L_max ** (b * t)
    w = 0.5 * w_hi[:, None] * (_W_NODES[None, :] + 1.0)
    w_weights = 0.5 * w_hi[:, None] * _W_WEIGHTS[None, :]
    L = w ** (1.0 / (b * t[:, None]))
    weights = t_weights[:, None] * w_weights * np.exp(-L - special.gammaln(b * t[:, None] + 1.0))
    return (E0_GeV * np.exp(-L)).ravel(), weights.ravel()


# --- shower cascade ------------------------------------------------------------------------


def bremsstrahlung_photons_per_X0(y: ArrayLike) -> NDArray:
    """k dN/dk per X0 of e+- track, complete screening: 4/3 - 4/3 y + y^2, y = k/E in (0, 1)."""
    y = np.asarray(y, float)
    return 4.0 / 3.0 - 4.0 / 3.0 * y + y * y


def pair_sharing_per_X0(u: ArrayLike) -> NDArray:
    """dN/du per X0 of photon track for the electron with energy fraction u: 1 - 4/3 u(1-u).

    >>> from scipy import integrate
    >>> round(integrate.quad(pair_sharing_per_X0, 0, 1)[0] * 9, 12)
    7.0
    """
    u = np.asarray(u, float)
    return 1.0 - 4.0 / 3.0 * u * (1.0 - u)


def _photons_per_log_energy(drop: NDArray) -> NDArray:
    """Photons per X0 of e+- track per unit ln k, the photon ``drop`` = ln(E/k) below the e+-."""
    return bremsstrahlung_photons_per_X0(np.exp(-drop))


def _pairs_per_log_energy(drop: NDArray) -> NDArray:
    """e+ and e- per X0 of photon track per unit ln E, ``drop`` = ln(k/E) below the photon."""
    u = np.exp(-drop)
    return 2.0 * pair_sharing_per_X0(u) * u


def _log_energy_cell_kernel(per_log_energy, h: float, n: int) -> NDArray:
    """Cell-to-cell transfer in L for a source uniform in its cell (offset m = 0 .. n-1).

    (1/h) Integral_0^h dx Integral_{m h}^{(m+1) h} f(L - x) dL = Integral f(l) tri(l - m h) dl
    with the triangle tri(z) = max(0, 1 - |z|/h); Gauss-Legendre (8 nodes) on each side.
    """
    m = np.arange(n)[:, None]
    kernel = np.zeros(n)
    for first in (m - 1, m):  # rising side [(m-1)h, m h], falling side [m h, (m+1)h]
        lo = np.maximum(first * h, 0.0)
        hi = (first + 1) * h
        drop = 0.5 * (lo + hi) + 0.5 * (hi - lo) * _BIN_NODES
        triangle = np.clip(1.0 - np.abs(drop - m * h) / h, 0.0, None)
        values = 0.5 * (hi - lo) * _BIN_WEIGHTS * per_log_energy(drop) * triangle
        kernel += np.sum(np.where(hi > lo, values, 0.0), axis=1)
    return kernel


def _photon_depth_kernel(dt: float, n: int) -> NDArray:
    """Photon track (X0) in depth cell j + m from a photon made uniformly in cell j.

    Integral_0^inf ds tri(s - m dt) exp(-sigma s), sigma = 7/9, tri of height 1 and base 2 dt.
    """
    a = PHOTON_CONVERSION_PER_X0 * dt
    kernel = np.empty(n)
    kernel[0] = (a - 1.0 + np.exp(-a)) / (PHOTON_CONVERSION_PER_X0 * a)
    kernel[1:] = -np.expm1(-a) * np.expm1(a) / (PHOTON_CONVERSION_PER_X0 * a)
    kernel[1:] *= np.exp(-a * np.arange(1, n))
    return kernel


def _electron_cell_kernel(h: float, n_L: int, dt: float, n_t: int, b: float) -> NDArray:
    """e+- track (X0) in cell (i + mL, j + mt) per e+- created uniformly in cell (i, j).

    K = Integral ds tri_dt(s - mt dt) Integral dl tri_h(l - mL h) g(l, s), g = Tsai's I_e in
    l = ln(E'/E): g = l^(a-1)/Gamma(a), a = b s. The l integral is exact with
    Integral_0^x g dl = P(a, x) and Integral_0^x l g dl = a P(a + 1, x); the s integral uses
    Gauss-Legendre (8 nodes) on both sides of the depth triangle.
    """
    l_grid = np.arange(n_L + 1) * h
    mt = np.arange(n_t)[:, None]
    mL = np.arange(n_L)
    kernel = np.zeros((n_L, n_t))
    for first in (mt - 1, mt):
        lo = np.maximum(first * dt, 0.0)
        hi = (first + 1) * dt
        ok = hi > lo
        s = np.where(ok, 0.5 * (lo + hi) + 0.5 * (hi - lo) * _BIN_NODES, 1.0)
        s_weight = np.where(ok, 0.5 * (hi - lo) * _BIN_WEIGHTS, 0.0)
        s_weight = s_weight * np.clip(1.0 - np.abs(s - mt * dt) / dt, 0.0, None)
        a = b * s[..., None]
        G0 = np.diff(special.gammainc(a, l_grid), axis=-1)  # Integral of g over [jh, (j+1)h]
        G1 = np.diff(a * special.gammainc(a + 1.0, l_grid), axis=-1)  # of l g
        falling = ((mL + 1) * h * G0 - G1) / h
        rising = np.zeros_like(falling)
        rising[..., 1:] = (G1[..., :-1] - (mL[1:] - 1) * h * G0[..., :-1]) / h
        kernel += np.einsum("tn,tnm->mt", s_weight, falling + rising)
    return kernel


def _primary_cells(h: float, n_L: int, dt: float, n_t: int, b: float) -> NDArray:
    """Primary track (X0) per (L, depth) cell: Integral_cell dt [P(b t, L_hi) - P(b t, L_lo)]."""
    t = (np.arange(n_t)[:, None] + 0.5 + 0.5 * _BIN_NODES) * dt
    P = special.gammainc(b * t[..., None], np.arange(n_L + 1) * h)
    return np.einsum("n,tnm->mt", 0.5 * dt * _BIN_WEIGHTS, np.diff(P, axis=-1))


class _CascadeCells(NamedTuple):
    electron_X0: NDArray  # (generations + 1, n_L), depth-summed
    photon_X0: NDArray  # (generations + 1, n_L): photons radiated by each generation


@functools.lru_cache(maxsize=16)
def _cascade_cells(L_max: float, dt: float, n_t: int, generations: int, b: float):
    """Generation-by-generation cascade on the (L, depth) grid (scale-free: E0 enters via L_max)."""
    h = L_max / _N_LOG_ENERGY_CELLS
    n_L = _N_LOG_ENERGY_CELLS
    reach_X0 = _depth_cutoff_X0(1.0, np.exp(-L_max - h), np.inf, b)
    n_reach = min(n_t, int(np.ceil(reach_X0 / dt)) + 1)
    electron_kernel = _electron_cell_kernel(h, n_L, dt, n_reach, b)
    photon_kernel = _log_energy_cell_kernel(_photons_per_log_energy, h, n_L)[:, None]
    pair_kernel = _log_energy_cell_kernel(_pairs_per_log_energy, h, n_L)[:, None]
    depth_kernel = _photon_depth_kernel(dt, n_t)[None, :]
    track = np.zeros((n_L, n_t))
    track[:, :n_reach] = _primary_cells(h, n_L, dt, n_reach, b)
    electrons, photons = [track.sum(axis=1)], []
    for _ in range(generations + 1):
        radiated = signal.fftconvolve(track, photon_kernel, axes=0)[:n_L]
        photon_track = signal.fftconvolve(radiated, depth_kernel, axes=1)[:, :n_t]
        photons.append(photon_track.sum(axis=1))
        if len(electrons) > generations:
            break
        created = signal.fftconvolve(photon_track, pair_kernel, axes=0)[:n_L]
        track = np.clip(signal.fftconvolve(created, electron_kernel)[:n_L, :n_t], 0.0, None)
        electrons.append(track.sum(axis=1))
    result = _CascadeCells(np.array(electrons), np.clip(np.array(photons), 0.0, None))
    for array in result:
        array.flags.writeable = False
    return result


def _cascade_depth_grid(
    E0_GeV: float, E_min_GeV: float, depth_X0: float, generations: int, b: float
) -> tuple[float, int]:
    """Depth step (X0) and number of steps of the cascade grid: at most 0.05 X0, at least 64.

    An infinite target is cut where the primary is below E_min (probability 1e-13) plus one
    photon path to survival 1e-9 per generation. Targets whose depth is a multiple of 0.05 X0
    get exactly that step, so that their grid is the first cells of the infinite one.
    """
    if not depth_X0 > 0:
        raise ValueError("depth_X0 must be positive")
    reach = _depth_cutoff_X0(E0_GeV, E_min_GeV, np.inf, b) + generations * _PHOTON_DEPTH_MARGIN_X0
    depth = min(depth_X0, reach)
    n_t = max(int(np.ceil(depth / _MAX_DEPTH_STEP_X0 - 1e-9)), _MIN_DEPTH_STEPS)
    on_step = depth == reach or abs(n_t * _MAX_DEPTH_STEP_X0 - depth) <= 1e-9 * depth
    return (_MAX_DEPTH_STEP_X0 if on_step else depth / n_t), n_t


class ShowerTrackLength(NamedTuple):
    """Shower track length (X0) per energy bin, by generation (row 0 = primary electron)."""

    edges_GeV: NDArray  # increasing, (n + 1,)
    electron_X0: NDArray  # e+- track, (generations + 1, n)
    photon_X0: NDArray  # track of the photons radiated by each generation, (generations + 1, n)


def shower_track_length(
    E0_GeV: float,
    E_min_GeV: float,
    *,
    depth_X0: float = np.inf,
    generations: int = SHOWER_GENERATIONS,
    b: float = TSAI_B,
) -> ShowerTrackLength:
    """e+- and photon track length above E_min in a target of depth_X0, by generation.

    128 bins uniform in ln E between E_min and E0. Generation 0 is Tsai's primary integrated
    exactly over each cell; generation n >= 1 are e+- from photons of generation n - 1.

    >>> tl = shower_track_length(100.0, 50.0)
    >>> [round(float(x), 3) for x in tl.electron_X0.sum(axis=1)]
    [0.87, 0.08, 0.002]
    """
    if not 0.0 < E_min_GeV < E0_GeV or generations < 0:
        raise ValueError("need 0 < E_min < E0 and generations >= 0")
    L_max = float(np.log(E0_GeV / E_min_GeV))
    dt, n_t = _cascade_depth_grid(E0_GeV, E_min_GeV, depth_X0, generations, b)
    cells = _cascade_cells(L_max, dt, n_t, int(generations), float(b))
    L_edges = np.linspace(0.0, L_max, _N_LOG_ENERGY_CELLS + 1)
    return ShowerTrackLength(
        E0_GeV * np.exp(-L_edges[::-1]), cells.electron_X0[:, ::-1], cells.photon_X0[:, ::-1]
    )


@dataclass(frozen=True)
class TrackLengthSpectrum:
    """Histogram of track length per unit energy: bin edges (GeV) and X0/GeV per bin."""

    edges_GeV: NDArray
    track_X0_per_GeV: NDArray

    def __post_init__(self) -> None:
        edges = np.asarray(self.edges_GeV, float)
        values = np.asarray(self.track_X0_per_GeV, float)
        if edges.ndim != 1 or values.shape != (edges.size - 1,) or np.any(np.diff(edges) <= 0):
            raise ValueError("need increasing edges (n+1,) and values (n,)")
        object.__setattr__(self, "edges_GeV", edges)
        object.__setattr__(self, "track_X0_per_GeV", values)

    @classmethod
    def from_tsai_primary(
        cls, E0_GeV: float, edges_GeV: ArrayLike, *, depth_X0: float = np.inf, b: float = TSAI_B
    ) -> TrackLengthSpectrum:
        """Bin-averaged Tsai primary track length, from incomplete-gamma bin probabilities."""
        edges = np.asarray(edges_GeV, float)
        L_edges = np.log(E0_GeV / np.clip(edges, 1e-300, E0_GeV))
        t_hi = _depth_cutoff_X0(E0_GeV, max(edges[0], 1e-12 * E0_GeV), depth_X0, b)
        t = 0.5 * t_hi * (_DEPTH_NODES + 1.0)
        P = special.gammainc(b * t[:, None], L_edges[None, :])
        track_in_bin_X0 = (0.5 * t_hi * _DEPTH_WEIGHTS) @ (P[:, :-1] - P[:, 1:])
        return cls(edges, track_in_bin_X0 / np.diff(edges))

    @classmethod
    def from_shower(
        cls,
        E0_GeV: float,
        E_min_GeV: float,
        *,
        depth_X0: float = np.inf,
        generations: int = SHOWER_GENERATIONS,
        b: float = TSAI_B,
        include_primary: bool = True,
    ) -> TrackLengthSpectrum:
        """e+- track length of the shower above E_min (:func:`shower_track_length`, summed).

        ``include_primary`` False keeps the secondaries (generations 1 .. n) only.
        """
        shower = shower_track_length(
            E0_GeV, E_min_GeV, depth_X0=depth_X0, generations=generations, b=b
        )
        track_X0 = shower.electron_X0[0 if include_primary else 1 :].sum(axis=0)
        return cls(shower.edges_GeV, track_X0 / np.diff(shower.edges_GeV))

    def quadrature(self, E_lo_GeV: float, E_hi_GeV: float) -> tuple[NDArray, NDArray]:
        """Nodes (GeV) and weights (X0) for Integral_{E_lo}^{E_hi} T(E) f(E) dE."""
        lo = np.clip(self.edges_GeV[:-1], E_lo_GeV, E_hi_GeV)
        hi = np.clip(self.edges_GeV[1:], E_lo_GeV, E_hi_GeV)
        half = 0.5 * (hi - lo)
        nodes = 0.5 * (hi + lo)[:, None] + half[:, None] * _BIN_NODES[None, :]
        weights = (half * self.track_X0_per_GeV)[:, None] * _BIN_WEIGHTS[None, :]
        return nodes.ravel(), weights.ravel()


def shower_track_weights(
    E0_GeV: float,
    E_min_GeV: float,
    *,
    depth_X0: float = np.inf,
    generations: int = SHOWER_GENERATIONS,
    b: float = TSAI_B,
) -> tuple[NDArray, NDArray]:
    """Quadrature (GeV, X0) for Integral_{E_min}^{E0} T_shower(E) f(E) dE.

    The primary keeps the exact :func:`primary_depth_weights`; the secondaries (generations
    1 .. n) enter as their histogram with 8 Gauss nodes per bin.
    """
    primary_nodes, primary_weights = primary_depth_weights(
        E0_GeV, E_min_GeV, depth_X0=depth_X0, b=b
    )
    if generations == 0:
        return primary_nodes, primary_weights
    secondaries = TrackLengthSpectrum.from_shower(
        E0_GeV, E_min_GeV, depth_X0=depth_X0, generations=generations, b=b, include_primary=False
    )
    nodes, weights = secondaries.quadrature(E_min_GeV, E0_GeV)
    return np.concatenate([primary_nodes, nodes]), np.concatenate([primary_weights, weights])
