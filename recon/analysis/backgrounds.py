"""Background in the signal box, two methods as in NA64, PRL 118, 011802 (2017).

Counts are (weighted) events; energies in GeV; EOT = electrons on target.

**Method 1, simulation by source** (the paper's Table I): simulated events passing the
criteria (i)-(iv) inside the box, grouped by the true process of the beam particle
(truth column ``process``, the simulation's ``Process`` enumeration, see
docs/simulation-physics.md) into the sources of Table I; an event with a second beam
particle in the read-out window (``pileup_pdg != 0``) counts as pile-up whatever its
process. Per source: ``sum w`` with error ``sqrt(sum w^2)``, scaled by
``target_eot / dataset_eot``. A source without box events is quoted as an upper
bound: the Poisson bound for zero observed events, ``-ln(0.32) = 1.14`` (68% CL) or
``ln(10) = 2.30`` (90% CL), times the source's mean weight and the scale.

**Method 2, sideband extrapolation** (the paper: "extrapolating the observed events to
the signal region assessing the systematic uncertainties by varying the background
fit functions"). Sideband A (E_ECAL < 50, E_HCAL > 1) feeds the box through the
E_HCAL distribution, sideband C (E_ECAL > 50, E_HCAL < 1) through E_ECAL. For a
sideband variable x with the box at ``box_low <= x < edge`` and the fit window
``edge <= x <= fit_max``:

* the shape f(x) is fitted to the events of a *shape sample* in the window by an
  extended binned likelihood (iminuit ``ExtendedBinnedNLL``, weighted histograms:
  sum w and sum w^2 per bin), with the families

  - ``exponential``: f(x) ∝ exp(b (x - edge)), b free;
  - ``power_law``:   f(x) ∝ (x / edge)^p, p free (p > -1 when ``box_low`` = 0, so
    that f is integrable down to 0);

* the transfer factor ``R = ∫_box f / ∫_window f`` (analytic), its error from the
  fitted shape parameter's (Hesse) error;
* the estimate ``b = N R`` with N the weighted count of *selected* events in the
  window (error ``sqrt(sum w^2)``): stat error ``sqrt((sigma_N R)^2 + (N sigma_R)^2)``.
  With N = 0 the estimate is 0 with upper bounds ``1.14 w (R + sigma_R)`` (68%) and
  ``2.30 w (R + sigma_R)`` (90%), w the mean weight in the window; the bounds of
  several sidebands add (conservative), the largest over the families is quoted.

The first family is the central value; the systematic is the largest difference of
another family's total (A + C) from it. When the shape sample is the selected sample
(the paper's choice), N R is the fitted integral over the box; a looser shape sample
(fewer cuts) gives a shape where the selected sidebands are too small to fit it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from iminuit import Minuit
from iminuit.cost import ExtendedBinnedNLL

__all__ = [
    "FAMILIES",
    "MC_SOURCES",
    "MC_TABLE_DTYPE",
    "POISSON_UPPER_68",
    "POISSON_UPPER_90",
    "SidebandConfig",
    "SidebandEstimate",
    "SidebandFit",
    "combine_sidebands",
    "extrapolate_sideband",
    "family_integral",
    "fit_sideband_shape",
    "mc_background_table",
    "transfer_factor",
]

POISSON_UPPER_68 = float(-np.log(0.32))  # 1.139: mean excluded at 68% CL by 0 events
POISSON_UPPER_90 = float(np.log(10.0))  # 2.303

# Sources of Table I and the truth `process` codes (sim.deposits.Process) they group;
# the pile-up source takes events with a second beam particle whatever their process.
PILEUP_SOURCE = "pile-up of a beam particle with a second one"
MC_SOURCES: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("e- energy loss, punch-through gammas (em_shower)", (0,)),
    ("hadrons lost from e- Z -> e- + hadrons (hadronic)", (1,)),
    ("muons lost from e- Z -> e- Z mu+ mu- (dimuon)", (2,)),
    ("e- interactions in the beam line (upstream_brems)", (3,)),
    ("mu, pi, K decays in flight (decay_in_flight)", (4,)),
    ("mu, pi, K interactions in the target (hadron_*, muon_passing)", (6, 7, 8, 10)),
    (PILEUP_SOURCE, ()),
    ("other (aprime, no_particle)", (5, 9)),
)
_N_PROCESS_CODES = 11

MC_TABLE_DTYPE = np.dtype(
    [
        ("source", "U80"),
        ("n_sample", "i8"),  # simulated events of this source (any selection)
        ("n_box", "i8"),  # of them, passing (i)-(iv) inside the box
        ("sum_w", "f8"),  # weighted box events, dataset EOT
        ("sum_w_err", "f8"),
        ("upper_68", "f8"),  # zero box events: 68% CL bound, dataset EOT (NaN otherwise)
        ("upper_90", "f8"),
        ("expected", "f8"),  # scaled to the target EOT
        ("expected_err", "f8"),
        ("expected_upper_68", "f8"),
        ("expected_upper_90", "f8"),
    ]
)

FAMILIES = ("exponential", "power_law")


@dataclass(frozen=True)
class SidebandConfig:
    """Method 2: fit families (first = central), shape-sample cuts, fit windows (GeV)."""

    fits: tuple[str, ...] = FAMILIES
    shape_cuts: tuple[str, ...] = ("track_angle", "srd_tag")
    a_fit_max_GeV: float = 30.0  # sideband A: E_HCAL in [hcal_max, this]
    c_fit_max_GeV: float = 100.0  # sideband C: E_ECAL in [ecal_max, this]
    bins: int = 30
    min_fit_events: int = 5

    def __post_init__(self) -> None:
        unknown = set(self.fits) - set(FAMILIES)
        if not self.fits or unknown:
            raise ValueError(f"sideband fits must be among {FAMILIES}, got {self.fits}")
        if self.bins < 1 or self.min_fit_events < 1:
            raise ValueError("bins and min_fit_events must be positive")


def _source_index(process: np.ndarray, pileup_pdg: np.ndarray) -> np.ndarray:
    lookup = np.full(_N_PROCESS_CODES, len(MC_SOURCES) - 1, dtype=np.int64)
    for index, (_, codes) in enumerate(MC_SOURCES):
        lookup[list(codes)] = index
    process = np.asarray(process, dtype=np.int64)
    known = (process >= 0) & (process < _N_PROCESS_CODES)
    index = np.where(known, lookup[np.clip(process, 0, _N_PROCESS_CODES - 1)], len(MC_SOURCES) - 1)
    pileup = [name for name, _ in MC_SOURCES].index(PILEUP_SOURCE)
    return np.where(np.asarray(pileup_pdg) != 0, pileup, index)


def mc_background_table(
    selected_in_box: np.ndarray,
    process: np.ndarray,
    pileup_pdg: np.ndarray,
    weights: np.ndarray,
    *,
    dataset_eot: float,
    target_eot: float,
) -> np.ndarray:
    """Table I: per source and in total, box events passing (i)-(iv), scaled to ``target_eot``."""
    weights = np.asarray(weights, dtype=float)
    selected_in_box = np.asarray(selected_in_box, dtype=bool)
    source = _source_index(process, pileup_pdg)
    n_sources = len(MC_SOURCES)
    n_sample = np.bincount(source, minlength=n_sources)
    w_sample = np.bincount(source, weights=weights, minlength=n_sources)
    box = source[selected_in_box]
    w_box = weights[selected_in_box]
    n_box = np.bincount(box, minlength=n_sources)
    sum_w = np.bincount(box, weights=w_box, minlength=n_sources)
    sum_w2 = np.bincount(box, weights=w_box**2, minlength=n_sources)
    mean_all = weights.mean() if weights.size else 1.0
    mean_w = np.where(n_sample > 0, w_sample / np.maximum(n_sample, 1), mean_all)
    table = np.zeros(n_sources + 1, dtype=MC_TABLE_DTYPE)
    table["source"] = [name for name, _ in MC_SOURCES] + ["total"]
    table["n_sample"] = [*n_sample, n_sample.sum()]
    table["n_box"] = [*n_box, n_box.sum()]
    table["sum_w"] = [*sum_w, sum_w.sum()]
    table["sum_w_err"] = np.sqrt([*sum_w2, sum_w2.sum()])
    typical = np.append(mean_w, mean_all)
    empty = table["n_box"] == 0
    table["upper_68"] = np.where(empty, POISSON_UPPER_68 * typical, np.nan)
    table["upper_90"] = np.where(empty, POISSON_UPPER_90 * typical, np.nan)
    scale = target_eot / dataset_eot
    for name in ("sum_w", "sum_w_err", "upper_68", "upper_90"):
        target = {"sum_w": "expected", "sum_w_err": "expected_err"}.get(name, f"expected_{name}")
        table[target] = table[name] * scale
    return table


# --- method 2: sideband extrapolation ------------------------------------------------


def family_integral(family: str, shape: float, lo, hi, edge: float):
    """∫_lo^hi f(x) dx of the unnormalised family density (vectorised in lo, hi)."""
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    if family == "exponential":
        if abs(shape) * max(np.max(np.abs(hi - edge)), np.max(np.abs(lo - edge)), 1e-12) < 1e-9:
            return hi - lo
        return (np.exp(shape * (hi - edge)) - np.exp(shape * (lo - edge))) / shape
    if family == "power_law":
        q = shape + 1.0
        if abs(q) < 1e-9:
            return edge * (np.log(hi / edge) - np.log(lo / edge))
        return edge / q * ((hi / edge) ** q - (lo / edge) ** q)
    raise ValueError(f"unknown fit family {family!r}; have {FAMILIES}")


def transfer_factor(
    family: str, shape: float, *, edge: float, fit_max: float, box_low: float
) -> float:
    """R = ∫_box f / ∫_window f for the shape parameter ``shape``."""
    box = family_integral(family, shape, box_low, edge, edge)
    window = family_integral(family, shape, edge, fit_max, edge)
    return float(box / window)


@dataclass(frozen=True)
class SidebandFit:
    """A fitted shape: parameter, its error, the transfer factor R and its error."""

    family: str
    n_window: float  # weighted shape-sample events in the fit window
    shape: float  # b (1/GeV) or p
    shape_err: float
    transfer: float
    transfer_err: float
    valid: bool


def _shape_limits(family: str, box_low: float) -> tuple[float | None, float | None]:
    if family == "power_law":
        return (-1.0 + 1e-3 if box_low <= 0 else -50.0, 50.0)
    return (None, None)


def fit_sideband_shape(
    x: np.ndarray,
    weights: np.ndarray,
    *,
    family: str,
    edge: float,
    fit_max: float,
    box_low: float,
    n_bins: int,
) -> SidebandFit:
    """Extended binned maximum-likelihood fit of ``family`` to x in [edge, fit_max]."""
    if family == "power_law" and box_low < 0:
        raise ValueError("power_law needs box_low >= 0 (the density is (x/edge)^p)")
    x = np.asarray(x, dtype=float)
    weights = np.asarray(weights, dtype=float)
    edges = np.linspace(edge, fit_max, n_bins + 1)
    sum_w, _ = np.histogram(x, bins=edges, weights=weights)
    sum_w2, _ = np.histogram(x, bins=edges, weights=weights**2)
    counts = np.stack([sum_w, sum_w2], axis=-1)

    def scaled_cdf(xe, n, shape):
        return (
            n
            * family_integral(family, shape, edge, xe, edge)
            / family_integral(family, shape, edge, fit_max, edge)
        )

    n_window = float(sum_w.sum())
    minuit = Minuit(ExtendedBinnedNLL(counts, edges, scaled_cdf), n=max(n_window, 1.0), shape=0.0)
    minuit.limits["n"] = (0.0, None)
    minuit.limits["shape"] = _shape_limits(family, box_low)
    minuit.migrad()
    minuit.hesse()
    shape, shape_err = float(minuit.values["shape"]), float(minuit.errors["shape"])
    geometry = {"edge": edge, "fit_max": fit_max, "box_low": box_low}
    transfer = transfer_factor(family, shape, **geometry)
    return SidebandFit(
        family=family,
        n_window=n_window,
        shape=shape,
        shape_err=shape_err,
        transfer=transfer,
        transfer_err=_propagated(
            lambda s: transfer_factor(family, s, **geometry), shape, shape_err
        ),
        valid=bool(minuit.valid),
    )


def _propagated(func: Callable[[float], float], value: float, error: float) -> float:
    """|df/dx| error by a central difference over +-error/10."""
    step = max(error / 10.0, 1e-9)
    return abs(func(value + step) - func(value - step)) / (2.0 * step) * error


@dataclass(frozen=True)
class SidebandEstimate:
    """Box background from one sideband, per fit family (the first is the central one)."""

    sideband: str
    n_selected: float  # weighted selected events in the fit window
    n_selected_err: float
    mean_weight: float
    fits: tuple[SidebandFit, ...] = field(default_factory=tuple)
    reason: str = ""  # why there is no estimate, if there is none

    @property
    def available(self) -> bool:
        return bool(self.fits)

    def value(self, fit: SidebandFit) -> float:
        return self.n_selected * fit.transfer

    def stat_error(self, fit: SidebandFit) -> float:
        return float(
            np.hypot(self.n_selected_err * fit.transfer, self.n_selected * fit.transfer_err)
        )

    def upper(self, fit: SidebandFit, poisson_bound: float) -> float:
        """Bound for zero selected events in the window (NaN when there are some)."""
        if self.n_selected > 0:
            return float("nan")
        return poisson_bound * self.mean_weight * (fit.transfer + fit.transfer_err)


def extrapolate_sideband(
    sideband: str,
    x_shape: np.ndarray,
    w_shape: np.ndarray,
    x_selected: np.ndarray,
    w_selected: np.ndarray,
    *,
    edge: float,
    fit_max: float,
    box_low: float,
    families: Sequence[str],
    n_bins: int,
    min_fit_events: int,
) -> SidebandEstimate:
    """Fit each family to the shape sample; normalise to the selected events in the window."""
    x_selected, w_selected = np.asarray(x_selected, float), np.asarray(w_selected, float)
    x_shape, w_shape = np.asarray(x_shape, float), np.asarray(w_shape, float)
    in_window = (x_selected >= edge) & (x_selected <= fit_max)
    shape_window = (x_shape >= edge) & (x_shape <= fit_max)
    w_in = w_selected[in_window]
    mean_weight = float(w_shape[shape_window].mean()) if shape_window.any() else 1.0
    common = {
        "sideband": sideband,
        "n_selected": float(w_in.sum()),
        "n_selected_err": float(np.sqrt(np.sum(w_in**2))),
        "mean_weight": float(w_in.mean()) if w_in.size else mean_weight,
    }
    n_shape = int(shape_window.sum())
    if n_shape < min_fit_events:
        reason = f"{n_shape} shape-sample events in the fit window, fewer than {min_fit_events}"
        return SidebandEstimate(**common, reason=reason)
    fits = tuple(
        fit_sideband_shape(x_shape[shape_window], w_shape[shape_window], family=family,
                           edge=edge, fit_max=fit_max, box_low=box_low, n_bins=n_bins)
        for family in families
    )  # fmt: skip
    return SidebandEstimate(**common, fits=fits)


def combine_sidebands(estimates: Sequence[SidebandEstimate], scale: float = 1.0) -> dict:
    """Total over the sidebands with an estimate: central, stat, syst, bounds, per family.

    ``scale`` multiplies every count (target EOT / dataset EOT).
    """
    usable = [e for e in estimates if e.available]
    unavailable = {e.sideband: e.reason for e in estimates if not e.available}
    if not usable:
        return {"available": False, "sidebands": [], "unavailable": unavailable}
    families = [fit.family for fit in usable[0].fits]
    totals = {
        family: scale * sum(e.value(e.fits[k]) for e in usable) for k, family in enumerate(families)
    }
    central = totals[families[0]]
    stat = scale * float(np.sqrt(sum(e.stat_error(e.fits[0]) ** 2 for e in usable)))
    syst = max(abs(total - central) for total in totals.values())
    bounds = {}
    for label, bound in (("upper_68", POISSON_UPPER_68), ("upper_90", POISSON_UPPER_90)):
        per_family = [
            scale * sum(_bound_or_value(e, e.fits[k], bound) for e in usable)
            for k, _family in enumerate(families)
        ]
        bounds[label] = max(per_family)  # the most conservative function
    zero = all(e.n_selected == 0 for e in usable)
    return {
        "available": True,
        "sidebands": [e.sideband for e in usable],
        "unavailable": unavailable,
        "central": central,
        "stat": stat,
        "syst": syst,
        "per_family": totals,
        "zero_selected": zero,
        **(bounds if zero else {"upper_68": None, "upper_90": None}),
    }


def _bound_or_value(estimate: SidebandEstimate, fit: SidebandFit, bound: float) -> float:
    return estimate.upper(fit, bound) if estimate.n_selected == 0 else estimate.value(fit)
