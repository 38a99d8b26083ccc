"""Benchmark of the tracking stage (clustering + space points + fit) on synthetic events.

Usage::

    python benchmarks/bench_tracking.py [--events 50000] [--scan]

Generates single 100 GeV beam electrons with the test generator
(``tests/tracking/synthetic_tracker_events.py``: charge sharing, APV pulses,
noise, 95 % plane efficiency, multiple scattering), then tracks them in a
child process and reports CPU time per stage (events/s on one core) and the
child's resident memory before tracking and at its peak. ``--scan`` adds
the momentum resolution from 20 to 150 GeV.
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


def _track(path: Path) -> dict:
    geometry, _, field, config = _setup()
    pedestals = make_pedestal_table(geometry, np.random.default_rng(20160))
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
    rel = columns["p_track_GeV"][ok] / data["p_GeV"][ok] - 1.0
    return {
        "events": n,
        "strips_per_event": det.size / n,
        "cpu_s": cpu,
        "events_per_s_per_core": {k: n / v for k, v in cpu.items()},
        "peak_rss_mb": _memory_mb("VmHWM"),
        "rss_before_tracking_mb": rss_before_mb,
        "efficiency": float(ok.mean()),
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
    parser.add_argument("--track", type=Path, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.track:
        print(json.dumps(_track(args.track)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "strips.npz"
        t0 = time.perf_counter()
        _generate(args.events, path)
        print(f"generated {args.events} events in {time.perf_counter() - t0:.1f} s")
        child = subprocess.run(
            [sys.executable, __file__, "--track", str(path)],
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
