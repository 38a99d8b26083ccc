"""``na64 align DIGITS... --root DIR --version V``: tracker alignment (``alignment`` condition).

Clusters the strips of the given decoded runs (beam particles at a known
momentum, e.g. physics or electron runs), derives the per-station offsets
(dx, dy) in mm with :func:`recon.tracking.derive_alignment` starting from the
alignment valid for the run (its reference stations, default MM1 and MM2,
stay where they are), and writes

* ``<root>/<setup>/alignment/<version>.json`` (a condition with ``--valid-runs``),
* ``<plots>/alignment_<version>.png``: the residuals (measured minus fitted,
  mm) of every station and plane before and after the alignment,
* ``<plots>/alignment_<version>.summary.json``: offsets, the derivation's
  report and the residual means and widths before and after.

The mean beam momentum and its relative spread (``--beam-momentum``,
``--beam-spread``) fix the momentum-scale gauge mode (docs/tracking.md).
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path

import awkward as ak
import numpy as np

from recon.commands.common import add_conditions_options, conditions_from_args
from recon.commands.stage import input_identity

__all__ = ["register", "track_residuals"]

log = logging.getLogger("na64.align")

_COLUMNS = ["run", "spill", "event", "strips"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "align", help="derive the tracker alignment from beam tracks",
        description=__doc__.splitlines()[0],
    )  # fmt: skip
    p.add_argument("digits", type=Path, nargs="+", help="digits files of `na64 decode`")
    p.add_argument("--root", type=Path, required=True, help="conditions root to write into")
    p.add_argument("--version", required=True, help="version of the alignment condition written")
    p.add_argument("--valid-runs", type=int, nargs=2, required=True, metavar=("FIRST", "LAST"))
    p.add_argument("--plots", type=Path, required=True, help="directory for the plot and summary")
    p.add_argument("--setup", help="detector setup (default: from the digits' provenance)")
    p.add_argument(
        "--beam-momentum",
        type=float,
        default=100.0,
        metavar="GEV",
        help="mean beam momentum, GeV (default 100)",
    )
    p.add_argument(
        "--beam-spread",
        type=float,
        default=0.01,
        metavar="REL",
        help="relative r.m.s. beam momentum spread (default 0.01)",
    )
    p.add_argument(
        "--reference",
        nargs="+",
        default=["MM1", "MM2"],
        metavar="STATION",
        help="stations held at their input offsets (at least two; default MM1 MM2)",
    )
    p.add_argument(
        "--max-events", type=int, default=None, help="use at most this many events (default: all)"
    )
    add_conditions_options(p)
    p.set_defaults(func=_main)


def _flat_strips(paths: list[Path], max_events: int | None):
    """Event offsets and flat strip columns of the digits files, concatenated."""
    from recon.io.tables import read_events

    parts = [read_events(p, columns=_COLUMNS) for p in paths]
    digits = ak.concatenate(parts) if len(parts) > 1 else parts[0]
    if max_events is not None:
        digits = digits[:max_events]
    strips = digits.strips
    counts = np.asarray(ak.num(strips, axis=1), dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(counts)))
    flat = ak.flatten(strips, axis=1)
    samples = np.asarray(ak.to_numpy(flat.samples)).reshape(-1, 3)
    return (
        offsets,
        np.asarray(flat.detector),
        np.asarray(flat.plane),
        np.asarray(flat.strip),
        samples,
    )


def track_residuals(clusters, alignment, *, geometry, field, tracking) -> np.ndarray:
    """Residuals ``measured - fitted`` (mm), shape (n_events, n_stations, 2), NaN where missing.

    Fitted as the alignment does: no outlier removal, no chi2 cut, a 1 mm
    extra seed tolerance, only tracks with both coordinates in every station.
    """
    from recon.tracking import StationLayout, build_space_points, find_and_fit_tracks
    from recon.tracking.space_points import cluster_positions_mm

    layout = StationLayout.from_geometry(
        geometry, offsets_mm=alignment.offsets_mm, resolution_mm=tracking.resolution_mm,
        x_over_X0=tracking.x_over_X0,
    )  # fmt: skip
    pos, err = cluster_positions_mm(clusters, layout)
    points = build_space_points(
        clusters, pos, err, n_stations=layout.n_stations, config=tracking.space_points
    )
    fit_config = replace(
        tracking.fit, chi2ndf_max=np.inf, max_dropped_measurements=0, seed_extra_error_mm=1.0
    )
    fit = find_and_fit_tracks(points, layout, field, fit_config, z_ecal_mm=geometry.ecal.z_front)
    complete = np.isfinite(fit.meas_x).all(axis=1) & np.isfinite(fit.meas_y).all(axis=1)
    good = (fit.found & complete)[:, None]
    res = np.stack([fit.meas_x - fit.pred_x, fit.meas_y - fit.pred_y], axis=2)
    return np.where(good[:, :, None], res, np.nan)


def _residual_summary(res: np.ndarray, names) -> dict:
    """Per station and plane: tracks, median and 68 % half-width of the residuals (mm)."""
    out = {}
    for det, name in enumerate(names):
        for plane in (0, 1):
            v = res[:, det, plane]
            v = v[np.isfinite(v)]
            if v.size == 0:
                continue
            q16, q50, q84 = np.percentile(v, [16, 50, 84])
            out[f"{name}.{'xy'[plane]}"] = {
                "tracks": int(v.size),
                "median_mm": float(q50),
                "half_width_68_mm": float((q84 - q16) / 2),
            }
    return out


def plot_residuals(before: np.ndarray, after: np.ndarray, names, path: Path) -> None:
    """Histograms of the residuals of every station and plane, before and after (mm)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(names), figsize=(3.2 * len(names), 5.6))
    for det, name in enumerate(names):
        for plane in (0, 1):
            ax = axes[plane, det]
            for res, label, style in ((before, "before", "step"), (after, "after", "stepfilled")):
                v = res[:, det, plane]
                v = v[np.isfinite(v)]
                if v.size:
                    ax.hist(
                        v,
                        bins=np.linspace(-1.0, 1.0, 81),
                        histtype=style,
                        alpha=0.6,
                        label=f"{label}: med {np.median(v) * 1e3:+.0f} um",
                    )
            ax.set_title(f"{name} {'XY'[plane]}", fontsize="small")
            ax.set_xlabel("measured - fitted (mm)")
            ax.legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _main(args: argparse.Namespace) -> int:
    from recon.calo.condition_files import ConditionHeader
    from recon.io.tables import write_json
    from recon.tracking import (
        AlignmentConfig,
        cluster_strips,
        derive_alignment,
        load_alignment,
        load_field,
        load_strip_pedestals,
        load_tracking_config,
        write_alignment_condition,
    )

    setup, run = input_identity(args.digits[0], args.setup)
    db = conditions_from_args(args)
    geometry = db.geometry(setup, run)
    field = load_field(db, setup, run)
    tracking = load_tracking_config(db, setup, run)
    initial = load_alignment(db, setup, run, geometry)
    header = ConditionHeader(
        setup=setup, version=args.version, valid_runs=tuple(args.valid_runs),
        description=f"derived by `na64 align` from {', '.join(p.name for p in args.digits)}",
    )  # fmt: skip
    offsets, det, plane, strip, samples = _flat_strips(args.digits, args.max_events)
    n_events = offsets.size - 1
    log.info("aligning on %d events of %d file(s), run %d", n_events, len(args.digits), run)
    clusters = cluster_strips(
        offsets,
        det,
        plane,
        strip,
        samples,
        pedestals=load_strip_pedestals(db, setup, run),
        config=tracking.clustering,
    )
    config = AlignmentConfig(
        beam_momentum_GeV=args.beam_momentum,
        beam_momentum_spread=args.beam_spread,
        reference_stations=tuple(args.reference),
    )
    alignment, report = derive_alignment(
        clusters, geometry=geometry, field=field, tracking=tracking, config=config, initial=initial
    )
    condition = write_alignment_condition(
        args.root / setup / "alignment" / f"{args.version}.json", alignment, setup=setup,
        version=args.version, valid_runs=header.valid_runs, description=header.description,
    )  # fmt: skip
    inputs = {"geometry": geometry, "field": field, "tracking": tracking}
    before = track_residuals(clusters, initial, **inputs)
    after = track_residuals(clusters, alignment, **inputs)
    args.plots.mkdir(parents=True, exist_ok=True)
    figure = args.plots / f"alignment_{args.version}.png"
    plot_residuals(before, after, alignment.names, figure)
    summary = args.plots / f"alignment_{args.version}.summary.json"
    write_json(summary, {
        "setup": setup, "run": run, "version": args.version, "events": int(n_events),
        "inputs": [str(p) for p in args.digits],
        "beam_momentum_GeV": args.beam_momentum, "beam_spread": args.beam_spread,
        "reference_stations": list(args.reference),
        "initial_offsets_mm": initial.as_condition_data()["stations"],
        "offsets_mm": alignment.as_condition_data()["stations"],
        "report": report,
        "residuals_before": _residual_summary(before, alignment.names),
        "residuals_after": _residual_summary(after, alignment.names),
    })  # fmt: skip
    log.info("wrote %s, %s, %s", condition, figure, summary)
    return 0
