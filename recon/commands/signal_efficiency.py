"""``na64 signal-efficiency``: the A' signal efficiency of the selection at one mass.

Inputs: the merged events and truth of a simulated A' dataset (``na64 merge``), the
summaries of its simulation runs (``na64 simulate --summary``: number of A' generated
per energy bin), the A' mass, and the selection thresholds of ``na64 select``. Writes a
JSON with the efficiency factors of :mod:`recon.analysis.signal_efficiency` (acceptance,
analysis cuts, V2, HCAL, ECAL), their product with a 68% interval, and provenance.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict
from pathlib import Path

import awkward as ak
import numpy as np

from recon.analysis.selection import paper_selection
from recon.analysis.signal_efficiency import SignalWindow, efficiency_breakdown, generated_in_window
from recon.classify import ClassifyConfig
from recon.commands.config_options import dataclass_from_args
from recon.commands.select import add_selection_options, selection_config_from_args
from recon.io.tables import read_events, write_json
from recon.provenance import file_checksum, make_provenance

__all__ = ["register"]

log = logging.getLogger("na64.signal_efficiency")

_KEYS = ("run", "spill", "event")
_TRUTH_COLUMNS = [*_KEYS, "e_aprime_GeV", "pileup_pdg"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "signal-efficiency",
        help="A' signal efficiency of the selection at one mass",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--events", type=Path, required=True, help="merged events of an A' dataset")
    p.add_argument("--truth", type=Path, required=True, help="its merged truth")
    p.add_argument("--sim-summary", type=Path, nargs="+", required=True,
                   help="summaries of the dataset's simulation runs")  # fmt: skip
    p.add_argument("--mass-GeV", type=float, required=True, help="A' mass of the dataset")
    p.add_argument("--x-min", type=float, default=0.5,
                   help="signal window x_min E0 < E_A' < E0 of the yield")  # fmt: skip
    add_selection_options(p)
    p.add_argument("-o", "--output", type=Path, required=True, help="efficiency JSON")
    p.set_defaults(func=_main)


def _generated(summaries: list[Path], window: SignalWindow) -> float:
    total = 0.0
    for path in summaries:
        summary = json.loads(path.read_text())
        if "aprime_generated" not in summary:
            raise SystemExit(f"{path}: no 'aprime_generated' histogram: not an A' simulation")
        total += generated_in_window(summary["aprime_generated"], window)
    return total


def _main(args: argparse.Namespace) -> int:
    events = read_events(args.events)
    truth = ak.from_parquet(args.truth, columns=_TRUTH_COLUMNS)
    for key in _KEYS:
        if not np.array_equal(np.asarray(events[key]), np.asarray(truth[key])):
            raise SystemExit(f"{args.truth}: rows not in the order of {args.events} ({key!r})")
    config = selection_config_from_args(args)
    beam = dataclass_from_args(args, ClassifyConfig, "classify").beam_energy_GeV
    window = SignalWindow(beam_energy_GeV=beam, x_min=args.x_min)
    columns = {name: np.asarray(events[name]) for name in events.fields}
    result = efficiency_breakdown(
        paper_selection(columns, config),
        e_aprime_GeV=np.asarray(truth["e_aprime_GeV"]),
        track_ok=np.asarray(events["track_ok"], bool),
        pileup=np.asarray(truth["pileup_pdg"]) != 0,
        n_generated_in_window=_generated(args.sim_summary, window),
        window=window,
    )
    inputs = [args.events, args.truth, *args.sim_summary]
    result = {
        "mass_GeV": args.mass_GeV,
        "window_GeV": [window.x_min * window.beam_energy_GeV, window.beam_energy_GeV],
        **result,
        "provenance": make_provenance(
            stage="signal-efficiency",
            config={"mass_GeV": args.mass_GeV, "x_min": args.x_min, "beam_energy_GeV": beam,
                    "selection": asdict(config)},
            inputs=[(p, file_checksum(p)) for p in inputs],
        ),
    }
    write_json(args.output, result)
    log.info("m_A' = %.4g GeV: efficiency %.3f (+%.3f -%.3f), %d selected of %.0f generated",
             args.mass_GeV, result["efficiency"], result["efficiency_high"] - result["efficiency"],
             result["efficiency"] - result["efficiency_low"], result["n_selected"],
             result["n_generated_in_window"])  # fmt: skip
    return 0
