"""Calorimetry: SADC waveforms -> calibrated cells -> ECAL, HCAL and counter summaries.

Modules (units: ADC counts, ns, GeV, mm):

* :mod:`~recon.calo.waveform`: one numba kernel for every SADC channel of a chunk
  (even/odd pedestals, maximum, template fit amplitude and time, chi2, flags);
* :mod:`~recon.calo.sadc_channels`: flat views of the decoded SADC groups;
* derivations writing condition files, each with a loader, a plot and a summary:
  :mod:`~recon.calo.sadc_pedestals` (pedestal runs),
  :mod:`~recon.calo.pulse_template` (pulse shapes per detector group and per ECAL channel),
  :mod:`~recon.calo.ecal_calibration` (cell scan, containment and outer energy from the data),
  :mod:`~recon.calo.hcal_calibration` (muon MIP peak),
  :mod:`~recon.calo.counters` (counter and SRD scales; per-event counter columns);
* :mod:`~recon.calo.ecal_summary`, :mod:`~recon.calo.hcal_summary`: per-event kernels;
* :mod:`~recon.calo.calo_stage`: the pure stage function :func:`calo_events`.

See ``docs/calorimetry.md`` for the algorithms, equations and references.
"""

from recon.calo.calo_stage import (
    CaloConditions,
    CaloConfig,
    CaloOutput,
    calo_events,
    calo_from_digits,
)
from recon.calo.sadc_channels import SadcHits, SadcLayout, sadc_hits
from recon.calo.waveform import (
    PulseShapes,
    SadcTiming,
    WaveformConfig,
    WaveformFlag,
    WaveformResult,
    reconstruct_waveforms,
)

__all__ = [
    "CaloConditions",
    "CaloConfig",
    "CaloOutput",
    "PulseShapes",
    "SadcHits",
    "SadcLayout",
    "SadcTiming",
    "WaveformConfig",
    "WaveformFlag",
    "WaveformResult",
    "calo_events",
    "calo_from_digits",
    "reconstruct_waveforms",
    "sadc_hits",
]
