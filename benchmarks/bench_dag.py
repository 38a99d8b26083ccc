"""Benchmark of the workflow's DAG build: time of `snakemake -n` against the number of raw files.

Adds to the embedded default configuration (config.yaml) one recorded dataset, `bench`, of N raw
files of one run, so the measured DAG is the whole default workflow plus N/K chunks (K =
`--files-per-chunk`, the config's `decode.files_per_chunk`) going through every per-chunk rule
the workflow has. A dry run reads no more than the file headers (for the grouping of files into
chunks by run), so by default each raw file is a header without events; `--real` writes tiny real
ones (one event each) instead. Each point is a fresh `snakemake -n --cores 1` process, Python
start-up included, the median of `--repeat` runs; the first run of each size is discarded as a
warm-up only with `--repeat` > 1. Quote the CPU time (user + system): the wall time depends on
the load of the machine.

    python benchmarks/bench_dag.py                        # 100, 1000, 10000 raw files, 1 per chunk
    python benchmarks/bench_dag.py --raw-files 100 1000 --repeat 4
    python benchmarks/bench_dag.py --raw-files 10000 --files-per-chunk 10   # 1000 chunks
    python benchmarks/bench_dag.py --chunk-jobs per_chunk   # one job per chunk (`na64 chain`)
    python benchmarks/bench_dag.py --profile workflow/profiles/slurm   # with grouping
    python benchmarks/bench_dag.py --raw-files 10000 --label decode-only \
        --targets results/default/bench/decode_summary.json --append   # one job per chunk

Goal (docs/farm.md): `snakemake -n` under 30 s for 10000 chunks.
Writes benchmarks/out/dag.json (`--append`: adds its rows to those already there).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))  # the test helpers make raw files and read dry runs

from recon.io.rawformat import FileHeader, RunType  # noqa: E402
from tests.workflow.conftest import planned_jobs  # noqa: E402

GOAL_S = 30.0
RUN = 5000  # the run of every raw file of the `bench` dataset


def make_workdir(
    root: Path, n_files: int, files_per_chunk: int, real: bool, chunk_jobs: str = "per_stage"
) -> Path:
    workdir = root / f"files{n_files}"
    raw_dir = workdir / "data" / "raw" / "bench"
    raw_dir.mkdir(parents=True)
    if real:
        import numpy as np

        from tests.conftest import random_batch, write_raw

        batch = random_batch(np.random.default_rng(0), 1)
        for i in range(n_files):
            write_raw(raw_dir / f"run{RUN}-{i:05d}.na64raw", batch, run=RUN)
    else:
        header = FileHeader(run=RUN, run_type=RunType.PHYSICS, setup="invis2016", simulated=True)
        packed = header.pack()
        for i in range(n_files):
            (raw_dir / f"run{RUN}-{i:05d}.na64raw").write_bytes(packed)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["datasets"]["bench"] = {"raw": ["data/raw/bench/*.na64raw"]}
    config["decode"]["files_per_chunk"] = files_per_chunk
    config["chunk_jobs"] = chunk_jobs
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return workdir


def dry_run(
    workdir: Path, extra: list[str], targets: list[str]
) -> tuple[float, float, dict[str, int]]:
    """Wall time and CPU time (user + system) of one `snakemake -n`, and its job counts."""
    exe = shutil.which("snakemake")
    command = [*([exe] if exe else [sys.executable, "-m", "snakemake"])]
    command += ["--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    command += ["-n", "--cores", "1", *targets, *extra]  # `-q` takes optional values: last
    env = {**os.environ, "CONDOR_CONFIG": os.devnull}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if result.returncode != 0:
        raise SystemExit(
            f"snakemake -n failed for {workdir}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return elapsed, cpu, planned_jobs(result.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--raw-files",
        "--chunks",
        dest="raw_files",
        type=int,
        nargs="+",
        default=[100, 1000, 10000],
        help="raw files of the `bench` dataset (= chunks with one file per chunk)",
    )
    parser.add_argument(
        "--files-per-chunk", type=int, default=1, help="`decode.files_per_chunk` of the run"
    )
    parser.add_argument(
        "--chunk-jobs",
        choices=["per_stage", "per_chunk"],
        default="per_stage",
        help="the config's `chunk_jobs`: one job per stage and chunk, or one per chunk",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per size (median reported)")
    parser.add_argument(
        "--real", action="store_true", help="tiny real raw files (one event) instead of headers"
    )
    parser.add_argument(
        "--profile", help="a Snakemake profile to dry-run with (e.g. workflow/profiles/slurm)"
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=["plain", "quiet"],
        default=["plain", "quiet"],
        help="plain: `snakemake -n` (prints every job); quiet: `snakemake -n -q` (summary only)",
    )
    parser.add_argument(
        "--targets", nargs="+", default=[], help="dry-run these targets instead of `rule all`"
    )
    parser.add_argument("--label", help="recorded as `version` in each row (e.g. before, after)")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "dag.json")
    parser.add_argument("--append", action="store_true", help="keep the rows already in --out")
    args = parser.parse_args(argv)

    extra = ["--profile", str(Path(args.profile).resolve())] if args.profile else []
    rows = []
    with tempfile.TemporaryDirectory(prefix="na64-dag-") as tmp:
        for n in args.raw_files:
            start = time.perf_counter()
            workdir = make_workdir(Path(tmp), n, args.files_per_chunk, args.real, args.chunk_jobs)
            setup_s = time.perf_counter() - start
            counted: dict[str, int] = {}
            for mode in args.modes:
                flags = extra + (["-q"] if mode == "quiet" else [])
                times, cpus = [], []
                for i in range(args.repeat):
                    elapsed, cpu, jobs = dry_run(workdir, flags, args.targets)
                    counted = jobs or counted  # -q prints no job table
                    if args.repeat == 1 or i > 0:
                        times.append(elapsed)
                        cpus.append(cpu)
                row = {
                    "version": args.label,
                    "raw_files": n,
                    "files_per_chunk": args.files_per_chunk,
                    "chunk_jobs": args.chunk_jobs,
                    "chunks": -(-n // args.files_per_chunk),
                    "command": "snakemake -n" + (" -q" if mode == "quiet" else ""),
                    "jobs": sum(counted.values()),
                    "jobs_by_rule": counted,
                    "wall_s": round(statistics.median(times), 2),
                    "cpu_s": round(statistics.median(cpus), 2),
                    "runs_wall_s": [round(t, 2) for t in times],
                    "load_avg_1min": round(os.getloadavg()[0], 2),
                    "cpus": os.cpu_count(),
                    "setup_s": round(setup_s, 2),
                    "profile": args.profile,
                    "targets": args.targets,
                }
                rows.append(row)
                verdict = "within" if row["wall_s"] < GOAL_S else "OVER"
                print(
                    f"{n:>6} files  {row['chunks']:>6} chunks  {row['jobs']:>6} jobs  "
                    f"{row['command']:<15} "
                    f"wall {row['wall_s']:6.1f} s  cpu {row['cpu_s']:6.1f} s  "
                    f"(load {row['load_avg_1min']:.1f}; {verdict} the {GOAL_S:.0f} s goal)",
                    flush=True,
                )
            shutil.rmtree(workdir, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.append and args.out.exists():
        rows = json.loads(args.out.read_text()) + rows
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
