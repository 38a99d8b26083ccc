"""``na64 limit``: the 90% CL exclusion eps_up(m_A') in pipeline and paper modes.

Inputs: the signal efficiencies of ``na64 signal-efficiency`` (one JSON per A' mass)
and the selection report of ``na64 select`` (the dataset's electrons on target, its
background estimate and, once unblinded, the count in the signal box). Writes to
``--output-dir``:

* ``limit_pipeline.csv``: the dataset's own EOT, count (the expected count while the
  box is blind) and background, with the measured efficiencies;
* ``limit_paper.csv`` (columns ``m_GeV,eps_up``): the paper's 2.75e9 EOT and zero
  events, with the measured efficiencies;
* ``efficiency.csv``, ``yield.csv`` and ``limit.json`` (eps_up at 1, 10, 100 and
  1000 MeV, the g-2 reach of each mode, N90, every input, provenance);

and to ``--plots`` the exclusion region with the g-2 band (Fig. 3 of the paper), the
efficiency factors and the yield against the mass.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
from scipy import stats

from recon.analysis.aprime_yield import aprime_yield_per_eot
from recon.analysis.exclusion import LimitInputs, efficiency_vs_mass, g2_reach_GeV, limit_table
from recon.analysis.exclusion_plots import plot_efficiency, plot_exclusion, plot_yield
from recon.io.tables import write_json
from recon.provenance import file_checksum, make_provenance

__all__ = ["register"]

log = logging.getLogger("na64.limit")

QUOTED_MASSES_GeV = (0.001, 0.01, 0.1, 1.0)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("limit", help="90%% CL exclusion eps_up(m_A'), pipeline and paper",
                              description=__doc__.splitlines()[0])  # fmt: skip
    p.add_argument("--efficiency", type=Path, nargs="+", required=True,
                   help="JSONs of `na64 signal-efficiency`, one per mass")  # fmt: skip
    p.add_argument("--selection", type=Path, required=True,
                   help="background.json of `na64 select`")  # fmt: skip
    p.add_argument("--masses-GeV", type=float, nargs=3, default=(0.001, 1.0, 61),
                   metavar=("MIN", "MAX", "N"), help="log-spaced mass grid")  # fmt: skip
    p.add_argument("--cl", type=float, default=0.90)
    p.add_argument("--yield-rel-unc", type=float, default=0.19,
                   help="relative uncertainty of the A' yield (paper: 19%%)")  # fmt: skip
    p.add_argument("--efficiency-rel-unc", type=float, default=0.13,
                   help="relative systematic of the efficiency, added to its statistical error")
    p.add_argument("--paper-eot", type=float, default=2.75e9)
    p.add_argument("--paper-n-obs", type=int, default=0)
    p.add_argument("--beam-energy-GeV", type=float, default=100.0)
    p.add_argument("--x-min", type=float, default=0.5)
    p.add_argument("--output-dir", type=Path, required=True)
    p.add_argument("--plots", type=Path, required=True, help="directory for the PNG plots")
    p.set_defaults(func=_main)


def _efficiency_rel_unc(points: list[dict], systematic: float) -> float:
    """The efficiency's relative error: its largest statistical one (over masses) (+) syst."""
    stat = max(0.5 * (p["efficiency_high"] - p["efficiency_low"]) / p["efficiency"]
               for p in points if p["efficiency"] > 0)  # fmt: skip
    return float(np.hypot(stat, systematic))


def _pipeline_inputs(report: dict, base: dict) -> tuple[LimitInputs, str]:
    """The dataset's EOT, count and background; the median expected count while blind.

    The background is the data-driven (sideband) estimate of ``na64 select`` where it
    exists, else the simulation's (method 1), else none.
    """
    sidebands, simulated = report["method_sidebands"]["dataset"], report["method_mc"]
    b, b_err = 0.0, 0.0
    if sidebands.get("available"):
        b, b_err = sidebands["central"], float(np.hypot(sidebands["stat"], sidebands["syst"]))
    elif simulated is not None:
        b, b_err = simulated["dataset"]["central"], simulated["dataset"]["stat"]
    if report["blinded"]:
        n_obs, source = int(stats.poisson.median(b)) if b > 0 else 0, "expected (box blind)"
    else:
        n_obs, source = int(report["observed_in_box"]["n"]), "observed"
    inputs = LimitInputs(mode="pipeline", n_eot=float(report["dataset_eot"]), n_obs=n_obs,
                         b=float(b), b_err=float(b_err), **base)  # fmt: skip
    return inputs, source


def _write_csv(path: Path, table: np.ndarray, columns: tuple[str, ...]) -> None:
    rows = [",".join(columns)]
    rows += [",".join(f"{row[c]:.6g}" for c in columns) for row in table]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(rows) + "\n")
    tmp.replace(path)


