"""``na64 validate-events``: SRD tag and event classification against simulation truth.

Inputs: merged event tables of ``na64 merge`` (``--events``) and the truth
tables of the same simulated datasets (``--truth``, any order: events are
joined on run, spill and event; an event without truth is an error). The SRD
options (``--srd-*``, as for ``na64 classify``) draw the tag window on the
spectra and are recorded; the tag itself is the ``srd_tag`` column of the
events. Writes the figures of :mod:`recon.validation.events` to
``--output-json`` and the plots (PNG) to ``--plots``. Exit status 0 whether
or not the goals are met (``pass`` fields tell); ``--strict`` returns 1 when
one is missed.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict
from pathlib import Path

from recon.commands.config_options import add_dataclass_options, dataclass_from_args
from recon.io.tables import read_events, write_json
from recon.srd import SrdConfig

__all__ = ["register"]

log = logging.getLogger("na64.validate_events")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "validate-events",
        help="SRD tag and classification validation against sim truth",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--events", type=Path, nargs="+", required=True, help="files of `na64 merge`")
    p.add_argument(
        "--truth", type=Path, nargs="+", required=True, help="truth tables of the same datasets"
    )
    p.add_argument("--output-json", type=Path, required=True)
    p.add_argument("--plots", type=Path, required=True, help="directory for the PNG plots")
    p.add_argument("--confidence-level", type=float, default=0.6827, help="of every interval")
    p.add_argument("--strict", action="store_true", help="exit 1 if a goal is missed")
    add_dataclass_options(p, SrdConfig, "srd")
    p.set_defaults(func=_main)


def _concat(paths: list[Path], columns: list[str]):
    import awkward as ak

    parts = [read_events(p, columns=columns) for p in paths]
    return ak.concatenate(parts) if len(parts) > 1 else parts[0]


def _main(args: argparse.Namespace) -> int:
    import numpy as np

    from recon.validation import events as v

    srd = dataclass_from_args(args, SrdConfig, "srd")
    events = _concat(args.events, v.EVENT_COLUMNS)
    truth = _concat(args.truth, v.TRUTH_COLUMNS)
    table = v.sample_table(events, truth)
    if table["run"].size != len(events):
        raise SystemExit(f"{len(events) - table['run'].size} events have no truth row")
    log.info("validating %d events against truth", table["run"].size)
    acceptance = v.EventAcceptance(confidence_level=args.confidence_level)
    figures = v.validate_events(table, acceptance)
    figures["srd_config"] = asdict(srd)
    figures["inputs"] = {
        "events": [str(p) for p in args.events],
        "truth": [str(p) for p in args.truth],
        "runs": sorted(int(r) for r in np.unique(table["run"])),
    }
    args.plots.mkdir(parents=True, exist_ok=True)
    v.plot_srd_spectra(table, srd, args.plots / "events_validation_srd_spectra.png")
    v.plot_calorimeter_plane(table, args.plots / "events_validation_ecal_hcal_plane.png")
    v.plot_region_fractions(
        figures["classification"], args.plots / "events_validation_region_fractions.png"
    )
    v.plot_momentum_residual(table, args.plots / "events_validation_momentum.png")
    args.output_json.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.output_json, figures)
    srd_figures = figures["srd"]
    log.info(
        "SRD: e- efficiency %.4f, pi- suppression %s (lower end %.3g) -> %s",
        srd_figures["electron_efficiency"]["value"] or float("nan"),
        srd_figures["pion_suppression"]["value"],
        srd_figures["pion_suppression"].get("lower_bound", float("nan")),
        "pass" if figures["pass"] else "FAIL",
    )
    return 1 if args.strict and not figures["pass"] else 0
