"""Analysis layer: A' yield, limits, g-2 band (and, from other modules, selection/background).

Submodules are imported explicitly, e.g. ``from recon.analysis.aprime_yield import
aprime_yield_per_eot``; this package file imports nothing so that each stage pulls in only
what it needs (pyhf is loaded by :mod:`recon.analysis.limits` alone).
"""

__all__: list[str] = []