def _quoted(table: np.ndarray) -> dict[str, float]:
    return {f"{m * 1e3:g} MeV": float(np.interp(np.log(m), np.log(table["m_GeV"]), table["eps_up"]))
            for m in QUOTED_MASSES_GeV}  # fmt: skip


def _yield_models(masses: np.ndarray, options: dict) -> dict[str, np.ndarray]:
    """The default yield (IWW, shower track length) and its two variations."""
    return {
        "IWW, shower e+e- track length (default)": aprime_yield_per_eot(masses, eps=1.0, **options),
        "IWW, primary electron only": aprime_yield_per_eot(
            masses, eps=1.0, track_length="primary", **options
        ),
        "ETL (DMG4 K-factors), shower": aprime_yield_per_eot(
            masses, eps=1.0, cross_section="etl_dmg4", **options
        ),
    }


def _main(args: argparse.Namespace) -> int:
    points = sorted((json.loads(p.read_text()) for p in args.efficiency),
                    key=lambda p: p["mass_GeV"])  # fmt: skip
    report = json.loads(args.selection.read_text())
    efficiency = efficiency_vs_mass([p["mass_GeV"] for p in points],
                                    [p["efficiency"] for p in points])  # fmt: skip
    base = {"yield_rel_unc": args.yield_rel_unc, "cl": args.cl,
            "eff_rel_unc": _efficiency_rel_unc(points, args.efficiency_rel_unc)}
    pipeline, n_obs_source = _pipeline_inputs(report, base)
    paper = LimitInputs(mode="paper", n_eot=args.paper_eot, n_obs=args.paper_n_obs, **base)
    lo, hi, n = args.masses_GeV
    masses = np.geomspace(lo, hi, int(n))
    options = {"E0_GeV": args.beam_energy_GeV, "x_min": args.x_min}
    tables = {inputs.mode: limit_table(masses, inputs, efficiency, **options)
              for inputs in (pipeline, paper)}  # fmt: skip

    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "limit_paper.csv", tables["paper"], ("m_GeV", "eps_up"))
    _write_csv(out / "limit_pipeline.csv", tables["pipeline"],
               ("m_GeV", "eps_up", "efficiency", "yield_per_eot_eps1", "n90"))  # fmt: skip
    _write_csv(out / "yield.csv", tables["paper"], ("m_GeV", "yield_per_eot_eps1"))
    steps = {(p["mass_GeV"], s["name"]): s["value"] for p in points for s in p["steps"]}
    names = [s["name"] for s in points[0]["steps"]]
    eff_rows = np.array([tuple([p["mass_GeV"], p["efficiency"], p["efficiency_low"],
                                p["efficiency_high"]] + [steps[p["mass_GeV"], k] for k in names])
                         for p in points],
                        dtype=[(c, "f8") for c in ("m_GeV", "efficiency", "low", "high", *names)])
    _write_csv(out / "efficiency.csv", eff_rows, eff_rows.dtype.names)

    summary = {
        mode: {
            "inputs": vars(inputs),
            "n90": float(tables[mode]["n90"][0]),
            "eps_up": _quoted(tables[mode]),
            "g2_excluded_up_to_GeV": g2_reach_GeV(masses, tables[mode]["eps_up"]),
        }
        for mode, inputs in (("pipeline", pipeline), ("paper", paper))
    }
    summary["pipeline"]["n_obs_source"] = n_obs_source
    summary["blinded"] = bool(report["blinded"])
    summary["provenance"] = make_provenance(
        stage="limit",
        config={"masses_GeV": list(args.masses_GeV), **options,
                "paper": {"eot": args.paper_eot, "n_obs": args.paper_n_obs},
                "efficiency_rel_unc": args.efficiency_rel_unc, **base},
        inputs=[(p, file_checksum(p)) for p in [*args.efficiency, args.selection]],
    )  # fmt: skip
    write_json(out / "limit.json", summary)

    args.plots.mkdir(parents=True, exist_ok=True)
    plot_exclusion({f"paper inputs ({args.paper_eot:.3g} EOT)": tables["paper"],
                    f"this dataset ({pipeline.n_eot:.3g} EOT)": tables["pipeline"]},
                   args.plots / "exclusion.png")  # fmt: skip
    plot_efficiency(points, args.plots / "efficiency.png")
    plot_yield(masses, _yield_models(masses, options), args.plots / "yield.png")
    for mode in ("paper", "pipeline"):
        quoted = ", ".join(f"{m}: {eps:.3g}" for m, eps in summary[mode]["eps_up"].items())
        reach_MeV = 1e3 * summary[mode]["g2_excluded_up_to_GeV"]
        log.info("%s mode: N90 = %.3f, eps_up (%s), g-2 band excluded up to %.1f MeV",
                 mode, summary[mode]["n90"], quoted, reach_MeV)  # fmt: skip
    return 0
