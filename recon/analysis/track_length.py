"""Electron track length per unit energy in a thick target (X0/GeV).

Units: energies in GeV, depth t in radiation lengths X0, track length spectra in X0/GeV.

Tsai's Bethe-Heitler approximation for the energy distribution of the primary electron at
depth t (Y.-S. Tsai, Rev. Mod. Phys. 46 (1974) 815; as used by Bjorken et al., PRD 38 (1988) 3375;
Gninenko et al., PRD 94 (2016) 095025)::

    I_e(E0, E, t) = (ln(E0/E))^(b t - 1) / (E0 Gamma(b t)),   b = 4/3

so that ln(E0/E) at depth t is Gamma-distributed with shape b t. The primary track length is

    T(E) = Integral_0^D I_e(E0, E, t) dt                       (X0/GeV)

and the track length with E in (E1, E2) is Integral dt [P(b t, ln(E0/E1)) - P(b t, ln(E0/E2))]
with P the regularised lower incomplete gamma function. Secondary e+- are neglected (they
matter little for E > E0/2; a simulated spectrum enters as :class:`TrackLengthSpectrum`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

__all__ = [
    "TSAI_B",
    "TrackLengthSpectrum",
    "primary_depth_weights",
    "primary_energy_density_per_GeV",
    "primary_track_length_per_GeV",
]

TSAI_B: float = 4.0 / 3.0
_MAX_DEPTH_SCAN_X0 = 400.0
_NEGLIGIBLE_PROBABILITY = 1e-13
_N_DEPTH = 96
_N_LOG_DEPTH = 160
_N_W = 64
_N_PER_BIN = 8
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

    def quadrature(self, E_lo_GeV: float, E_hi_GeV: float) -> tuple[NDArray, NDArray]:
        """Nodes (GeV) and weights (X0) for Integral_{E_lo}^{E_hi} T(E) f(E) dE."""
        lo = np.clip(self.edges_GeV[:-1], E_lo_GeV, E_hi_GeV)
        hi = np.clip(self.edges_GeV[1:], E_lo_GeV, E_hi_GeV)
        half = 0.5 * (hi - lo)
        nodes = 0.5 * (hi + lo)[:, None] + half[:, None] * _BIN_NODES[None, :]
        weights = (half * self.track_X0_per_GeV)[:, None] * _BIN_WEIGHTS[None, :]
        return nodes.ravel(), weights.ravel()
