"""Event classification: one flat row per event, labelled as in the NA64 paper.

Joins the per-event outputs of the reconstruction stages of a chunk (tracks,
calorimetry, SRD) row by row and labels each event in the (E_ECAL, E_HCAL)
plane of NA64, PRL 118 011802 (2017), Fig. 2, with E_HCAL the energy in the
first two HCAL modules:

* region I, dimuon production (e Z -> e Z gamma, gamma -> mu+ mu-): muons
  crossing the HCAL, seen in at least ``mu_min_planes`` MU counters;
* region II, hadron electroproduction: E_ECAL + E_HCAL compatible with the
  beam energy and E_HCAL above the zero-energy threshold;
* region III, pile-up: E_ECAL + E_HCAL clearly above the beam energy (two
  particles), or a second pulse in the calorimeters;
* the signal box E_ECAL < 50 GeV, E_HCAL < 1 GeV, and the sidebands
  A (E_ECAL < 50, E_HCAL > 1) and C (E_ECAL > 50, E_HCAL < 1) used to
  extrapolate the background into it.

All thresholds come from :class:`ClassifyConfig` (the ``classify`` section of
the workflow configuration).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

__all__ = ["ClassifyConfig", "Region", "classify_events"]


class Region(IntEnum):
    """The ``region`` column."""

    OTHER = 0
    DIMUON = 1  # region I
    HADRONIC = 2  # region II
    PILEUP = 3  # region III


@dataclass(frozen=True)
class ClassifyConfig:
    beam_energy_GeV: float = 100.0
    signal_box_ecal_max_GeV: float = 50.0
    hcal_zero_GeV: float = 1.0
    hadronic_sum_window: tuple[float, float] = (0.8, 1.2)  # (E_ECAL + E_HCAL) / E0
    pileup_sum_min: float = 1.25  # (E_ECAL + E_HCAL) / E0 above this
    mu_threshold_GeV: float = 0.0005  # half a muon MIP in an MU counter (~1.1 MeV)
    mu_min_planes: int = 2


def classify_events(
    columns: Mapping[str, np.ndarray], config: ClassifyConfig
) -> dict[str, np.ndarray]:
    """Region, signal box and sidebands from the joined per-event columns.

    Needs ``e_ecal_GeV``, ``e_hcal_GeV`` (first two modules), ``e_hcal_total_GeV``,
    ``mu1_GeV`` .. ``mu4_GeV`` and, if present, a ``calo_pileup`` flag.
    """
    e_ecal = np.nan_to_num(np.asarray(columns["e_ecal_GeV"], float))
    e_hcal = np.nan_to_num(np.asarray(columns["e_hcal_GeV"], float))
    e_sum = e_ecal + np.nan_to_num(np.asarray(columns["e_hcal_total_GeV"], float))
    e_sum /= config.beam_energy_GeV
    n_mu = sum(np.asarray(columns[f"mu{k}_GeV"]) > config.mu_threshold_GeV for k in range(1, 5))
    pileup_flag = np.asarray(columns.get("calo_pileup", np.zeros(e_ecal.size, bool)), bool)

    region = np.full(e_ecal.size, Region.OTHER, dtype=np.uint8)
    hadronic = (e_hcal > config.hcal_zero_GeV) & (e_sum >= config.hadronic_sum_window[0])
    hadronic &= e_sum <= config.hadronic_sum_window[1]
    region[hadronic] = Region.HADRONIC
    region[n_mu >= config.mu_min_planes] = Region.DIMUON
    region[(e_sum > config.pileup_sum_min) | pileup_flag] = Region.PILEUP

    low_ecal = e_ecal < config.signal_box_ecal_max_GeV
    quiet_hcal = e_hcal < config.hcal_zero_GeV
    return {
        "region": region,
        "n_mu_planes": np.asarray(n_mu, dtype=np.uint8),
        "in_signal_box": low_ecal & quiet_hcal,
        "in_sideband_A": low_ecal & ~quiet_hcal,
        "in_sideband_C": ~low_ecal & quiet_hcal,
    }
