"""``na64 select``: the paper's selection, cut flow, N-1, blinding and both background estimates.

Reads a dataset's event table (``na64 merge``) and, for a simulated dataset, its truth
(``--truth``) and run summaries (``--sim-summary``: the dataset's EOT is the sum of their
``eot``; recorded data give ``--eot``). Applies the criteria (i)-(iv) and the signal box
of :mod:`recon.analysis.selection`, blind unless ``--unblind``
(:mod:`recon.analysis.blinding`), and estimates the box background by simulation
source and by sideband extrapolation (:mod:`recon.analysis.backgrounds`), for the
dataset's EOT and scaled to ``--target-eot``. Writes into ``--output-dir``:
``cutflow.csv``, ``n_minus_one.csv``, ``background_mc.csv`` (Table I of the paper),
``background.json`` and ``selected.parquet`` (events passing (i)-(iv); box events
removed while blind); into ``--plots``: ``fig2_before.png``, ``fig2_after.png``,
``sideband_fits.png``, ``cutflow.png``.

Method 1 reads the simulation truth and therefore counts simulated box events even
while blind: it is the simulation's prediction, the paper's Table I (see
docs/analysis-selection.md). Every other output obeys the blinding.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import asdict
from pathlib import Path

import awkward as ak
import numpy as np

from recon.analysis.backgrounds import SidebandConfig
from recon.analysis.blinding import blinding_state
from recon.analysis.dataset_selection import SelectionOutputs, select_events
from recon.analysis.selection import SelectionConfig
from recon.analysis.selection_plots import write_selection_plots
from recon.classify import ClassifyConfig
from recon.commands.config_options import add_dataclass_options, dataclass_from_args, plain
from recon.commands.merge import attach_weights
from recon.io.tables import read_events, write_events, write_json
from recon.provenance import file_checksum, make_provenance

__all__ = [
    "SELECTION_CUT_OPTIONS",
    "add_selection_options",
    "register",
    "selection_config_from_args",
]

log = logging.getLogger("na64.select")

#: The thresholds of criteria (i), (iii), (iv); the box comes from the classify options.
SELECTION_CUT_OPTIONS = ("theta_in_max_mrad", "shower_chi2_max", "v2_max_GeV")
_TRUTH_COLUMNS = ["run", "spill", "event", "weight", "process", "pileup_pdg"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "select",
        help="selection, cut flow, blinding, backgrounds",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--events", type=Path, required=True, help="a dataset's events.parquet")
    p.add_argument("--truth", type=Path, help="its truth.parquet (simulated datasets)")
    eot = p.add_mutually_exclusive_group(required=True)
    eot.add_argument("--sim-summary", type=Path, nargs="+", help="run*.summary.json (EOT)")
    eot.add_argument("--eot", type=float, help="electrons on target of recorded data")
    p.add_argument("--target-eot", type=float, default=2.75e9, help="projection (paper: 2.75e9)")
    p.add_argument("--unblind", action="store_true", help="open the signal box (logged)")
    p.add_argument("--output-dir", type=Path, required=True)
    p.add_argument("--plots", type=Path, required=True, help="directory of the plots")
    add_selection_options(p)
    add_dataclass_options(p, SidebandConfig, "selection-sideband")
    p.set_defaults(func=_main)


def add_selection_options(p: argparse.ArgumentParser) -> None:
    """The cut thresholds ``--selection-*`` and the box (the ``--classify-*`` options)."""
    add_dataclass_options(p, SelectionConfig, "selection", only=SELECTION_CUT_OPTIONS)
    add_dataclass_options(p, ClassifyConfig, "classify")


def selection_config_from_args(args: argparse.Namespace) -> SelectionConfig:
    """The selection of :func:`add_selection_options`: cuts (i), (iii), (iv) and the box."""
    cuts = {name: getattr(args, f"selection_{name}") for name in SELECTION_CUT_OPTIONS}
    classify = dataclass_from_args(args, ClassifyConfig, "classify")
    return SelectionConfig.with_box_of(classify, **cuts)




def _main(args: argparse.Namespace) -> int:
    cuts = selection_config_from_args(args)
    sidebands = dataclass_from_args(args, SidebandConfig, "selection-sideband")
    events = read_events(args.events)
    inputs = [args.events]
    truth = None
    if args.truth is not None:
        events, matched = attach_weights(events, read_events(args.truth, columns=_TRUTH_COLUMNS))
        truth = {k: np.asarray(matched[k]) for k in ("process", "pileup_pdg")}
        inputs.append(args.truth)
    dataset_eot = _dataset_eot(args)
    inputs += list(args.sim_summary or [])
    blinded = blinding_state(args.unblind)
    columns = {name: ak.to_numpy(events[name]) for name in events.fields}
    out = select_events(
        columns,
        truth,
        selection_config=cuts,
        sideband_config=sidebands,
        dataset_eot=dataset_eot,
        target_eot=args.target_eot,
        blinded=blinded,
    )
    config = {
        "selection": asdict(cuts),
        "sidebands": asdict(sidebands),
        "classify": asdict(dataclass_from_args(args, ClassifyConfig, "classify")),
        "unblind": bool(args.unblind),
    }
    provenance = make_provenance(
        stage="select", config=plain(config), inputs=[(p, file_checksum(p)) for p in inputs]
    )
    _write_outputs(args.output_dir, out, provenance)
    write_selection_plots(args.plots, out, cuts)
    log.info(
        "selected %d events (i)-(iv); blinded=%s; outputs in %s",
        out.summary["selected_events"],
        blinded,
        args.output_dir,
    )
    return 0


def _dataset_eot(args: argparse.Namespace) -> float:
    if args.eot is not None:
        return float(args.eot)
    return float(sum(json.loads(Path(p).read_text())["eot"] for p in args.sim_summary))


def _write_outputs(directory: Path, out: SelectionOutputs, provenance: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    _write_csv(directory / "cutflow.csv", out.cutflow, out.blinded)
    _write_csv(directory / "n_minus_one.csv", out.n_minus_one, out.blinded)
    if out.background_mc is not None:
        _write_csv(directory / "background_mc.csv", out.background_mc, out.blinded)
    else:  # recorded data: no truth, no simulation table
        _write_csv(
            directory / "background_mc.csv", np.zeros(0, dtype=[("source", "U8")]), out.blinded
        )
    write_json(directory / "background.json", plain({**out.summary, "provenance": provenance}))
    selected = ak.zip(
        {k: ak.from_numpy(np.ascontiguousarray(v)) for k, v in out.selected.items()}, depth_limit=1
    )
    write_events(directory / "selected.parquet", [selected], {**provenance, "blinded": out.blinded})


def _write_csv(path: Path, table: np.ndarray, blinded: bool) -> None:
    names = [*list(table.dtype.names), "blinded"]
    lines = [",".join(names)]
    for row in table:
        cells = [_cell(row[name]) for name in table.dtype.names] + [str(blinded).lower()]
        lines.append(",".join(cells))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)


def _cell(value) -> str:
    if isinstance(value, str | np.str_):
        return f'"{value}"' if "," in value else str(value)
    if isinstance(value, np.integer):
        return str(int(value))
    return format(float(value), ".6g")
