"""Hardware trigger of the invis2016 setup, decided on cheap per-particle totals.

Spec section 5 (and NA64, PRL 118 (2017) 011802):

* physics: S1 and S2 fire, V1 does not, and the in-time ECAL energy is below
  80 GeV; the threshold is smeared event by event (Gaussian, ``threshold_smear_GeV``)
  to mimic the analogue sum's resolution;
* calibration: S1 and S2 (no ECAL cut); for steered scans (ECAL cells, HCAL cells)
  the 60 mm S2 does not cover the target point, so steered calibration runs
  require S1 only;
* random: every event.

The triggering (in-time) particle defines the time. A pile-up particle within
``coincidence_window_ns`` adds its ECAL energy to the in-time sum and its V1
signal to the veto; S1 and S2 are required from the in-time particle.
Counters fire when a charged particle crosses them (full efficiency).
Units: GeV, ns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "TriggerConfig",
    "TriggerInputs",
    "TriggerParams",
    "ecal_thresholds",
    "trigger_config",
    "trigger_decision",
]


@dataclass(frozen=True)
class TriggerParams:
    ecal_max_GeV: float
    threshold_smear_GeV: float
    coincidence_window_ns: float

    @classmethod
    def from_dict(cls, d: dict) -> TriggerParams:
        return cls(**{k: float(v) for k, v in d.items()})


@dataclass(frozen=True)
class TriggerConfig:
    """Which conditions a trigger kind requires."""

    require_s1: bool
    require_s2: bool
    veto_v1: bool
    ecal_max_GeV: float | None
    threshold_smear_GeV: float
    coincidence_window_ns: float
    accept_all: bool = False


@dataclass
class TriggerInputs:
    """Per-event cheap totals of the in-time and pile-up particles (arrays of length n)."""

    s1: np.ndarray
    s2: np.ndarray
    v1: np.ndarray
    e_ecal_GeV: np.ndarray
    pileup_v1: np.ndarray
    pileup_e_ecal_GeV: np.ndarray
    pileup_dt_ns: np.ndarray  # NaN where there is no pile-up


def trigger_config(kind: str, params: TriggerParams, *, steered: bool = False) -> TriggerConfig:
    """The trigger of a simulation kind: physics, calibration (S1 [and S2]) or random."""
    common = {
        "threshold_smear_GeV": params.threshold_smear_GeV,
        "coincidence_window_ns": params.coincidence_window_ns,
    }
    if kind in ("physics", "signal"):
        return TriggerConfig(True, True, True, params.ecal_max_GeV, **common)
    if kind in ("ecal_scan", "hcal_muons"):
        return TriggerConfig(True, not steered, False, None, **common)
    if kind == "random":
        return TriggerConfig(False, False, False, None, accept_all=True, **common)
    raise ValueError(f"unknown trigger kind {kind!r}")


def ecal_thresholds(
    n: int, config: TriggerConfig, rng: np.random.Generator
) -> np.ndarray | None:
    """The smeared ECAL thresholds (GeV) of ``n`` events (None: no ECAL condition)."""
    if config.accept_all or config.ecal_max_GeV is None:
        return None
    return config.ecal_max_GeV + config.threshold_smear_GeV * rng.standard_normal(n)


def trigger_decision(
    inputs: TriggerInputs,
    config: TriggerConfig,
    rng: np.random.Generator,
    threshold_GeV: np.ndarray | None = None,
) -> np.ndarray:
    """Boolean mask of triggered events.

    ``threshold_GeV``: the events' smeared ECAL thresholds if already drawn
    (:func:`ecal_thresholds`), e.g. to decide first on the in-time particle alone:
    pile-up only adds energy and vetoes, so an event rejected without its pile-up
    particle is rejected with it.
    """
    n = inputs.s1.shape[0]
    if config.accept_all:
        return np.ones(n, dtype=bool)
    close = np.abs(np.nan_to_num(inputs.pileup_dt_ns, nan=np.inf)) <= config.coincidence_window_ns
    ok = np.ones(n, dtype=bool)
    if config.require_s1:
        ok &= inputs.s1
    if config.require_s2:
        ok &= inputs.s2
    if config.veto_v1:
        ok &= ~(inputs.v1 | (close & inputs.pileup_v1))
    if config.ecal_max_GeV is not None:
        e_sum = inputs.e_ecal_GeV + np.where(close, inputs.pileup_e_ecal_GeV, 0.0)
        if threshold_GeV is None:
            threshold_GeV = ecal_thresholds(n, config, rng)
        ok &= e_sum < threshold_GeV
    return ok
