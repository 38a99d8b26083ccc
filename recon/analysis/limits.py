"""90% CL CLs upper limit on the signal and the exclusion curve eps_up(m_A').

Units: event counts; masses in GeV; eps dimensionless.

Model (built with pyhf, one bin): expected count lambda = mu s kappa_s(alpha_s) + b kappa_b(alpha_b)
with s = 1 (so mu is the number of signal events), ``normfactor`` mu, and ``normsys``
modifiers (hi = 1 + r, lo = 1 - r, pyhf interpolation code 4) for the relative signal
uncertainty r = sig_rel_unc and the background uncertainty r = b_err / b; alpha ~ N(0, 1).

CLs (Read, J. Phys. G 28 (2002) 2693; Junk, NIM A 434 (1999) 435) with the observed count as
test statistic (equivalent to the likelihood ratio for one bin) and exact Poisson
probabilities, the nuisance parameters integrated over their pyhf constraint terms
(Cousins-Highland hybrid, NIM A 320 (1992) 331) with Gauss-Hermite quadrature::

    CLs(mu) = P(n <= n_obs | mu s + b) / P(n <= n_obs | b),   CLs(N90) = 1 - CL

For n_obs = 0 and no systematics CLs = exp(-mu s) whatever b, so N90 = ln 10 = 2.303.
pyhf's asymptotic calculator (``calctype="asymptotics"``, q~_mu of Cowan et al., EPJC 71
(2011) 1554) is available for comparison; it needs large counts and gives N90 = 1.35
instead of 2.30 for n_obs = 0, b = 0. A zero background needs no regularisation: pyhf
evaluates Poisson(0 | 0) = 1 and fits mu without warnings.

Exclusion (Banerjee et al., PRL 118 (2017) 011802, eq. 2): N_A' = n_EOT n_A'(m, eps) eff(m),
n_A' proportional to eps^2, hence eps_up(m) = sqrt(N90 / (n_EOT eff(m) n_A'(m, eps = 1))).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import pyhf
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special

from recon.analysis.aprime_yield import LEAD, Material, aprime_yield_per_eot
from recon.analysis.track_length import TrackLengthSpectrum

__all__ = [
    "EXCLUSION_DTYPE",
    "cls_counting",
    "counting_model",
    "eps_upper",
    "exclusion_curve",
    "upper_limit_signal_events",
]

EXCLUSION_DTYPE = np.dtype(
    [
        ("m_GeV", "f8"),
        ("efficiency", "f8"),
        ("yield_per_eot_eps1", "f8"),
        ("n90", "f8"),
        ("eps_up", "f8"),
    ]
)
_N_HERMITE = 32
PerMass = float | ArrayLike | Callable[[NDArray], NDArray]


def _normsys(name: str, rel_unc: float) -> dict:
    if not 0.0 <= rel_unc < 1.0:
        raise ValueError(f"{name}: relative uncertainty must be in [0, 1), got {rel_unc}")
    return {"name": name, "type": "normsys", "data": {"hi": 1.0 + rel_unc, "lo": 1.0 - rel_unc}}


def counting_model(
    b: float,
    *,
    b_err: float = 0.0,
    sig_rel_unc: float = 0.0,
    mu_max: float = 10.0,
    batch_size: int | None = None,
) -> pyhf.Model:
    """One-bin pyhf model: signal 1 event x normfactor ``mu`` in (0, mu_max), background b."""
    if b < 0 or b_err < 0:
        raise ValueError("background and its uncertainty must be non-negative")
    signal_mods = [{"name": "mu", "type": "normfactor", "data": None}]
    if sig_rel_unc > 0:
        signal_mods.append(_normsys("signal_syst", sig_rel_unc))
    background_mods = [_normsys("background_unc", b_err / b)] if b > 0 and b_err > 0 else []
    spec = {
        "channels": [
            {
                "name": "signal_region",
                "samples": [
                    {"name": "signal", "data": [1.0], "modifiers": signal_mods},
                    {"name": "background", "data": [float(b)], "modifiers": background_mods},
                ],
            }
        ],
        "parameters": [{"name": "mu", "bounds": [[0.0, float(mu_max)]]}],
    }
    return pyhf.Model(spec, poi_name="mu", batch_size=batch_size)


def _marginal_rates(b: float, b_err: float, sig_rel_unc: float) -> tuple[NDArray, ...]:
    """Signal (per unit mu) and background rates on a Gauss-Hermite grid of the nuisances."""
    probe = counting_model(b, b_err=b_err, sig_rel_unc=sig_rel_unc)
    nuisances = [p for p in probe.config.par_order if p != "mu"]
    nodes, weights = np.polynomial.hermite_e.hermegauss(_N_HERMITE)
    n_grid = _N_HERMITE ** len(nuisances)
    index = np.indices((_N_HERMITE,) * len(nuisances)).reshape(len(nuisances), n_grid)
    node_weight = np.prod(weights[index] / weights.sum(), axis=0)
    model = counting_model(b, b_err=b_err, sig_rel_unc=sig_rel_unc, batch_size=2 * n_grid)
    pars = np.tile(np.asarray(model.config.suggested_init(), float), (2 * n_grid, 1))
    for j, name in enumerate(nuisances):
        pars[:, model.config.par_slice(name)] = np.tile(nodes[index[j]], 2)[:, None]
    pars[:n_grid, model.config.par_slice("mu")] = 1.0
    pars[n_grid:, model.config.par_slice("mu")] = 0.0
    rates = np.asarray(model.expected_actualdata(pars), float)[:, 0]
    background = rates[n_grid:]
    return rates[:n_grid] - background, background, node_weight


def _cls_from_rates(mu: NDArray, n_obs: int, s_k: NDArray, b_k: NDArray, w_k: NDArray):
    cl_sb = special.pdtr(n_obs, mu[..., None] * s_k + b_k) @ w_k
    return cl_sb / (special.pdtr(n_obs, b_k) @ w_k)


def cls_counting(
    mu: ArrayLike, n_obs: int, b: float, *, b_err: float = 0.0, sig_rel_unc: float = 0.0
) -> NDArray:
    """Exact-Poisson hybrid CLs for mu signal events (vectorised over mu).

    >>> round(float(cls_counting(np.log(10.0), 0, 0.5)), 6)
    0.1
    """
    rates = _marginal_rates(b, b_err, sig_rel_unc)
    return _cls_from_rates(np.asarray(mu, float), n_obs, *rates)


def _upper_limit_exact(n_obs: int, b: float, b_err: float, sig_rel_unc: float, cl: float):
    rates = _marginal_rates(b, b_err, sig_rel_unc)

    def excess(mu: float) -> float:
        return float(_cls_from_rates(np.asarray(mu), n_obs, *rates)) - (1.0 - cl)

    hi = 2.0 * (n_obs + 3.0)
    while excess(hi) > 0:
        hi *= 2.0
    return optimize.brentq(excess, 0.0, hi, xtol=1e-10, rtol=1e-12)


def _upper_limit_asymptotic(n_obs: int, b: float, b_err: float, sig_rel_unc: float, cl: float):
    mu_max = 10.0 + 3.0 * (n_obs + b)
    model = counting_model(b, b_err=b_err, sig_rel_unc=sig_rel_unc, mu_max=mu_max)
    data = [float(n_obs), *model.config.auxdata]
    # toms748_scan directly: upper_limit(scan=None) ignores `level` (scikit-hep/pyhf#2563).
    limit, _ = pyhf.infer.intervals.upper_limits.toms748_scan(
        data, model, 0.1, mu_max / 4.0, level=1.0 - cl, test_stat="qtilde"
    )
    return float(limit)


def upper_limit_signal_events(
    n_obs: int,
    b: float,
    *,
    b_err: float = 0.0,
    sig_rel_unc: float = 0.0,
    cl: float = 0.90,
    calctype: Literal["exact", "asymptotics"] = "exact",
) -> float:
    """Upper limit N90 on the number of signal events (CLs, confidence level ``cl``).

    >>> round(upper_limit_signal_events(0, 0.0), 3)
    2.303
    """
    if n_obs < 0 or not 0.0 < cl < 1.0:
        raise ValueError("need n_obs >= 0 and 0 < cl < 1")
    if calctype == "exact":
        return float(_upper_limit_exact(int(n_obs), b, b_err, sig_rel_unc, cl))
    if calctype == "asymptotics":
        return _upper_limit_asymptotic(int(n_obs), b, b_err, sig_rel_unc, cl)
    raise ValueError(f"unknown calctype {calctype!r}")


def _per_mass(value: PerMass, m: NDArray) -> NDArray:
    if callable(value):
        return np.broadcast_to(np.asarray(value(m), float), m.shape)
    return np.broadcast_to(np.asarray(value, float), m.shape)


def eps_upper(
    m_GeV: ArrayLike,
    *,
    n_eot: float,
    efficiency: PerMass,
    n90: float,
    yield_per_eot_eps1: PerMass | None = None,
) -> NDArray:
    """eps_up(m) = sqrt(N90 / (n_EOT eff(m) n_A'(m, eps=1))).

    ``efficiency`` and ``yield_per_eot_eps1`` are numbers, arrays over m or callables of m;
    a missing yield is computed with :func:`aprime_yield_per_eot` defaults (Pb, 100 GeV).

    >>> eps = eps_upper(0.01, n_eot=1e10, efficiency=1.0, n90=2.3, yield_per_eot_eps1=2.3e-10)
    >>> round(float(eps), 9)
    1.0
    """
    m = np.asarray(m_GeV, float)
    if yield_per_eot_eps1 is None:
        yield_per_eot_eps1 = aprime_yield_per_eot(m, eps=1.0)
    signal_per_eps2 = n_eot * _per_mass(efficiency, m) * _per_mass(yield_per_eot_eps1, m)
    with np.errstate(divide="ignore"):
        return np.sqrt(n90 / signal_per_eps2)


def exclusion_curve(
    masses_GeV: ArrayLike,
    *,
    n_eot: float,
    efficiency: PerMass,
    n_obs: int,
    b: float,
    b_err: float = 0.0,
    yield_rel_unc: float = 0.19,
    eff_rel_unc: float = 0.0,
    cl: float = 0.90,
    E0_GeV: float = 100.0,
    x_min: float = 0.5,
    material: Material = LEAD,
    track_length: TrackLengthSpectrum | str | None = None,
    calctype: Literal["exact", "asymptotics"] = "exact",
) -> NDArray:
    """Exclusion curve as a structured array (:data:`EXCLUSION_DTYPE`), one row per mass.

    N90 is computed once, with the yield and efficiency uncertainties added in quadrature
    as the signal normsys; eps_up follows from the eps^2 scaling of the yield.
    """
    m = np.atleast_1d(np.asarray(masses_GeV, float))
    n90 = upper_limit_signal_events(
        n_obs,
        b,
        b_err=b_err,
        sig_rel_unc=float(np.hypot(yield_rel_unc, eff_rel_unc)),
        cl=cl,
        calctype=calctype,
    )
    yields = aprime_yield_per_eot(
        m, eps=1.0, E0_GeV=E0_GeV, x_min=x_min, material=material, track_length=track_length
    )
    eff = _per_mass(efficiency, m)
    curve = np.empty(m.shape, dtype=EXCLUSION_DTYPE)
    curve["m_GeV"] = m
    curve["efficiency"] = eff
    curve["yield_per_eot_eps1"] = yields
    curve["n90"] = n90
    curve["eps_up"] = eps_upper(m, n_eot=n_eot, efficiency=eff, n90=n90, yield_per_eot_eps1=yields)
    return curve
