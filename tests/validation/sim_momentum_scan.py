"""Fixed-momentum electron runs of the fast simulation, for the tracking resolution scan.

The simulation's beam is 100 GeV (1 % spread, plus a 1 % electron tail over
10-90 GeV), so momenta from 20 to 150 GeV need a modified beam. This uses the
public ``sim`` API only (``sim`` itself is not changed): an event source for
:func:`sim.run.simulate_run` that draws electrons with
:func:`sim.beam.sample_beam` at a chosen momentum and spread (halo off, via
``dataclasses.replace`` of the beam parameters) and gives them the physics
processes of a physics run with :func:`sim.generator.simulate_beam`: every
particle is written (no trigger; a low-momentum electron bent out of S2 would
not trigger the physics trigger) and there is no pile-up. The run is recorded
as kind ``signal`` (the run type and zero suppression of a physics run,
2000 beam particles per block); its nominal A' mass is not used.

``--pileup-window-ns W`` adds a second electron to every event (pile-up
stress sample, see :func:`fixed_momentum_source`).

Usage (writes ``run<R>.na64raw``, ``run<R>.truth.parquet`` per momentum,
``R = first_run + p``)::

    python tests/validation/sim_momentum_scan.py --out /tmp/trkv/scan \\
        --momenta 20 30 40 50 60 70 80 100 120 150 --events 2000 --seed 2016 \\
        --conditions conditions

then ``na64 decode`` and ``na64 track`` each run, and ``na64 validate-track``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

__all__ = ["fixed_momentum_source", "simulate_fixed_momentum_run", "write_true_strip_pedestals"]


def fixed_momentum_source(
    geometry,
    field_data,
    momentum_GeV: float,
    *,
    sigma_p_rel: float = 0.0,
    params=None,
    pileup_window_ns: float | None = None,
):
    """An event source (``sim.run.EventSource``) of electrons at ``momentum_GeV`` (GeV).

    ``sigma_p_rel`` is the relative Gaussian momentum spread (0: monochromatic);
    spot and divergence are the beam's, halo off. Returns ``(TrueEvents, n_beam)``.
    With ``pileup_window_ns``, every event gets a second beam electron (same
    beam) at a time uniform in ``+-pileup_window_ns`` (ns): a pile-up stress
    sample (the physics trigger would reject most in-time pile-up through the
    ECAL sum; here there is no trigger).
    """
    from sim.beam import sample_beam
    from sim.deposits import TrueEvents
    from sim.generator import load_physics_params, simulate_beam

    params = params or load_physics_params()
    beam_params = replace(
        params.beam,
        momentum_GeV=float(momentum_GeV),
        sigma_p_rel=float(sigma_p_rel),
        fraction_halo=0.0,
    )

    def source(kind, n_beam, rng, *, mass_GeV=None, beam_target_xy_mm=None, aprime_counts=None):
        beam = sample_beam(
            n_beam, rng, beam_params, species="electron", momentum_GeV=float(momentum_GeV)
        )
        events = simulate_beam(beam, rng, geometry=geometry, field_data=field_data, params=params)
        if pileup_window_ns is None:
            return events, n_beam
        extra = sample_beam(
            n_beam, rng, beam_params, species="electron", momentum_GeV=float(momentum_GeV)
        )
        second = simulate_beam(extra, rng, geometry=geometry, field_data=field_data, params=params)
        dt = rng.uniform(-pileup_window_ns, pileup_window_ns, n_beam)
        events = TrueEvents(
            pdg=events.pdg,
            process=events.process,
            p_true_GeV=events.p_true_GeV,
            e_aprime_GeV=events.e_aprime_GeV,
            weight=events.weight,
            intime=events.intime,
            pileup=second.intime,
            pileup_dt_ns=dt,
            pileup_pdg=second.pdg.astype(np.int32),
        )
        return events, n_beam

    return source


def simulate_fixed_momentum_run(
    momentum_GeV: float,
    run: int,
    n_events: int,
    seed: int,
    out_dir: str | Path,
    *,
    conditions_roots=("conditions",),
    sigma_p_rel: float = 0.0,
    setup: str = "invis2016",
    pileup_window_ns: float | None = None,
    condition_pins: dict[str, str] | None = None,
    params_path: str | Path | None = None,
) -> dict:
    """Write ``run<run>.na64raw`` and ``run<run>.truth.parquet`` under ``out_dir``; summary.

    The true constants go to ``true_constants_run<run>.json`` beside them;
    ``params_path`` replaces the digitisation parameters (e.g. a copy with more
    APV noise, for a noise stress sample).
    """
    from recon.conditions import ConditionsDB
    from sim.run import simulate_run

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    db = ConditionsDB(list(conditions_roots), pins=condition_pins)
    source = fixed_momentum_source(
        db.geometry(setup, run),
        db.data("field", setup, run)[0],
        momentum_GeV,
        sigma_p_rel=sigma_p_rel,
        pileup_window_ns=pileup_window_ns,
    )
    return simulate_run(
        "signal", run, n_events, seed, out_dir / f"run{run}.na64raw",
        out_dir / f"run{run}.truth.parquet", mass_GeV=0.0167,
        conditions_roots=conditions_roots, condition_pins=condition_pins, setup=setup,
        event_source=source, params_path=params_path,
        true_constants_path=out_dir / f"true_constants_run{run}.json",
        summary_path=out_dir / f"run{run}.summary.json",
    )  # fmt: skip


def write_true_strip_pedestals(
    true_constants_path: str | Path,
    root: str | Path,
    *,
    conditions_roots=("conditions",),
    setup: str = "invis2016",
    version: str = "vtrue",
    run: int = 1,
) -> Path:
    """A ``strip_pedestals`` condition holding the simulation's true APV pedestals and noise.

    Written to ``<root>/<setup>/strip_pedestals/<version>.json`` (all runs valid);
    saves a pedestal run and its derivation in tests. Channels are placed with
    the channel map's APV tables (source -> (plane, strip)).
    """
    import json

    from recon.conditions import ConditionsDB
    from recon.tracking import StripPedestals, write_strip_pedestals_condition
    from recon.tracking.strip_pedestals import STRIP_ABSENT, STRIP_GOOD

    db = ConditionsDB(list(conditions_roots))
    channel_map = db.channel_map(setup, run)
    geometry = db.geometry(setup, run)
    stations = sorted(geometry.trackers.values(), key=lambda s: s.id)
    n_max = max(s.n_strips for s in stations)
    shape = (len(stations), 2, n_max)
    pedestal, noise = np.full(shape, np.nan), np.full(shape, np.nan)
    status = np.full(shape, STRIP_ABSENT, dtype=np.int8)
    doc = json.loads(Path(true_constants_path).read_text())
    for name, group in doc["apv"].items():
        det = geometry.trackers[name].id
        table = channel_map.apv_tables[int(group["source"])]
        plane_strip = table[np.asarray(group["channel"], dtype=np.int64)].astype(np.int64)
        plane, strip = plane_strip[:, 0], plane_strip[:, 1]
        pedestal[det, plane, strip] = group["pedestal_adc"]
        noise[det, plane, strip] = group["noise_adc"]
        status[det, plane, strip] = STRIP_GOOD
    pedestals = StripPedestals(
        station_names=tuple(s.name for s in stations),
        pedestal_adc=pedestal,
        noise_adc=noise,
        status=status,
        n_strips=np.array([s.n_strips for s in stations]),
        n_events=0,
    )
    return write_strip_pedestals_condition(
        Path(root) / setup / "strip_pedestals" / f"{version}.json",
        pedestals,
        setup=setup,
        version=version,
        valid_runs=(0, 4294967295),
        description=f"true APV constants of {Path(true_constants_path).name} (tests)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--momenta", type=float, nargs="+", default=[20, 30, 40, 50, 60, 70, 80, 100, 120, 150]
    )
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=2016)
    parser.add_argument("--first-run", type=int, default=4000)
    parser.add_argument("--conditions", type=Path, action="append")
    parser.add_argument("--digitization-params", type=Path, help="digitisation parameter file")
    parser.add_argument(
        "--pileup-window-ns",
        type=float,
        help="add a pile-up electron to every event, uniform in +-W ns",
    )
    args = parser.parse_args()
    for p in args.momenta:
        run = args.first_run + round(p)
        summary = simulate_fixed_momentum_run(
            p,
            run,
            args.events,
            args.seed,
            args.out,
            conditions_roots=args.conditions or ["conditions"],
            pileup_window_ns=args.pileup_window_ns,
            params_path=args.digitization_params,
        )
        print(f"p = {p:g} GeV: run {run}, {summary['n_events']} events")


if __name__ == "__main__":
    main()
