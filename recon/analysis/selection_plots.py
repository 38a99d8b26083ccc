"""Plots of ``na64 select``: the (E_ECAL, E_HCAL) plane before and after the selection
(Fig. 2 of Banerjee et al., PRL 118 (2017) 011802, with the signal box drawn five times
taller in E_HCAL as there), the sideband fits, and the cut flow. Energies in GeV.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recon.analysis.backgrounds import family_integral
from recon.analysis.dataset_selection import SelectionOutputs
from recon.analysis.selection import SelectionConfig
from recon.plotting import pyplot

__all__ = ["write_selection_plots"]

HCAL_BOX_DRAW_SCALE = 5.0  # the paper's Fig. 2 draws the box 5x taller in E_HCAL
_ENERGY_RANGE_GeV = (0.0, 150.0)
_PLANE_BINS = 100


def write_selection_plots(directory: Path, out: SelectionOutputs, cuts: SelectionConfig) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    _plot_plane(out.plane_before, cuts, out.blinded, "all events", directory / "fig2_before.png")
    _plot_plane(out.plane_after, cuts, out.blinded, "after (i)-(iv)", directory / "fig2_after.png")
    _plot_sidebands(out, directory / "sideband_fits.png")
    _plot_cutflow(out.cutflow, out.blinded, directory / "cutflow.png")


def _plot_plane(plane, cuts: SelectionConfig, blinded: bool, title: str, path: Path) -> None:
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Rectangle

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 8.5))
    edges = np.linspace(*_ENERGY_RANGE_GeV, _PLANE_BINS + 1)
    h, _, _ = np.histogram2d(
        plane["e_ecal_GeV"], plane["e_hcal_GeV"], bins=(edges, edges), weights=plane["weight"]
    )
    if h.max() > 0:
        mesh = ax.pcolormesh(
            edges,
            edges,
            np.where(h > 0, h, np.nan).T,
            norm=LogNorm(vmin=h[h > 0].min(), vmax=h.max()),
            cmap="viridis",
        )
        fig.colorbar(mesh, ax=ax, label="events / bin")
    box_height = cuts.hcal_max_GeV * HCAL_BOX_DRAW_SCALE
    ax.add_patch(
        Rectangle(
            (0, 0),
            cuts.ecal_max_GeV,
            box_height,
            fill=False,
            lw=2,
            ec="red",
            hatch="///" if blinded else None,
            label="signal box" + (" (blinded)" if blinded else ""),
        )
    )
    top = _ENERGY_RANGE_GeV[1]
    ax.add_patch(
        Rectangle(
            (0, box_height),
            cuts.ecal_max_GeV,
            top - box_height,
            fill=False,
            ls="--",
            ec="k",
            label="sideband A",
        )
    )
    ax.add_patch(
        Rectangle(
            (cuts.ecal_max_GeV, 0),
            top - cuts.ecal_max_GeV,
            box_height,
            fill=False,
            ls=":",
            ec="b",
            lw=2,
            label="sideband C",
        )
    )
    ax.set(
        xlabel="E_ECAL [GeV]",
        ylabel="E_HCAL (first two modules) [GeV]",
        xlim=_ENERGY_RANGE_GeV,
        ylim=_ENERGY_RANGE_GeV,
        title=f"{title}; box and C drawn {HCAL_BOX_DRAW_SCALE:g}x taller in E_HCAL",
    )
    ax.title.set_fontsize(14)
    ax.legend(loc="upper right", fontsize=13)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _plot_sidebands(out: SelectionOutputs, path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(
        1, len(out.sidebands), figsize=(9 * len(out.sidebands), 7), squeeze=False
    )
    labels = {"A": "E_HCAL [GeV] (E_ECAL < box)", "C": "E_ECAL [GeV] (E_HCAL < box)"}
    for ax, estimate in zip(axes[0], out.sidebands, strict=True):
        sample = out.sideband_samples[estimate.sideband]
        edge, fit_max = float(sample["edge"]), float(sample["fit_max"])
        n_bins = 30
        bins = np.linspace(edge, fit_max, n_bins + 1)
        ax.hist(
            sample["x"],
            bins=bins,
            weights=sample["weight"],
            histtype="step",
            color="k",
            label="shape sample",
        )
        ax.hist(
            sample["x_selected"],
            bins=bins,
            histtype="stepfilled",
            alpha=0.3,
            label="selected (i)-(iv)",
        )
        grid = np.linspace(0.0, fit_max, 300)
        width = (fit_max - edge) / n_bins
        for fit in estimate.fits:
            norm = fit.n_window / family_integral(fit.family, fit.shape, edge, fit_max, edge)
            density = np.diff(family_integral(fit.family, fit.shape, edge, grid, edge)) / np.diff(
                grid
            )
            ax.plot(grid[1:], norm * density * width, label=f"{fit.family}: R = {fit.transfer:.3g}")
        ax.axvspan(0.0, edge, color="red", alpha=0.1, label="box (extrapolated, no data)")
        if not estimate.available:
            ax.text(
                0.5,
                0.5,
                f"no fit: {estimate.reason}",
                transform=ax.transAxes,
                ha="center",
                fontsize=13,
                wrap=True,
            )
        ax.set(
            xlabel=labels[estimate.sideband],
            ylabel="events / bin",
            yscale="log" if sample["x"].size else "linear",
            title=f"sideband {estimate.sideband}",
        )
        ax.legend(fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _plot_cutflow(table: np.ndarray, blinded: bool, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 6.5))
    y = np.arange(len(table))[::-1]
    ax.barh(y, np.maximum(table["sum_w"], 1e-3), xerr=table["sum_w_err"], color="steelblue")
    ax.set_yticks(y, list(table["cut"]))
    ax.set(
        xscale="log",
        xlabel="weighted events passing (cumulative)",
        title="cut flow" + (" (blinded: the box rows are hidden)" if blinded else ""),
    )
    ax.title.set_fontsize(16)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
