"""Validation against simulation truth: the only part of ``recon`` that reads truth.

Truth comes from the simulation's *files* (truth Parquet tables and the true
constants JSON), never from importing the ``sim`` package, so that the
reconstruction stays independent of the simulation that tests it.

* :mod:`~recon.validation.calorimetry`: derived calorimeter conditions vs the
  true constants, reconstructed calorimeter output vs the true deposits
  (closure, linearity, resolution, MIP peaks), with plots.
"""

from recon.validation.calorimetry import (
    CaloAcceptance,
    TrueSadcConstants,
    read_true_sadc_constants,
    validate_calorimetry,
)

__all__ = ["CaloAcceptance", "TrueSadcConstants", "read_true_sadc_constants",
           "validate_calorimetry"]
