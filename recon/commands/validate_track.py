"""``na64 validate-track``: tracks of ``na64 track`` against simulation truth.

Inputs: track files (``--tracks``), the truth tables of ``na64 simulate`` for
the same runs (``--truth``, any order: events are matched by run, spill and
event) and optionally calo files of ``na64 calo`` (``--calo``, for the
impact point against the ECAL shower centre). Optionally the alignment
closure: ``--alignment`` a derived alignment condition file (``na64 align``)
and ``--true-geometry`` the geometry condition file the simulation ran with;
the nominal geometry comes from the conditions. Writes every acceptance
figure of the tracking (docs/tracking.md, "Validation on the simulation") to
``--output-json`` and the plots (PNG) to ``--plots``. Exit status 0 whether
or not the goals are met (``pass`` fields tell); ``--strict`` returns 1 when
one is missed.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from recon.commands.common import add_conditions_options, conditions_from_args
from recon.commands.stage import input_identity
from recon.io.tables import read_events, write_json

__all__ = ["register"]

log = logging.getLogger("na64.validate_track")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "validate-track",
        help="tracking validation against sim truth",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--tracks", type=Path, nargs="+", required=True, help="files of `na64 track`")
    p.add_argument(
        "--truth",
        type=Path,
        nargs="+",
        required=True,
        help="truth tables of `na64 simulate` for the same runs",
    )
    p.add_argument("--calo", type=Path, nargs="+", default=[], help="files of `na64 calo`")
    p.add_argument("--alignment", type=Path, help="derived alignment condition (`na64 align`)")
    p.add_argument(
        "--true-geometry",
        type=Path,
        help="geometry condition file the simulation ran with (alignment closure)",
    )
    p.add_argument("--output-json", type=Path, required=True)
    p.add_argument("--plots", type=Path, required=True, help="directory for the PNG plots")
    p.add_argument("--setup", help="detector setup (default: from the tracks' provenance)")
    p.add_argument("--strict", action="store_true", help="exit 1 if a goal is missed")
    add_conditions_options(p)
    p.set_defaults(func=_main)


def _concat(paths: list[Path], columns: list[str]):
    import awkward as ak

    parts = [read_events(p, columns=columns) for p in paths]
    return ak.concatenate(parts) if len(parts) > 1 else parts[0]


def _alignment_closure(args, setup: str, run: int, acceptance) -> dict:
    import yaml

    from recon.conditions.geometry import Geometry
    from recon.tracking.alignment import alignment_from_condition
    from recon.validation.tracking import alignment_closure, injected_offsets

    db = conditions_from_args(args)
    nominal = db.geometry(setup, run)
    true_doc = yaml.safe_load(args.true_geometry.read_text())
    true_geometry = Geometry.from_data(true_doc["data"])
    names, injected = injected_offsets(true_geometry, nominal)
    derived_doc = yaml.safe_load(args.alignment.read_text())  # YAML reads the JSON files too
    derived = alignment_from_condition(derived_doc["data"], nominal)
    out = alignment_closure(derived.offsets_mm, injected, names, acceptance.alignment_tolerance_mm)
    out["derived_condition"] = str(args.alignment)
    out["true_geometry"] = str(args.true_geometry)
    return out


def _main(args: argparse.Namespace) -> int:
    import numpy as np

    from recon.validation import tracking as v

    setup, run = input_identity(args.tracks[0], args.setup)
    tracks = _concat(args.tracks, v.TRACK_COLUMNS)
    truth = _concat(args.truth, v.TRUTH_COLUMNS)
    calo = _concat(args.calo, v.CALO_COLUMNS) if args.calo else None
    table = v.sample_table(tracks, truth, calo)
    if table["p_true_GeV"].size == 0:
        raise SystemExit("the track and truth files share no events")
    log.info(
        "validating %d tracked events against truth (%d calo files)",
        table["run"].size,
        len(args.calo),
    )
    acceptance = v.TrackAcceptance()
    result = v.validate_tracking(table, acceptance)
    figures, arrays = result["figures"], result["arrays"]
    if (args.alignment is None) != (args.true_geometry is None):
        raise SystemExit("--alignment and --true-geometry go together")
    if args.alignment is not None:
        figures["alignment"] = _alignment_closure(args, setup, run, acceptance)
        figures["pass_by_goal"]["alignment"] = figures["alignment"]["pass"]
        figures["pass"] = bool(all(figures["pass_by_goal"].values()))
    figures["inputs"] = {
        "setup": setup,
        "tracks": [str(p) for p in args.tracks],
        "truth": [str(p) for p in args.truth],
        "calo": [str(p) for p in args.calo],
        "runs": sorted(int(r) for r in np.unique(table["run"])),
    }
    args.plots.mkdir(parents=True, exist_ok=True)
    v.plot_resolution_vs_momentum(
        figures["by_momentum"],
        args.plots / "track_validation_resolution_vs_p.png",
        goal=acceptance.resolution_goal,
    )
    v.plot_momentum(
        arrays["residual_ref"], arrays["pull_ref"], args.plots / "track_validation_momentum.png"
    )
    if calo is not None:
        v.plot_impact(*arrays["impact"], args.plots / "track_validation_impact.png")
    v.plot_pileup(figures["pileup"], args.plots / "track_validation_pileup.png")
    args.output_json.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.output_json, figures)
    log.info(
        "tracking validation: %s -> %s", "pass" if figures["pass"] else "FAIL", args.output_json
    )
    return 1 if args.strict and not figures["pass"] else 0
