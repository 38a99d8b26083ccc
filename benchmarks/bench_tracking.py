"""Benchmark of the tracking stage (clustering + space points + fit) on synthetic or sim events.

Usage::

    python benchmarks/bench_tracking.py [--events 50000] [--scan]
    python benchmarks/bench_tracking.py --digits d.parquet [--truth run.truth.parquet] \
        --conditions conditions --conditions derived --pin strip_pedestals=v1

Generates single 100 GeV beam electrons with the test generator
(``tests/tracking/synthetic_tracker_events.py``: charge sharing, APV pulses,
noise, 95 % plane efficiency, multiple scattering), then tracks them in a
child process and reports CPU time per stage (events/s on one core) and the
child's resident memory before tracking and at its peak. ``--scan`` adds
the momentum resolution from 20 to 150 GeV. ``--digits`` benchmarks decoded
events of the fast simulation instead (``na64 decode`` output; strip pedestals,
geometry, field and tracking parameters from ``--conditions``/``--pin``, as
``na64 track``); ``--truth`` adds efficiency and resolution against the truth.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "tracking"))

from synthetic_tracker_events import (  # noqa: E402
    digitize,
    generate_tracks,
    make_pedestal_table,
)

from recon.conditions import ConditionsDB  # noqa: E402
from recon.tracking import (  # noqa: E402
    StationLayout,
    build_space_points,
    cluster_strips,
    find_and_fit_tracks,
    load_field,
    load_tracking_config,
    track_events,
)
from recon.tracking.space_points import cluster_positions_mm  # noqa: E402
from recon.tracking.track_stage import track_columns  # noqa: E402


def _memory_mb(field: str) -> float:
    """``VmHWM`` (peak) or ``VmRSS`` of this process from /proc, in MB (reset at exec,
    unlike ``getrusage``, which reports the parent's peak after a fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1]) / 1024
    return float("nan")


def _setup():
    db = ConditionsDB([REPO / "conditions"])
    geometry = db.geometry("invis2016", 1)
    field_data = db.data("field", "invis2016", 1)[0]
    tracking = load_tracking_config(db, "invis2016", 1)
    return geometry, field_data, load_field(db, "invis2016", 1), tracking


def _generate(n: int, path: Path, seed: int = 1) -> None:
    geometry, field_data, _, _ = _setup()
    rng = np.random.default_rng(seed)
    pedestals = make_pedestal_table(geometry, np.random.default_rng(20160))
    truth = generate_tracks(n, geometry, field_data, rng)
    strips = digitize([(truth, 0.0)], n, geometry, pedestals, rng)
    np.savez(
        path,
        offsets=strips.event_offsets,
        detector=strips.detector,
        plane=strips.plane,
        strip=strips.strip,
        samples=strips.samples,
        p_GeV=truth.p_GeV,
    )


def _sim_inputs(spec: dict):
    """Geometry, field, tracking configuration and strip pedestals as ``na64 track`` finds them."""
    from recon.tracking import load_strip_pedestals

    db = ConditionsDB([Path(r) for r in spec["conditions"]], pins=spec["pins"])
    setup, run = spec["setup"], spec["run"]
    geometry = db.geometry(setup, run)
    return (
        geometry,
        load_field(db, setup, run),
        load_tracking_config(db, setup, run),
        load_strip_pedestals(db, setup, run),
    )


def _convert_digits(digits: Path, truth: Path | None, path: Path) -> dict:
    """Flat strip arrays of a decoded file (and the true momenta) into ``path`` (npz)."""
    import awkward as ak

    from recon.commands.stage import input_identity
    from recon.io.tables import read_events

    setup, run = input_identity(digits)
    events = read_events(digits, columns=["run", "spill", "event", "strips"])
    counts = np.asarray(ak.num(events.strips, axis=1), dtype=np.int64)
    flat = ak.flatten(events.strips, axis=1)
    p_GeV = np.full(len(events), np.nan)
    if truth is not None:
        from recon.validation.tracking import join_events

        t = read_events(truth, columns=["run", "spill", "event", "p_true_GeV", "pdg", "pileup_pdg"])
        i_e, i_t = join_events(events, t)
        single = (np.asarray(t.pdg)[i_t] == 11) & (np.asarray(t.pileup_pdg)[i_t] == 0)
        p_GeV[i_e[single]] = np.asarray(t.p_true_GeV)[i_t[single]]
    np.savez(
        path,
        offsets=np.concatenate(([0], np.cumsum(counts))),
        detector=np.asarray(flat.detector),
        plane=np.asarray(flat.plane),
        strip=np.asarray(flat.strip),
        samples=np.asarray(ak.to_numpy(flat.samples)).reshape(-1, 3),
        p_GeV=p_GeV,
    )
    return {"setup": setup, "run": run}


def _track(path: Path, sim_spec: dict | None = None) -> dict:
    if sim_spec is None:
        geometry, _, field, config = _setup()
        pedestals = make_pedestal_table(geometry, np.random.default_rng(20160))
    else:
        geometry, field, config, pedestals = _sim_inputs(sim_spec)
    data = np.load(path)
    offsets, det, plane, strip, samples = (
        data[k] for k in ("offsets", "detector", "plane", "strip", "samples")
    )
    n = offsets.size - 1
    layout = StationLayout.from_geometry(
        geometry, offsets_mm=None, resolution_mm=config.resolution_mm, x_over_X0=config.x_over_X0
    )
    warm = offsets[:101]
    track_events(
        warm,
        det,
        plane,
        strip,
        samples,
        geometry=geometry,
        field=field,
        pedestals=pedestals,
        alignment=None,
        config=config,
    )  # compile or load cache
    rss_before_mb = _memory_mb("VmRSS")
    cpu = {}
    t0 = time.process_time()
    clusters = cluster_strips(
        offsets, det, plane, strip, samples, pedestals=pedestals, config=config.clustering
    )
    t1 = time.process_time()
    pos, err = cluster_positions_mm(clusters, layout)
    points = build_space_points(
        clusters, pos, err, n_stations=layout.n_stations, config=config.space_points
    )
    t2 = time.process_time()
    fit = find_and_fit_tracks(points, layout, field, config.fit, z_ecal_mm=geometry.ecal.z_front)
    columns = track_columns(fit, config.fit)
    t3 = time.process_time()
    cpu = {"clustering": t1 - t0, "space_points": t2 - t1, "fit": t3 - t2, "total": t3 - t0}
    ok = columns["track_ok"]
    has_truth = np.isfinite(data["p_GeV"])
    rel = columns["p_track_GeV"][ok & has_truth] / data["p_GeV"][ok & has_truth] - 1.0
    cpu["clustering_plus_fit"] = cpu["total"]
    return {
        "input": "synthetic" if sim_spec is None else "simulation digits",
        "events": n,
        "strips_per_event": det.size / n,
        "cpu_s": cpu,
        "events_per_s_per_core": {k: n / v for k, v in cpu.items()},
        "peak_rss_mb": _memory_mb("VmHWM"),
        "rss_before_tracking_mb": rss_before_mb,
        "efficiency": float(ok[has_truth].mean()) if has_truth.any() else float(ok.mean()),
        "sigma_p_over_p_core": float(1.4826 * np.median(np.abs(rel - np.median(rel)))),
        "bias": float(np.median(rel)),
    }


def _scan(momenta=(20, 40, 60, 70, 80, 100, 120, 150), n=2000) -> list[dict]:
    geometry, field_data, field, config = _setup()
    pedestals = make_pedestal_table(geometry, np.random.default_rng(20160))
    rows = []
    for p in momenta:
        rng = np.random.default_rng(p)
        truth = generate_tracks(n, geometry, field_data, rng, p_GeV=float(p), p_spread=0.0)
        strips = digitize([(truth, 0.0)], n, geometry, pedestals, rng)
        cols = track_events(
            strips.event_offsets,
            strips.detector,
            strips.plane,
            strips.strip,
            strips.samples,
            geometry=geometry,
            field=field,
            pedestals=pedestals,
            alignment=None,
            config=config,
        )
        ok = cols["track_ok"]
        rel = cols["p_track_GeV"][ok] / p - 1.0
        core = 1.4826 * np.median(np.abs(rel - np.median(rel))) if ok.sum() > 20 else np.nan
        rows.append(
            {
                "p_GeV": p,
                "efficiency": float(ok.mean()),
                "sigma_p_over_p": float(core),
                "bias": float(np.median(rel)) if ok.sum() > 20 else np.nan,
                "mean_fit_error": float(np.median(cols["p_track_err_GeV"][ok]) / p)
                if ok.any()
                else np.nan,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--scan", action="store_true")
    parser.add_argument("--digits", type=Path, help="decoded simulation run (na64 decode)")
    parser.add_argument("--truth", type=Path, help="its truth table (efficiency, resolution)")
    parser.add_argument("--conditions", type=Path, action="append", help="conditions roots")
    parser.add_argument("--pin", action="append", default=[], metavar="KIND=VERSION")
    parser.add_argument("--track", type=Path, help=argparse.SUPPRESS)  # child process
    parser.add_argument("--sim-spec", help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.track:
        spec = json.loads(args.sim_spec) if args.sim_spec else None
        print(json.dumps(_track(args.track, spec)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "strips.npz"
        t0 = time.perf_counter()
        extra = []
        if args.digits:
            spec = _convert_digits(args.digits, args.truth, path)
            spec["conditions"] = [
                str(p.resolve()) for p in (args.conditions or [REPO / "conditions"])
            ]
            spec["pins"] = dict(item.split("=", 1) for item in args.pin)
            extra = ["--sim-spec", json.dumps(spec)]
            print(f"read {args.digits} in {time.perf_counter() - t0:.1f} s")
        else:
            _generate(args.events, path)
            print(f"generated {args.events} events in {time.perf_counter() - t0:.1f} s")
        child = subprocess.run(
            [sys.executable, __file__, "--track", str(path), *extra],
            check=True,
            capture_output=True,
            text=True,
        )
        print(json.dumps(json.loads(child.stdout.strip().splitlines()[-1]), indent=1))
    if args.scan:
        for row in _scan():
            print(row)


if __name__ == "__main__":
    main()
