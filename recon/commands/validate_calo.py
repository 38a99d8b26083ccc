"""``na64 validate-calo``: derived calorimeter conditions and calo output vs simulation truth.

Reads the derived conditions through the usual conditions options (``--conditions
DIR ... --pin KIND=VERSION ...``, as every stage command, so per-kind versions such
as ``calibration.versions: {ecal_calibration: v2}`` are validated as configured;
``--derived ROOT`` adds a conditions root and ``--version V`` pins every calorimetry
kind that no ``--pin`` names), the simulation's true-constants JSON and, per run, a
calo file of ``na64 calo`` with its truth table of ``na64 simulate`` (``--scan``
ECAL cell scan, ``--muons`` muon run, ``--signal``/``--physics`` runs with electron
showers, ``--energy-scan`` electrons at several beam energies aimed at one cell:
then the resolution and linearity acceptance). Writes every acceptance figure of the
calorimetry (docs/calorimetry.md, section "Validation") to ``--output-json`` and the
plots to ``--plots``. Exit status 0 whether or not the goals are met (``pass``
fields tell); ``--strict`` returns 1 when one is missed.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pyarrow.parquet as pq

from recon.calo.pulse_template import load_pulse_templates
from recon.calo.sadc_channels import GROUPS, SadcLayout
from recon.calo.sadc_pedestals import load_sadc_pedestals
from recon.calo.waveform import SadcTiming
from recon.commands.common import add_conditions_options, conditions_from_args
from recon.commands.stage import input_identity
from recon.io.tables import format_of, read_events, write_json

__all__ = ["register"]

log = logging.getLogger("na64.validate_calo")

_KINDS = ("sadc_pedestals", "pulse_template", "ecal_calibration", "hcal_calibration",
          "counter_calibration")
_TRUTH_COLUMNS = ["run", "spill", "event", "pdg", "process", "p_true_GeV", "e_aprime_GeV",
                  "e_ecal_true_GeV", "e_hcal_true_GeV", "e_ecal_pileup_true_GeV",
                  "ecal_true_GeV", "hcal_true_GeV", "t_event_jitter_ns", "segment"]
_CALO_COLUMNS = ["run", "spill", "event", "e_ecal_GeV", "e_ecal_shower_GeV", "ecal_pileup",
                 "e_hcal_module_GeV", "ecal_max_ix", "ecal_max_iy", "ecal_cells"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("validate-calo", help="calorimetry validation against sim truth",
                              description=__doc__.splitlines()[0])
    p.add_argument("--derived", type=Path, help="root of the derived conditions (added to "
                   "--conditions)")
    p.add_argument("--version", help="version of every calorimetry kind not pinned by --pin")
    p.add_argument("--true-constants", type=Path, required=True, help="sim true-constants JSON")
    pair = {"nargs": 2, "type": Path, "metavar": ("CALO", "TRUTH")}
    p.add_argument("--scan", required=True, help="ECAL cell-scan run", **pair)
    p.add_argument("--muons", help="muon run (HCAL MIP peak)", **pair)
    p.add_argument("--signal", action="append", default=[], help="electron runs (repeatable)",
                   **pair)
    p.add_argument("--physics", action="append", default=[], help="physics runs (repeatable)",
                   **pair)
    p.add_argument("--energy-scan", action="append", default=[],
                   help="ECAL energy-scan runs (repeatable): resolution and linearity", **pair)
    p.add_argument("--output-json", type=Path, required=True)
    p.add_argument("--plots", type=Path, required=True, help="directory for the PNG plots")
    p.add_argument("--setup", help="detector setup (default: from the scan's provenance)")
    p.add_argument("--strict", action="store_true", help="exit 1 if a goal is missed")
    add_conditions_options(p)
    p.set_defaults(func=_main)


def _with_derived(args: argparse.Namespace) -> argparse.Namespace:
    """The conditions options with ``--derived`` as a root and ``--version`` as the pin of every
    calorimetry kind that no explicit ``--pin`` names (explicit per-kind pins win)."""
    pinned = {item.partition("=")[0] for item in args.pin}
    extra_roots = [args.derived] if args.derived is not None else []
    extra_pins = ([f"{kind}={args.version}" for kind in _KINDS if kind not in pinned]
                  if args.version else [])
    return argparse.Namespace(**{**vars(args),
                                 "conditions": [*(args.conditions or []), *extra_roots] or None,
                                 "pin": [*args.pin, *extra_pins]})


def _calo_columns(path: Path) -> list[str]:
    """The columns to read: calo files older than ``e_ecal_shower_GeV`` lack it."""
    if format_of(path) != "parquet":
        return _CALO_COLUMNS
    present = set(pq.read_schema(path).names)
    return [c for c in _CALO_COLUMNS if c in present]


def _sample(name: str, pair: list[Path]):
    from recon.validation.calorimetry import EventSample, join_truth

    calo = read_events(pair[0], columns=_calo_columns(pair[0]))
    truth = read_events(pair[1], columns=_TRUTH_COLUMNS)
    i_calo, i_truth = join_truth(calo, truth)
    if i_calo.size == 0:
        raise SystemExit(f"{pair[0]} and {pair[1]} share no events")
    return EventSample(name, calo[i_calo], truth[i_truth])


def _main(args: argparse.Namespace) -> int:
    from recon.validation import calorimetry as v

    setup, run = input_identity(args.scan[0], args.setup)
    options = _with_derived(args)
    db = conditions_from_args(options)
    geometry = db.geometry(setup, run)
    layout = SadcLayout.from_geometry(geometry)
    timing = SadcTiming.from_daq(db.data("daq", setup, run)[0])
    templates = load_pulse_templates(db, setup, run)
    ecal_gain = db.data("ecal_calibration", setup, run)[0]["gain_GeV_per_adc"]
    hcal_gain = db.data("hcal_calibration", setup, run)[0]["gain_GeV_per_adc"]
    true = v.read_true_sadc_constants(args.true_constants, db.channel_map(setup, run), layout)
    scan = _sample("scan", args.scan)
    showers = [scan, *(_sample(f"signal{i}", p) for i, p in enumerate(args.signal)),
               *(_sample(f"physics{i}", p) for i, p in enumerate(args.physics))]
    energy_scan = [_sample(f"energy_scan{i}", p) for i, p in enumerate(args.energy_scan)]
    import numpy as np

    result = v.validate_calorimetry(
        true=true, pedestals=load_sadc_pedestals(db, setup, run),
        ecal_gain=np.asarray(ecal_gain, dtype=np.float64),
        hcal_gain=np.asarray(hcal_gain, dtype=np.float64), shapes=templates.shapes,
        template_rows={g: templates.rows(g, layout.size(g))
                       for g in GROUPS if g in templates.names},
        timing=timing, scan=scan, muons=_sample("muons", args.muons) if args.muons else None,
        showers=showers, ecal_shape=layout.ecal, energy_scan=energy_scan)
    figures, arrays = result["figures"], result["arrays"]
    figures["inputs"] = {"conditions": [str(r) for r in options.conditions or []],
                         "versions": {kind: db.data(kind, setup, run)[1].version
                                      for kind in _KINDS},
                         "setup": setup,
                         "true_constants": str(args.true_constants),
                         "runs": {s.name: int(np.asarray(s.calo.run)[0])
                                  for s in (*showers, *energy_scan)}}
    args.plots.mkdir(parents=True, exist_ok=True)
    v.plot_pedestals(arrays["pedestal_diff"], args.plots / "calo_validation_pedestals.png")
    v.plot_closure(arrays["closure"], args.plots / "calo_validation_closure.png")
    v.plot_linearity_resolution(arrays["linearity"], arrays["resolution"],
                                arrays["resolution_fit"],
                                args.plots / "calo_validation_linearity_resolution.png")
    if "energy_scan" in arrays:
        scan_response = arrays["energy_scan"]["response"]
        v.plot_linearity_resolution(scan_response, scan_response, arrays["energy_scan"]["fit"],
                                    args.plots / "calo_validation_energy_scan.png")
    if "mip" in arrays:
        v.plot_mip_peaks(*arrays["mip"], args.plots / "calo_validation_hcal_mip.png")
    args.output_json.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.output_json, figures)
    log.info("calorimetry validation: %s -> %s", "pass" if figures["pass"] else "FAIL",
             args.output_json)
    return 1 if args.strict and not figures["pass"] else 0
