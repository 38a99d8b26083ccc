"""The 90% CL exclusion eps_up(m_A') in the two modes of the analysis, and its g-2 reach.

* ``pipeline``: the simulated (or recorded) dataset's own number of electrons on target,
  its observed count in the signal box (the expected one while the box is blind) and
  background estimate, and the signal efficiencies the pipeline measured;
* ``paper``: the inputs of Banerjee et al., PRL 118 (2017) 011802: 2.75e9 EOT, zero
  events observed, with the efficiencies measured by the pipeline.

The efficiency is measured at a few A' masses and interpolated linearly in log(m),
constant beyond the measured range. The g-2 reach is the largest mass below which the
whole muon g-2 favoured band (``recon.analysis.g2_band``, +-2 sigma) lies above eps_up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from recon.analysis.g2_band import g2_favoured_band
from recon.analysis.limits import exclusion_curve

__all__ = [
    "LimitInputs",
    "efficiency_vs_mass",
    "g2_reach_GeV",
    "limit_table",
]


@dataclass(frozen=True)
class LimitInputs:
    """What a limit needs besides the yield and the efficiency.

    ``eff_rel_unc`` is the relative uncertainty of the efficiency and ``yield_rel_unc``
    that of the A' yield (19% in the paper); both enter as one signal normsys.
    """

    mode: Literal["pipeline", "paper"]
    n_eot: float
    n_obs: int
    b: float = 0.0
    b_err: float = 0.0
    yield_rel_unc: float = 0.19
    eff_rel_unc: float = 0.0
    cl: float = 0.90


def efficiency_vs_mass(
    masses_GeV: ArrayLike, efficiencies: ArrayLike
) -> Callable[[NDArray], NDArray]:
    """Efficiency as a function of mass: linear in log(m) between measured points.

    >>> eff = efficiency_vs_mass([0.001, 0.1], [0.8, 0.6])
    >>> [round(float(v), 3) for v in eff(np.array([0.0005, 0.01, 1.0]))]
    [0.8, 0.7, 0.6]
    """
    m = np.asarray(masses_GeV, float)
    order = np.argsort(m)
    log_m, eff = np.log(m[order]), np.asarray(efficiencies, float)[order]

    def efficiency(m_GeV: NDArray) -> NDArray:
        return np.interp(np.log(np.asarray(m_GeV, float)), log_m, eff)

    return efficiency


def g2_reach_GeV(m_GeV: ArrayLike, eps_up: ArrayLike) -> float:
    """Largest mass up to which eps_up stays below the lower edge of the g-2 band.

    The crossing is interpolated linearly in log(m) between grid points; 0 if the lowest
    mass is not excluded, the highest grid mass if none is above.

    >>> m = np.geomspace(0.001, 1.0, 61)
    >>> reach = g2_reach_GeV(m, g2_favoured_band(m).eps_low * np.sqrt(m / 0.05))
    >>> round(reach, 3)
    0.05
    """
    m = np.asarray(m_GeV, float)
    margin = np.log(g2_favoured_band(m).eps_low) - np.log(np.asarray(eps_up, float))
    if margin[0] <= 0:
        return 0.0
    failing = np.flatnonzero(margin <= 0)
    if failing.size == 0:
        return float(m[-1])
    k = failing[0]
    frac = margin[k - 1] / (margin[k - 1] - margin[k])
    return float(np.exp(np.log(m[k - 1]) + frac * (np.log(m[k]) - np.log(m[k - 1]))))


def limit_table(
    masses_GeV: ArrayLike,
    inputs: LimitInputs,
    efficiency: Callable[[NDArray], NDArray],
    **yield_options,
) -> NDArray:
    """The exclusion curve (:data:`recon.analysis.limits.EXCLUSION_DTYPE`) for these inputs.

    ``yield_options`` go to :func:`recon.analysis.aprime_yield.aprime_yield_per_eot`
    (beam energy, ``x_min``, material, track length).
    """
    return exclusion_curve(
        masses_GeV,
        n_eot=inputs.n_eot,
        efficiency=efficiency,
        n_obs=inputs.n_obs,
        b=inputs.b,
        b_err=inputs.b_err,
        yield_rel_unc=inputs.yield_rel_unc,
        eff_rel_unc=inputs.eff_rel_unc,
        cl=inputs.cl,
        **yield_options,
    )
