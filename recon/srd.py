"""Electron identification with the synchrotron-radiation detector (SRD).

A 100 GeV electron bent by the two dipoles radiates about 155 MeV of
synchrotron light (critical energy 11.6 MeV), about 40 % of it into the three
SRD modules (about 20 MeV per module); a pion or kaon of the same momentum
radiates (m_e/m)^4 less, i.e. nothing visible (spec ``setup-invis2016`` section
2 and 4; Gninenko, PRD 89 075008 (2014); NA64, PRL 118 011802 (2017), where the
SRD suppressed the pi/e ~ 1e-2 beam contamination by a further ~1e3).

The tag asks each module's energy to lie inside the synchrotron window and
its pulse to be in time with the trigger, in at least ``min_modules`` of the
three modules (3: all; 2: two of three). Energies and times come from the
counter reconstruction of the calorimetry stage (``srd<k>_GeV``,
``srd<k>_t_ns``).

>>> import numpy as np
>>> cols = {f"srd{k}_GeV": np.array([0.02, 0.0]) for k in range(3)}
>>> cols |= {f"srd{k}_t_ns": np.array([1.0, np.nan]) for k in range(3)}
>>> srd_tag(cols, SrdConfig(min_modules=3))["srd_tag"].tolist()
[True, False]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["N_SRD_MODULES", "SrdConfig", "srd_tag"]

N_SRD_MODULES = 3


@dataclass(frozen=True)
class SrdConfig:
    """Thresholds of the SRD electron tag (GeV, ns relative to the trigger)."""

    module_min_GeV: float = 0.0005
    module_max_GeV: float = 0.150
    time_window_ns: float = 12.5
    min_modules: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.min_modules <= N_SRD_MODULES:
            raise ValueError(f"min_modules must be 1..{N_SRD_MODULES}, got {self.min_modules}")
        if not 0 <= self.module_min_GeV < self.module_max_GeV:
            raise ValueError("need 0 <= module_min_GeV < module_max_GeV")


def srd_tag(columns: Mapping[str, np.ndarray], config: SrdConfig) -> dict[str, np.ndarray]:
    """Per-event ``srd_GeV`` (module sum), ``srd_n_modules`` (in window and time), ``srd_tag``."""
    energy = np.stack([np.asarray(columns[f"srd{k}_GeV"], float) for k in range(N_SRD_MODULES)], 1)
    time = np.stack([np.asarray(columns[f"srd{k}_t_ns"], float) for k in range(N_SRD_MODULES)], 1)
    in_window = (energy >= config.module_min_GeV) & (energy <= config.module_max_GeV)
    in_time = np.abs(time) <= config.time_window_ns  # NaN (no pulse) compares False
    n_good = np.count_nonzero(in_window & in_time, axis=1)
    return {
        "srd_GeV": energy.sum(axis=1).astype(np.float32),
        "srd_n_modules": n_good.astype(np.uint8),
        "srd_tag": n_good >= config.min_modules,
    }
