"""``na64 simulate``: one simulated run (raw file, truth table, true constants, summary).

Registered in the ``na64`` command through the ``na64.stages`` entry point,
so that the reconstruction package never imports the simulation::

    na64 simulate --setup invis2016 --run 1 --kind physics --events 10000 --seed 1 \\
        -o run1.na64raw [--truth run1.truth.parquet] [--summary run1.summary.json] \\
        [--true-constants true_constants.json] [--conditions DIR ...] [--mass-mev 16.7]

An ECAL energy scan (calibration kind, electrons aimed at one cell, one segment per energy)::

    na64 simulate --run 905 --kind calibration --events 12000 --seed 1 -o run905.na64raw \
        --beam-energy-gev 10 20 50 100 --target-cell 3 3

A muon cell scan (mu- aimed at every ECAL cell centre in turn, the preshower MIP
intercalibration)::

    na64 simulate --run 904 --kind hcal_calibration --events 90000 --seed 1 \
        -o run904.na64raw --scan-cells
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from recon.commands.common import add_conditions_options, conditions_from_args
from sim.run import RUN_KINDS, simulate_run

__all__ = ["register", "run_simulate"]

log = logging.getLogger("na64.simulate")


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("simulate", help="simulate a run: raw file plus truth",
                              description=__doc__.splitlines()[0])
    p.add_argument("--setup", default="invis2016")
    p.add_argument("--run", type=int, required=True, help="run number")
    p.add_argument("--kind", choices=list(RUN_KINDS), required=True)
    p.add_argument("--mass-mev", type=float, help="A' mass in MeV (signal runs)")
    p.add_argument("--events", type=int, required=True, help="triggered events to write")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("-o", "--output", type=Path, required=True, help="NA64RAW1 output file")
    p.add_argument("--truth", type=Path, help="truth table (default: OUTPUT.truth.parquet)")
    p.add_argument("--summary", type=Path, help="run summary JSON (default: OUTPUT.summary.json)")
    p.add_argument("--true-constants", type=Path,
                   help="true constants JSON (default: beside the truth, one per seed and setup)")
    p.add_argument("--beam-energy-gev", type=float, nargs="+", metavar="E",
                   help="calibration runs: beam energies in GeV, one segment each (default: the "
                        "nominal beam)")
    p.add_argument("--target-cell", type=int, nargs=2, metavar=("IX", "IY"),
                   help="calibration runs: aim at this ECAL cell only (default: every cell)")
    p.add_argument("--scan-cells", action="store_true",
                   help="muon runs (hcal_calibration): aim at every ECAL cell centre in turn")
    p.add_argument("--batch-size", type=int, default=10_000, help="truth rows per write")
    p.add_argument("--params", type=Path, help="digitisation parameter file (default: shipped)")
    add_conditions_options(p)
    p.set_defaults(func=run_simulate)
    return p


def run_simulate(args: argparse.Namespace) -> int:
    if args.kind == "signal" and args.mass_mev is None:
        raise SystemExit("na64 simulate: --kind signal needs --mass-mev")
    if args.kind != "calibration" and (args.beam_energy_gev or args.target_cell):
        raise SystemExit("na64 simulate: --beam-energy-gev and --target-cell need --kind "
                         "calibration")
    if args.scan_cells and args.kind != "hcal_calibration":
        raise SystemExit("na64 simulate: --scan-cells needs --kind hcal_calibration")
    db = conditions_from_args(args)
    output: Path = args.output
    truth = args.truth or output.with_name(output.name + ".truth.parquet")
    summary = args.summary or output.with_name(output.name + ".summary.json")
    result = simulate_run(
        args.kind, args.run, args.events, args.seed, output, truth,
        mass_GeV=None if args.mass_mev is None else args.mass_mev * 1e-3,
        batch_size=args.batch_size, conditions_roots=db.roots, condition_pins=db.pins,
        true_constants_path=args.true_constants, summary_path=summary, setup=args.setup,
        params_path=args.params, beam_energies_GeV=args.beam_energy_gev,
        target_cell=None if args.target_cell is None else tuple(args.target_cell),
        scan_cells=args.scan_cells,
    )
    log.info("wrote %s, %s and %s (%.4g electrons on target)", output, truth, summary,
             result["eot"])
    return 0
