"""One-loop A' contribution to the muon anomalous magnetic moment and the g-2 favoured band.

Units: masses in GeV; Delta a_mu and eps dimensionless.

Pospelov, PRD 80 (2009) 095002, eq. 9 (also Fayet, PRD 75 (2007) 115017)::

    Delta a_mu = (alpha eps^2 / 2 pi) F(m_A'/m_mu),
    F(r) = Integral_0^1 dz 2 z (1 - z)^2 / ((1 - z)^2 + z r^2),   F(0) = 1, F ~ 2/(3 r^2) at r >> 1

The favoured band of the seed paper's era: Delta a_mu = (2.87 +- 0.80) x 1e-9 (Bennett et al.,
PRD 73 (2006) 072003 versus the 2011-2016 SM evaluations), drawn at +-2 sigma.
alpha and m_mu come from :mod:`scipy.constants` (CODATA 2018).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import constants as sc

__all__ = [
    "DELTA_AMU_2016",
    "DELTA_AMU_2016_SIGMA",
    "G2Band",
    "delta_amu",
    "eps_for_delta_amu",
    "g2_favoured_band",
    "g2_loop_function",
]

ALPHA_EM: float = sc.fine_structure
M_MU_GEV: float = sc.physical_constants["muon mass energy equivalent in MeV"][0] * 1e-3
DELTA_AMU_2016: float = 2.87e-9
DELTA_AMU_2016_SIGMA: float = 0.80e-9

_N_Z_NODES = 256
_Z_NODES, _Z_WEIGHTS = np.polynomial.legendre.leggauss(_N_Z_NODES)


class G2Band(NamedTuple):
    """eps(m) for the lower edge, the central value and the upper edge of the band."""

    eps_low: NDArray
    eps_central: NDArray
    eps_high: NDArray


def g2_loop_function(m_GeV: ArrayLike) -> NDArray:
    """F(m/m_mu) of the one-loop vector contribution (Gauss-Legendre, 256 nodes, z = 1 - y^2).

    >>> round(float(g2_loop_function(1e-6)), 4)
    1.0
    """
    r2 = (np.asarray(m_GeV, float) / M_MU_GEV) ** 2
    y = 0.5 * (_Z_NODES + 1.0)  # z = 1 - y^2 concentrates nodes where (1 - z)^2 ~ z r^2
    one_minus_z = y**2
    z = 1.0 - one_minus_z
    integrand = 2.0 * z * one_minus_z**2 / (one_minus_z**2 + z * r2[..., None]) * 2.0 * y
    return 0.5 * np.sum(_Z_WEIGHTS * integrand, axis=-1)


def delta_amu(m_GeV: ArrayLike, eps: ArrayLike) -> NDArray:
    """Delta a_mu from an A' of mass m and mixing eps.

    >>> bool(np.isclose(delta_amu(1e-6, 1e-3), ALPHA_EM * 1e-6 / (2 * np.pi), rtol=1e-6))
    True
    """
    return ALPHA_EM * np.asarray(eps, float) ** 2 / (2.0 * np.pi) * g2_loop_function(m_GeV)


def eps_for_delta_amu(m_GeV: ArrayLike, delta: ArrayLike) -> NDArray:
    """Mixing eps for which the A' alone gives Delta a_mu = delta."""
    unit = delta_amu(m_GeV, 1.0)
    return np.sqrt(np.asarray(delta, float) / unit)


def g2_favoured_band(
    m_GeV: ArrayLike,
    *,
    central: float = DELTA_AMU_2016,
    sigma: float = DELTA_AMU_2016_SIGMA,
    n_sigma: float = 2.0,
) -> G2Band:
    """eps band explaining Delta a_mu = central +- n_sigma sigma (lower edge: central - n sigma).

    >>> band = g2_favoured_band(0.01)
    >>> bool(band.eps_low < band.eps_central < band.eps_high)
    True
    """
    return G2Band(
        eps_low=eps_for_delta_amu(m_GeV, central - n_sigma * sigma),
        eps_central=eps_for_delta_amu(m_GeV, central),
        eps_high=eps_for_delta_amu(m_GeV, central + n_sigma * sigma),
    )
