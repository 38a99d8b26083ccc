"""Benchmark of `na64 decode`: MB/s, events/s and peak memory on large raw files.

Writes synthetic raw files of realistic event size (every SADC channel with a
pedestal-like waveform, about 40 APV strips per event), then decodes each one
into Parquet in a fresh process, several times, and reports the median.
Peak memory is measured for two file sizes to show that it does not grow
with the file.

    python benchmarks/bench_decode.py                  # 256 MB and 1 GB files
    python benchmarks/bench_decode.py --sizes-mb 1024  # your own sizes
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def synthetic_batch(rng: np.random.Generator, n: int):
    """Events with the channel content of invis2016 physics triggers."""
    from recon.io.rawformat import Block, BlockType, EventBatch

    event = np.arange(n)
    blocks = []
    for source, n_ch in ((16, 72), (17, 36), (18, 11)):
        idx = np.repeat(event, n_ch)
        pedestal = rng.integers(100, 300, size=(idx.size, 1))
        samples = pedestal + rng.integers(-3, 4, size=(idx.size, 32))
        blocks.append(Block(source, BlockType.SADC, idx, np.tile(np.arange(n_ch), n), samples))
    for source, n_strips in ((32, 320), (33, 320), (34, 256), (35, 256)):
        per_event = rng.poisson(10, size=n)
        idx = np.repeat(event, per_event)
        channel = rng.integers(0, 2, size=idx.size) * 512 + rng.integers(0, n_strips, size=idx.size)
        samples = rng.integers(200, 1500, size=(idx.size, 3))
        blocks.append(Block(source, BlockType.APV, idx, channel, samples))
    return EventBatch(
        spill=np.ones(n, np.uint32),
        event=event.astype(np.uint32),
        trigger_time_ns=(event * 1000).astype(np.uint64),
        trigger_mask=np.ones(n, np.uint32),
        blocks=blocks,
    )


def make_raw(path: Path, size_mb: float, seed: int = 1) -> Path:
    from recon.io.rawformat import FileHeader, RunType
    from recon.io.rawwriter import RawWriter

    if path.exists() and path.stat().st_size >= size_mb * 1e6:
        return path
    rng = np.random.default_rng(seed)
    header = FileHeader(run=1, run_type=RunType.PHYSICS, setup="invis2016", simulated=True)
    with RawWriter(path, header) as writer:
        while writer._fh.tell() < size_mb * 1e6:
            writer.write(synthetic_batch(rng, 2000))
    return path


def child(raw: Path, out: Path, warmup: Path) -> None:
    """One measured decode, in this process: print a JSON line.

    A small file is decoded first so that imports and the loading of compiled
    kernels (about a second per job, once) stay out of the throughput figure.
    """
    from recon.commands.decode import run_decode
    from recon.conditions import ConditionsDB
    from recon.decode import DecodeConfig

    db = ConditionsDB([REPO / "conditions"])
    run_decode(warmup, out, db=db, config=DecodeConfig())
    out.unlink()
    start, start_cpu = time.perf_counter(), time.process_time()
    report = run_decode(raw, out, db=db, config=DecodeConfig())
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": elapsed, "cpu_seconds": cpu, "events": report.events_decoded,
                      "peak_rss_mb": rss_mb}))  # fmt: skip
    out.unlink()


def measure(raw: Path, out: Path, warmup: Path, repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        result = subprocess.run(
            [sys.executable, __file__, "--child", str(raw), str(out), str(warmup)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    seconds = statistics.median(r["seconds"] for r in runs)
    cpu = statistics.median(r["cpu_seconds"] for r in runs)
    size_mb = raw.stat().st_size / 1e6
    return {
        "file_mb": round(size_mb, 1),
        "events": runs[0]["events"],
        "median_s": round(seconds, 3),
        "mb_per_s": round(size_mb / seconds, 1),
        "mb_per_cpu_s": round(size_mb / cpu, 1),
        "events_per_s": round(runs[0]["events"] / seconds),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[256, 1024])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=HERE / "out")
    parser.add_argument("--child", nargs=3, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    warm = make_raw(args.workdir / "warmup.na64raw", 2)
    measure(warm, args.workdir / "warmup.parquet", warm, 1)  # numba compiles into its cache here
    results = []
    for size in args.sizes_mb:
        raw = make_raw(args.workdir / f"decode_{int(size)}MB.na64raw", size)
        results.append(measure(raw, args.workdir / "decode.parquet", warm, args.repeat))
        print(json.dumps(results[-1]))
    header = ("file MB", "events", "median s", "MB/s", "MB/cpu-s", "events/s", "peak RSS MB")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (8, 8, 9, 7, 9, 9, 12), strict=True)))
    for r in results:
        print(
            f"{r['file_mb']:8.1f} {r['events']:8d} {r['median_s']:9.3f} {r['mb_per_s']:7.1f} "
            f"{r['mb_per_cpu_s']:9.1f} {r['events_per_s']:9d} {r['peak_rss_mb']:12.1f}"
        )
    (args.workdir / "decode.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
