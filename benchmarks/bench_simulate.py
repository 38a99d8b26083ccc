"""Benchmark of ``na64 simulate``: triggered events per second on one core, peak memory.

Runs :func:`sim.run.simulate_run` once on a few events (numba compilation,
excluded) and then on ``--events`` triggered events, timing the event
generator separately from digitisation plus writing. ``--source stub`` uses
the test stub generator (``tests/sim/conftest.py``) to measure the digitiser
and writers alone. Prints one JSON document; goal: >= 10k physics events/s.

Wall-clock figures (``seconds``, ``events_per_s``) depend on the load of a
shared machine; the process CPU time (``cpu_seconds``, user + system of this
process, ``time.process_time``) and ``events_per_cpu_s`` do much less. Both
are given for the whole run and for the generator alone (``generator_cpu_seconds``).

    python benchmarks/bench_simulate.py --events 20000 [--kind physics] [--source generator]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recon.conditions import ConditionsDB  # noqa: E402
from sim.run import generator_event_source, simulate_run  # noqa: E402


def _source(kind: str, run: int):
    db = ConditionsDB([REPO / "conditions"])
    geometry = db.geometry("invis2016", run)
    if kind == "stub":
        from tests.sim.conftest import stub_source

        return stub_source(geometry)
    return generator_event_source(geometry, db.data("field", "invis2016", run)[0])


class _TimedSource:
    """Wraps an event source, summing its wall-clock and CPU seconds."""

    def __init__(self, source):
        self.source, self.seconds, self.cpu_seconds, self.beam = source, 0.0, 0.0, 0

    def __call__(self, *args, **kwargs):
        t0, c0 = time.perf_counter(), time.process_time()
        out = self.source(*args, **kwargs)
        self.seconds += time.perf_counter() - t0
        self.cpu_seconds += time.process_time() - c0
        self.beam += args[1]
        return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--kind", default="physics")
    parser.add_argument("--source", choices=["generator", "stub"], default="generator")
    parser.add_argument("--mass-GeV", type=float, default=0.0167)
    args = parser.parse_args(argv)
    run = 1
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        source = _source(args.source, run)
        kwargs = {"mass_GeV": args.mass_GeV if args.kind == "signal" else None,
                  "conditions_roots": [REPO / "conditions"]}
        simulate_run(args.kind, run, 20, 1, out / "warm.raw", out / "warm.parquet",
                     event_source=source, **kwargs)
        timed = _TimedSource(source)
        t0, c0 = time.perf_counter(), time.process_time()
        summary = simulate_run(args.kind, run, args.events, 2, out / "run.raw", out / "run.parquet",
                               event_source=timed, **kwargs)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - c0
        raw_bytes = (out / "run.raw").stat().st_size
    result = {
        "kind": args.kind,
        "source": args.source,
        "events": summary["n_triggered"],
        "beam_particles": summary["n_beam"],
        "seconds": round(elapsed, 3),
        "events_per_s": round(args.events / elapsed),
        "cpu_seconds": round(cpu, 3),
        "events_per_cpu_s": round(args.events / cpu),
        "generator_seconds": round(timed.seconds, 3),
        "generator_cpu_seconds": round(timed.cpu_seconds, 3),
        "digitise_write_events_per_s": round(args.events / max(elapsed - timed.seconds, 1e-9)),
        "digitise_write_events_per_cpu_s": round(args.events / max(cpu - timed.cpu_seconds, 1e-9)),
        "raw_bytes_per_event": round(raw_bytes / args.events),
        "peak_rss_MB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
