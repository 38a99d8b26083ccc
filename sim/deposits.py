"""The interface between event generation and digitisation: true deposits.

The generator (beam, transport, processes, showers, synchrotron radiation)
produces :class:`TrueEvents`: what every beam particle did and what energy it
left where, as dense per-event numpy arrays. The digitiser turns them into
SADC waveforms and APV strip samples, applies the trigger and writes raw
files and truth. Units: GeV, mm, ns.

Counter index order (the decoded ``counters.counter`` ids, geometry ids):
0 S1, 1 V1, 2 S2, 3 V2, 4..6 SRD0..SRD2, 7..10 MU1..MU4.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import IntEnum

import numpy as np

__all__ = [
    "N_COUNTERS",
    "N_STATIONS",
    "APRIME_HISTOGRAM_EDGES_GeV",
    "Deposits",
    "Process",
    "TrueEvents",
]

N_COUNTERS = 11
N_STATIONS = 4  # MM1, MM2, GEM3, GEM4
#: Bins of the histogram of generated A' energies of signal runs: 0.5 GeV up to 150 GeV.
APRIME_HISTOGRAM_EDGES_GeV = np.linspace(0.0, 150.0, 301)


class Process(IntEnum):
    """What happened to the beam particle (truth column ``process``)."""

    EM_SHOWER = 0  # ordinary electron shower in the ECAL
    HADRONIC = 1  # electro/photo-nuclear production, hadrons leak to the HCAL (region II)
    DIMUON = 2  # gamma -> mu+ mu- in the ECAL (region I)
    UPSTREAM_BREMS = 3  # bremsstrahlung in upstream material: the photon is lost
    DECAY_IN_FLIGHT = 4  # pi, K (incl. Ke3) or mu decay in flight
    APRIME = 5  # signal: A' emission, E_miss = f E0
    HADRON_PASSING = 6  # pi/K crossing the ECAL as a MIP, showering in the HCAL
    HADRON_CHARGE_EX = 7  # pi/K charge exchange in the ECAL: EM-like deposit
    MUON_PASSING = 8  # beam muon crossing everything
    NO_PARTICLE = 9  # random trigger / pedestal event
    HADRON_SHOWER = 10  # pi/K interacting in the ECAL, shower shared between ECAL and HCAL


@dataclass
class Deposits:
    """Energy deposits of one particle (or one bunch crossing), per event.

    Shapes: ``ecal_GeV`` (n, 2, 6, 6) [section, ix, iy]; ``hcal_GeV`` (n, 4, 3, 3)
    [module, ix, iy]; ``counters_GeV`` (n, 11); tracker crossings ``track_x_mm``,
    ``track_y_mm`` (n, 4), NaN where the particle does not cross the station.
    Energies are visible energies (the calibrated scale a perfect detector
    would report: for the SRD, the absorbed synchrotron-photon energy).
    """

    ecal_GeV: np.ndarray
    hcal_GeV: np.ndarray
    counters_GeV: np.ndarray
    track_x_mm: np.ndarray
    track_y_mm: np.ndarray

    @classmethod
    def zeros(cls, n: int) -> Deposits:
        return cls(
            ecal_GeV=np.zeros((n, 2, 6, 6), dtype=np.float32),
            hcal_GeV=np.zeros((n, 4, 3, 3), dtype=np.float32),
            counters_GeV=np.zeros((n, N_COUNTERS), dtype=np.float32),
            track_x_mm=np.full((n, N_STATIONS), np.nan, dtype=np.float64),
            track_y_mm=np.full((n, N_STATIONS), np.nan, dtype=np.float64),
        )

    def __len__(self) -> int:
        return self.ecal_GeV.shape[0]

    def take(self, index) -> Deposits:
        return Deposits(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


@dataclass
class TrueEvents:
    """What the generator produced for ``n`` beam particles (before any trigger).

    ``pileup`` holds the deposits of a second beam particle arriving at
    ``pileup_dt_ns`` from the first (NaN where there is none; its deposits are
    zero there). ``weight`` is the event weight for biased rare processes, so
    that sums of weights normalise to electrons on target.
    """

    pdg: np.ndarray  # (n,) int32, beam particle PDG id
    process: np.ndarray  # (n,) int8, Process
    p_true_GeV: np.ndarray  # (n,) beam particle momentum at T1
    e_aprime_GeV: np.ndarray  # (n,) A' energy (0 if none)
    weight: np.ndarray  # (n,) float64
    intime: Deposits
    pileup: Deposits
    pileup_dt_ns: np.ndarray  # (n,) float64, NaN if no pile-up
    pileup_pdg: np.ndarray  # (n,) int32, 0 if no pile-up

    def __len__(self) -> int:
        return self.pdg.shape[0]

    def take(self, index) -> TrueEvents:
        values = {}
        for f in fields(self):
            value = getattr(self, f.name)
            values[f.name] = value.take(index) if isinstance(value, Deposits) else value[index]
        return TrueEvents(**values)
