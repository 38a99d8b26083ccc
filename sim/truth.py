"""Truth tables of simulated runs: one row per triggered (written) event.

Rows join the decoded digits on (``run``, ``spill``, ``event``). Columns
(units in the names; "true" energies are the generator's visible energies,
before digitisation):

========================== ============== =============================================
column                     type           meaning
========================== ============== =============================================
run, spill, event          uint32         event identity, as in the raw file
trigger_time_ns            uint64         trigger time since run start
segment                    int32          run segment (calibration: scanned cell index)
beam_target_x_mm, _y_mm    float64        calibration aim point at the ECAL (NaN otherwise)
pdg                        int32          beam particle PDG id
process                    int8           :class:`sim.deposits.Process`
p_true_GeV                 float64        beam particle momentum at T1
e_aprime_GeV               float64        A' energy (0 if none)
weight                     float64        event weight (sums normalise to EOT)
e_ecal_true_GeV            float64        in-time ECAL energy, both sections
e_presh_true_GeV           float64        in-time ECAL preshower energy
e_hcal_true_GeV            float64        in-time HCAL energy, 4 modules
e_hcal01_true_GeV          float64        in-time HCAL energy, modules 0 and 1
e_srd_true_GeV             float64        in-time SRD energy, 3 modules
ecal_true_GeV              2*6*6 float32  in-time ECAL cells [section][ix][iy]
hcal_true_GeV              4*3*3 float32  in-time HCAL cells [module][ix][iy]
counters_true_GeV          11 float32     in-time counters, ids of sim.deposits
track_x_mm, track_y_mm     4 float64      in-time crossings at MM1, MM2, GEM3, GEM4 (NaN)
pileup_dt_ns               float64        pile-up particle time (NaN if none)
pileup_pdg                 int32          pile-up particle PDG id (0 if none)
e_ecal_pileup_true_GeV     float64        pile-up ECAL energy
e_hcal_pileup_true_GeV     float64        pile-up HCAL energy
pileup_track_x_mm, _y_mm   4 float64      pile-up crossings (NaN)
t_event_jitter_ns          float64        common time shift the digitiser applied
n_saturated                int32          SADC channels with a sample at 4095
========================== ============== =============================================
"""

from __future__ import annotations

from collections.abc import Mapping

import awkward as ak
import numpy as np

from sim.deposits import Process, TrueEvents

__all__ = ["process_tally", "truth_columns", "truth_table", "zip_truth"]

_SRD_COUNTERS = slice(4, 7)   # counter ids 4..6 (sim.deposits order)


def _sum_cells(array: np.ndarray) -> np.ndarray:
    return array.sum(axis=tuple(range(1, array.ndim)), dtype=np.float64)


def truth_table(events: TrueEvents, ids: Mapping[str, np.ndarray], t_event_jitter_ns: np.ndarray,
                n_saturated: np.ndarray, segment: np.ndarray,
                beam_target_xy_mm: np.ndarray) -> ak.Array:
    """The truth rows of ``events`` (:func:`truth_columns` as an awkward record array)."""
    return zip_truth(truth_columns(events, ids, t_event_jitter_ns, n_saturated, segment,
                                   beam_target_xy_mm))


def zip_truth(columns: Mapping[str, np.ndarray]) -> ak.Array:
    """Truth columns (numpy, one row per event) as an awkward record array."""
    return ak.zip({k: ak.from_numpy(v, regulararray=True) for k, v in columns.items()},
                  depth_limit=1)


def truth_columns(events: TrueEvents, ids: Mapping[str, np.ndarray],
                  t_event_jitter_ns: np.ndarray, n_saturated: np.ndarray, segment: np.ndarray,
                  beam_target_xy_mm: np.ndarray) -> dict[str, np.ndarray]:
    """The truth rows of ``events`` as numpy columns.

    ``ids`` holds ``run``, ``spill``, ``event`` and ``trigger_time_ns`` arrays;
    ``beam_target_xy_mm`` is (n, 2), NaN where the beam is not steered.
    """
    intime, pileup = events.intime, events.pileup
    return {
        "run": ids["run"].astype(np.uint32),
        "spill": ids["spill"].astype(np.uint32),
        "event": ids["event"].astype(np.uint32),
        "trigger_time_ns": ids["trigger_time_ns"].astype(np.uint64),
        "segment": segment.astype(np.int32),
        "beam_target_x_mm": beam_target_xy_mm[:, 0].astype(np.float64),
        "beam_target_y_mm": beam_target_xy_mm[:, 1].astype(np.float64),
        "pdg": events.pdg.astype(np.int32),
        "process": events.process.astype(np.int8),
        "p_true_GeV": events.p_true_GeV.astype(np.float64),
        "e_aprime_GeV": events.e_aprime_GeV.astype(np.float64),
        "weight": events.weight.astype(np.float64),
        "e_ecal_true_GeV": _sum_cells(intime.ecal_GeV),
        "e_presh_true_GeV": _sum_cells(intime.ecal_GeV[:, 0]),
        "e_hcal_true_GeV": _sum_cells(intime.hcal_GeV),
        "e_hcal01_true_GeV": _sum_cells(intime.hcal_GeV[:, :2]),
        "e_srd_true_GeV": _sum_cells(intime.counters_GeV[:, _SRD_COUNTERS]),
        "ecal_true_GeV": intime.ecal_GeV.astype(np.float32),
        "hcal_true_GeV": intime.hcal_GeV.astype(np.float32),
        "counters_true_GeV": intime.counters_GeV.astype(np.float32),
        "track_x_mm": intime.track_x_mm.astype(np.float64),
        "track_y_mm": intime.track_y_mm.astype(np.float64),
        "pileup_dt_ns": events.pileup_dt_ns.astype(np.float64),
        "pileup_pdg": events.pileup_pdg.astype(np.int32),
        "e_ecal_pileup_true_GeV": _sum_cells(pileup.ecal_GeV),
        "e_hcal_pileup_true_GeV": _sum_cells(pileup.hcal_GeV),
        "pileup_track_x_mm": pileup.track_x_mm.astype(np.float64),
        "pileup_track_y_mm": pileup.track_y_mm.astype(np.float64),
        "t_event_jitter_ns": t_event_jitter_ns.astype(np.float64),
        "n_saturated": n_saturated.astype(np.int32),
    }


def process_tally(process: np.ndarray, weight: np.ndarray) -> dict[str, dict[str, float]]:
    """Event counts and weight sums per process name (every process listed)."""
    counts = np.bincount(process.astype(np.int64), minlength=len(Process))
    sums = np.bincount(process.astype(np.int64), weights=weight, minlength=len(Process))
    return {p.name.lower(): {"events": int(counts[p]), "weighted": float(sums[p])} for p in Process}
