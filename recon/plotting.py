"""Matplotlib for the pipeline's plots: the non-interactive Agg backend and the mplhep ROOT style.

Imported lazily by the plotting functions, so that stages which write no plot never import
matplotlib. Every plot the workflow writes is a PNG for the Snakemake report.
"""

from __future__ import annotations

from types import ModuleType

__all__ = ["pyplot"]


def pyplot() -> ModuleType:
    """``matplotlib.pyplot`` on the Agg backend, with the mplhep ROOT style when available."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        import mplhep

        plt.style.use(mplhep.style.ROOT)
    except ImportError:  # mplhep is optional for the plots
        pass
    return plt
