"""NA64 invisible-mode reconstruction and analysis.

Stages (each a pure core, a thin I/O layer and an ``na64 <stage>`` command):
decode, track, calo, srd, classify, merge, and the analysis. The detector
description and calibrations come only through :mod:`recon.conditions`.
"""

__version__ = "0.1.0"
