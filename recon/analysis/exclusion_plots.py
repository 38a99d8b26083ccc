"""Plots of the limit stage: the exclusion region (Fig. 3 of the paper), efficiency and yield.

Masses in GeV on the data side, drawn in MeV; eps dimensionless; yields per electron on
target at eps = 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from recon.analysis.g2_band import g2_favoured_band
from recon.plotting import pyplot

__all__ = ["plot_efficiency", "plot_exclusion", "plot_yield"]

_MEV_PER_GEV = 1e3


def plot_exclusion(curves: Mapping[str, NDArray], path: str | Path) -> Path:
    """eps_up(m) of each curve, the excluded region above it, and the g-2 favoured band."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 7))
    m = np.geomspace(1e-3, 1.0, 200)
    band = g2_favoured_band(m)
    ax.fill_between(m * _MEV_PER_GEV, band.eps_low, band.eps_high, color="tab:green", alpha=0.35,
                    label=r"$a_\mu$ favoured $\pm 2\sigma$")
    for (label, curve), colour in zip(curves.items(), ("tab:blue", "tab:red", "tab:purple"),
                                      strict=False):
        x = curve["m_GeV"] * _MEV_PER_GEV
        ax.plot(x, curve["eps_up"], color=colour, label=f"90% CL, {label}")
        ax.fill_between(x, curve["eps_up"], 1.0, color=colour, alpha=0.12)
    ax.set(xscale="log", yscale="log", xlim=(1, 1000), ylim=(1e-5, 1e-1),
           xlabel=r"$m_{A'}$ [MeV]", ylabel="ε (mixing)")
    ax.legend(loc="upper left", fontsize="x-small", frameon=True)
    return _save(fig, path)


def plot_efficiency(points: Sequence[Mapping], path: str | Path) -> Path:
    """Total signal efficiency and its factors against the A' mass."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 7))
    points = sorted(points, key=lambda p: p["mass_GeV"])
    m = np.array([p["mass_GeV"] for p in points]) * _MEV_PER_GEV
    names = [s["name"] for s in points[0]["steps"]] if points else []
    for name in names:
        values = [next(s["value"] for s in p["steps"] if s["name"] == name) for p in points]
        ax.plot(m, values, marker="o", linestyle=":", label=name)
    eff = np.array([p["efficiency"] for p in points])
    err = np.array([[p["efficiency"] - p["efficiency_low"] for p in points],
                    [p["efficiency_high"] - p["efficiency"] for p in points]])
    ax.errorbar(m, eff, yerr=err, color="k", marker="s", label="total")
    ax.set(xscale="log", ylim=(0, 1.05), xlabel=r"$m_{A'}$ [MeV]", ylabel="efficiency")
    ax.legend(fontsize="x-small", ncol=2, loc="lower left")
    return _save(fig, path)


def plot_yield(m_GeV: NDArray, yields: Mapping[str, NDArray], path: str | Path) -> Path:
    """A' per electron on target at eps = 1 in the signal window, for each yield model."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 7))
    for label, values in yields.items():
        ax.plot(np.asarray(m_GeV) * _MEV_PER_GEV, values, label=label)
    ax.set(xscale="log", yscale="log", xlabel=r"$m_{A'}$ [MeV]",
           ylabel=r"$n_{A'}$ per EOT at ε = 1")
    ax.legend(fontsize="x-small")
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    pyplot().close(fig)
    return path
