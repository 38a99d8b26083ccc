"""``na64 derive KIND DIGITS...``: calibration conditions from pedestal and calibration runs.

Each kind writes ``<root>/<setup>/<kind>/<version>.json`` (a condition file with
the given run range), a plot of its fits and a JSON summary under ``--plots``.
Order of dependence: sadc-pedestals -> pulse-templates -> ecal-calibration,
hcal-calibration, counter-calibration (each later kind reads the earlier ones
through the conditions, so pass the same ``--root`` as a conditions root).
``ecal-calibration --muon-scan MUONS...`` (digits of muons aimed at every ECAL
cell in turn) intercalibrates the preshower cells with their MIP responses.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import awkward as ak
import numpy as np

from recon.calo import derivations
from recon.calo.condition_files import ConditionHeader
from recon.commands.common import add_conditions_options, conditions_from_args
from recon.commands.stage import input_identity
from recon.io.tables import iter_events, read_events

__all__ = ["register"]

log = logging.getLogger("na64.derive")


def run_strip_pedestals(digits, db, run, header, root: Path, plots: Path):
    """APV strip pedestals and noise from a pedestal run (no zero suppression there)."""
    from recon.io.tables import write_json
    from recon.tracking import derive_strip_pedestals, write_strip_pedestals_condition

    strips = ak.flatten(digits.strips, axis=1)
    pedestals = derive_strip_pedestals(
        np.asarray(strips.detector), np.asarray(strips.plane), np.asarray(strips.strip),
        ak.to_numpy(strips.samples), geometry=db.geometry(header.setup, run), n_events=len(digits),
    )  # fmt: skip
    condition = write_strip_pedestals_condition(
        root / header.setup / "strip_pedestals" / f"{header.version}.json", pedestals,
        setup=header.setup, version=header.version, valid_runs=header.valid_runs,
        description=header.description,
    )  # fmt: skip
    plots.mkdir(parents=True, exist_ok=True)
    figure = plots / f"strip_pedestals_{header.version}.png"
    _plot_strip_pedestals(pedestals, figure)
    summary = plots / f"strip_pedestals_{header.version}.summary.json"
    write_json(summary, _strip_summary(pedestals))
    return condition, figure, summary


def _strip_summary(pedestals) -> dict:
    out = {"n_events": pedestals.n_events}
    for det, name in enumerate(pedestals.station_names):
        noise = pedestals.noise_adc[det]
        out[name] = {
            "strips": int(np.count_nonzero(np.isfinite(noise))),
            "pedestal_mean_adc": float(np.nanmean(pedestals.pedestal_adc[det])),
            "noise_mean_adc": float(np.nanmean(noise)),
        }
    return out


def _plot_strip_pedestals(pedestals, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for det, name in enumerate(pedestals.station_names):
        for plane, style in ((0, "-"), (1, ":")):
            label = f"{name} {'XY'[plane]}"
            axes[0].plot(pedestals.pedestal_adc[det, plane], style, lw=0.8, label=label)
            axes[1].plot(pedestals.noise_adc[det, plane], style, lw=0.8)
    axes[0].set_ylabel("pedestal (ADC)")
    axes[1].set_ylabel("noise (ADC)")
    axes[1].set_xlabel("strip")
    axes[0].legend(ncol=4, fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


KINDS = {
    "strip-pedestals": run_strip_pedestals,
    "sadc-pedestals": derivations.run_sadc_pedestals,
    "pulse-templates": derivations.run_pulse_templates,
    "ecal-calibration": derivations.run_ecal_calibration,
    "hcal-calibration": derivations.run_hcal_calibration,
    "counter-calibration": derivations.run_counter_calibration,
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "derive",
        help="derive calibration conditions from calibration runs",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("kind", choices=sorted(KINDS))
    p.add_argument("digits", type=Path, nargs="+", help="digits files of the calibration data")
    p.add_argument(
        "--muons", type=Path, nargs="+", help="digits of a muon run (counter-calibration)"
    )
    p.add_argument(
        "--muon-scan", type=Path, nargs="+",
        help="digits of a muon cell scan (ecal-calibration: MIP intercalibration of the "
             "preshower cells)",
    )
    p.add_argument("--version", required=True, help="version of the condition written")
    p.add_argument("--valid-runs", type=int, nargs=2, required=True, metavar=("FIRST", "LAST"))
    p.add_argument("--root", type=Path, required=True, help="conditions root to write into")
    p.add_argument("--plots", type=Path, required=True, help="directory for the plot and summary")
    p.add_argument("--setup", help="detector setup (default: from the digits' provenance)")
    add_conditions_options(p)
    p.set_defaults(func=_main)


def _on_axis(digits: ak.Array, geometry) -> np.ndarray:
    """Events of an ECAL scan whose shower sits in the cell on the undeflected beam axis.

    A steered beam enters the magnets at an angle, so its synchrotron fan misses the
    SRD; the SRD reference (mean energy of a 100 GeV electron on axis) needs the
    events aimed at the central cell. The shower cell is the main-section channel
    with the largest raw pulse (maximum sample minus the mean of the first four).
    """
    ecal = digits.ecal
    samples = ak.to_numpy(ak.flatten(ecal.samples)).astype(np.float32)
    height = samples.max(axis=1) - samples[:, :4].mean(axis=1)
    height[ak.to_numpy(ak.flatten(ecal.section)) != 1] = -np.inf
    per_event = ak.unflatten(height, ak.num(ecal))
    best = ak.to_numpy(ak.fill_none(ak.argmax(per_event, axis=1), 0))
    first = np.concatenate([[0], np.cumsum(ak.to_numpy(ak.num(ecal)))[:-1]])
    ix = ak.to_numpy(ak.flatten(ecal.ix))[first + best]
    iy = ak.to_numpy(ak.flatten(ecal.iy))[first + best]
    centre = geometry.ecal.centre_index
    return (ix == centre) & (iy == centre) & (ak.to_numpy(ak.num(ecal)) > 0)


# the digits columns a kind reads (None: all); the SADC derivations never read the tracker
# strips, the largest part of a calibration run's digits (peak memory of the large cell scan)
_SADC_COLUMNS = ["run", "spill", "event", "ecal", "hcal", "counters"]
COLUMNS = {kind: (None if kind == "strip-pedestals" else _SADC_COLUMNS) for kind in KINDS}
# the muon cell scan of ecal-calibration: the ECAL (its SADC samples: ~4.6 kB per event) and
# the HCAL (the event time of each muon, ~2.3 kB), streamed chunk by chunk
_MUON_SCAN_COLUMNS = ["run", "spill", "event", "ecal", "hcal"]


def _read(paths: list[Path], columns: list[str] | None = None) -> ak.Array:
    parts = [read_events(p, columns=columns) for p in paths]
    return ak.concatenate(parts) if len(parts) > 1 else parts[0]


def _main(args: argparse.Namespace) -> int:
    if args.muon_scan and args.kind != "ecal-calibration":
        raise SystemExit("na64 derive: --muon-scan applies to ecal-calibration only")
    setup, run = input_identity(args.digits[0], args.setup)
    args.root.mkdir(parents=True, exist_ok=True)
    if args.root not in (args.conditions or []):
        args.conditions = [*(args.conditions or []), args.root]
    db = conditions_from_args(args)
    sources = ", ".join(p.name for p in args.digits)
    header = ConditionHeader(
        setup=setup, version=args.version, valid_runs=tuple(args.valid_runs),
        description=f"derived by `na64 derive {args.kind}` from {sources}",
    )  # fmt: skip
    digits = _read(args.digits, COLUMNS[args.kind])
    log.info("deriving %s %s from %d events of run %d", args.kind, args.version, len(digits), run)
    if args.kind == "counter-calibration":
        if not args.muons:
            raise SystemExit("counter-calibration needs --muons DIGITS")
        electrons = digits[_on_axis(digits, db.geometry(setup, run))]
        log.info("counter scales from %d electrons on the central ECAL cell", len(electrons))
        paths = KINDS[args.kind](
            electrons, _read(args.muons, COLUMNS[args.kind]), db, run, header, args.root,
            args.plots,
        )
    elif args.muon_scan:
        log.info("preshower MIP intercalibration from the muon scan %s",
                 ", ".join(p.name for p in args.muon_scan))
        muons = (chunk for path in args.muon_scan
                 for chunk in iter_events(path, columns=_MUON_SCAN_COLUMNS))
        paths = KINDS[args.kind](digits, db, run, header, args.root, args.plots,
                                 muon_digits=muons)
    else:
        paths = KINDS[args.kind](digits, db, run, header, args.root, args.plots)
    log.info("wrote %s", ", ".join(str(p) for p in paths))
    return 0
