"""Benchmark of the full reconstruction chain: decode -> calo, track -> classify, one job each.

Simulates (untimed) one physics run of ``--events`` triggered events and a tiny
run of ``--tiny-events`` with the simulation settings of ``config.yaml``, reuses
the calibration conditions derived by a workflow run (``--derived``, default
``results/<tag>/conditions``) or derives them (untimed) from simulated
calibration runs, then runs every stage as a separate process, with the command
line the workflow gives it (`workflow/rules/*.smk`, options from the config):

    na64 decode RAW -o DIGITS --report R --chunk-events .. --policy .. --compression ..
    na64 calo DIGITS -o CALO --chunk-events .. --intime-window-ns .. --hcal-modules-in-sum ..
    na64 track DIGITS -o TRACK --chunk-events ..
    na64 classify --calo CALO --track TRACK -o EVENTS --srd-.. --classify-..

Per job: CPU time (user + system of the child, from ``os.wait4``), wall time and
peak RSS (the child's ``ru_maxrss``); events/s per core = events / CPU s; for
the chain, events / (sum of the CPU s of the four jobs). The tiny run measures
the fixed cost of a job (interpreter start-up, imports, numba cache loads,
conditions, file open); the per-event cost is (CPU(big) - CPU(tiny)) / (events
difference). ``na64 --version`` alone measures the interpreter and the CLI
imports. Every figure is the median of ``--repeat`` runs, after one untimed
warm-up chain on each run (numba caches of every code path written). Goal (issue 6): at least
20k events/s per core for the chain.

    python benchmarks/bench_chain.py                     # 50k events, 3 repeats
    python benchmarks/bench_chain.py --events 200000 --repeat 5 --workdir /tmp/bench
    python benchmarks/bench_chain.py --one-process       # `na64 chain`: chunk_jobs: per_chunk

``--one-process`` times the four stages as the workflow's one-job-per-chunk mode runs them,
``na64 chain decode ... :: calo ... :: track ... :: classify ...`` in one process (the start-up
paid once), and writes benchmarks/out/chain_one_process.json.

Writes benchmarks/out/chain.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
STAGES = ("decode", "calo", "track", "classify")
GOAL_EVENTS_PER_CORE_S = 20_000
PLACEHOLDERS = {k: Path(k.upper()) for k in ("raw", "digits", "report", "calo", "track", "events")}
CALO_KINDS = ("sadc_pedestals", "pulse_template", "ecal_calibration", "hcal_calibration",
              "counter_calibration")  # fmt: skip
TRACK_KINDS = ("strip_pedestals",)
# derived kind -> (`na64 derive` kind, calibration config key, kinds it needs); calibrate.smk
DERIVATIONS = {
    "strip_pedestals": ("strip-pedestals", "pedestals", ()),
    "sadc_pedestals": ("sadc-pedestals", "pedestals", ()),
    "pulse_template": ("pulse-templates", "ecal_scan", ("sadc_pedestals",)),
    "ecal_calibration": ("ecal-calibration", "ecal_scan", ("sadc_pedestals", "pulse_template")),
    "hcal_calibration": ("hcal-calibration", "muons", ("sadc_pedestals", "pulse_template")),
    "counter_calibration": ("counter-calibration", "ecal_scan", ("sadc_pedestals",
                                                                "pulse_template")),
}  # fmt: skip


# ------------------------------------------------------------------ processes


def na64() -> list[str]:
    exe = shutil.which("na64")
    return [exe] if exe else [sys.executable, "-m", "recon.cli"]


def timed(command: list[str], log: Path) -> dict[str, float]:
    """Run one job; its CPU s (user + system), wall s and peak RSS (MB) from ``wait4``."""
    with log.open("w") as out:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"failed ({process.returncode}): {' '.join(command)}\nsee {log}")
    return {
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "wall_s": wall,
        "max_rss_MB": usage.ru_maxrss / 1024,  # Linux: kB
    }


def execute(command: list[str], log: Path) -> None:
    with log.open("w") as out:
        if subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
            raise SystemExit(f"failed: {' '.join(command)}\nsee {log}")


# ------------------------------------------------------------------ command lines


class Commands:
    """The stage command lines of the workflow, from a configuration (as common.smk builds them)."""

    def __init__(self, config: dict, derived: Path):
        self.config = config
        self.derived = derived
        self.shipped = [str(r if Path(r).is_absolute() else REPO / r)
                        for r in config["conditions"]["roots"]]  # fmt: skip

    def version(self, kind: str) -> str:
        calibration = self.config["calibration"]
        return (calibration.get("versions") or {}).get(kind, calibration["version"])

    def conditions(self, kinds=()) -> list[str]:
        roots = [*self.shipped, *([str(self.derived)] if kinds else [])]
        pins = dict(self.config["conditions"].get("versions") or {})
        for kind in kinds:
            pins.setdefault(kind, self.version(kind))
        args = [a for r in roots for a in ("--conditions", r)]
        return args + [a for k, v in sorted(pins.items()) for a in ("--pin", f"{k}={v}")]

    def options(self, section: str, prefix: str) -> list[str]:
        args = []
        for name, value in sorted(self.config[section].items()):
            values = value if isinstance(value, list) else [value]
            args += [f"--{prefix}-{name.replace('_', '-')}", *map(str, values)]
        return args

    def stage(self, stage: str, files: dict[str, Path]) -> list[str]:
        c = self.config
        if stage == "decode":
            d = c["decode"]
            return [*na64(), "decode", str(files["raw"]), "-o", str(files["digits"]),
                    "--report", str(files["report"]), "--chunk-events", str(d["chunk_events"]),
                    "--policy", d["policy"], "--compression", d["compression"],
                    *self.conditions()]  # fmt: skip
        if stage == "calo":
            return [*na64(), "calo", str(files["digits"]), "-o", str(files["calo"]),
                    "--chunk-events", str(c["calo"]["chunk_events"]),
                    "--intime-window-ns", str(c["calo"]["intime_window_ns"]),
                    "--hcal-modules-in-sum", str(c["calo"]["hcal_modules_in_sum"]),
                    *self.conditions(CALO_KINDS)]  # fmt: skip
        if stage == "track":
            return [*na64(), "track", str(files["digits"]), "-o", str(files["track"]),
                    "--chunk-events", str(c["track"]["chunk_events"]),
                    *self.conditions(TRACK_KINDS)]  # fmt: skip
        return [*na64(), "classify", "--calo", str(files["calo"]), "--track", str(files["track"]),
                "-o", str(files["events"]), *self.options("srd", "srd"),
                *self.options("classify", "classify")]  # fmt: skip

    def simulate(self, kind: str, run: int, events: int, raw: Path, extra=()) -> list[str]:
        return [*na64(), "simulate", "--setup", self.config["setup"], "--run", str(run),
                "--kind", kind, *extra, "--events", str(events),
                "--seed", str(self.config["simulation"]["seed"]), "-o", str(raw),
                *self.conditions()]  # fmt: skip


# ------------------------------------------------------------------ preparation (untimed)


def simulated(commands: Commands, workdir: Path, kind: str, run: int, events: int) -> Path:
    """A simulated raw file, reused if the workdir holds one of the same run, kind and size."""
    raw = workdir / f"run{run}.na64raw"
    summary = Path(f"{raw}.summary.json")
    if summary.exists():
        done = json.loads(summary.read_text())
        seed = commands.config["simulation"]["seed"]
        if (done["n_events"], done["kind"], done["seed"]) == (events, kind, seed):
            return raw
    print(f"simulating {kind} run {run}: {events} events (untimed)", flush=True)
    execute(commands.simulate(kind, run, events, raw), workdir / f"simulate{run}.log")
    return raw


def derive(commands: Commands, workdir: Path) -> Path:
    """Derive the calibration conditions from simulated calibration runs (untimed)."""
    config, root = commands.config, commands.derived
    digits = {}
    for key in ("pedestals", "ecal_scan", "muons"):
        dataset = config["calibration"][key]
        spec = config["datasets"][dataset]["simulate"]
        run_number = spec["runs"][0]
        raw = simulated(commands, workdir, spec["kind"], run_number, spec["events"])
        files = {"raw": raw, "digits": workdir / f"digits{run_number}.parquet",
                 "report": workdir / f"decode{run_number}.json"}  # fmt: skip
        if not files["digits"].exists():
            execute(commands.stage("decode", files), workdir / f"decode{run_number}.log")
        digits[key] = files["digits"]
    for kind, (cli, key, needs) in DERIVATIONS.items():
        if (root / config["setup"] / kind / f"{commands.version(kind)}.json").exists():
            continue
        print(f"deriving {kind} (untimed)", flush=True)
        muons = ["--muons", str(digits["muons"])] if kind == "counter_calibration" else []
        valid = [str(r) for r in config["calibration"]["valid_runs"]]
        execute([*na64(), "derive", cli, str(digits[key]), *muons, "--version",
             commands.version(kind), "--valid-runs", *valid, "--root", str(root),
             "--plots", str(workdir / "calibration"), *commands.conditions(needs)],
            workdir / f"derive_{kind}.log")  # fmt: skip
    return root


# ------------------------------------------------------------------ the benchmark


def chain(commands: Commands, raw: Path, workdir: Path, label: str) -> dict[str, dict]:
    """Every stage once on ``raw``: per-stage CPU, wall, peak RSS."""
    files = {"raw": raw, "report": workdir / f"{label}.decode.json"}
    files |= {s: workdir / f"{label}.{s}.parquet" for s in ("digits", "calo", "track", "events")}
    return {s: timed(commands.stage(s, files), workdir / f"{label}.{s}.log") for s in STAGES}


def one_process(commands: Commands, raw: Path, workdir: Path, label: str) -> dict[str, float]:
    """The four stages in one `na64 chain` process: its CPU, wall and peak RSS."""
    files = {"raw": raw, "report": workdir / f"{label}.decode.json"}
    files |= {s: workdir / f"{label}.{s}.parquet" for s in ("digits", "calo", "track", "events")}
    command = [*na64(), "chain"]
    for position, stage in enumerate(STAGES):
        command += ["::"] if position else []
        command += commands.stage(stage, files)[len(na64()) :]
    return timed(command, workdir / f"{label}.chain.log")


def summarise_one_process(big: dict, tiny: dict, n: int, n_tiny: int, chunk: int) -> dict:
    per_event = (big["cpu_s"] - tiny["cpu_s"]) / (n - n_tiny)
    fixed = tiny["cpu_s"] - n_tiny * per_event
    return {
        "mode": "one process (na64 chain)",
        "events": n,
        **{k: round(v, 3) for k, v in big.items()},
        "events_per_core_s": round(n / big["cpu_s"]),
        "fixed_cpu_s": round(fixed, 3),
        "per_event_cpu_us": round(per_event * 1e6, 2),
        "workflow_chunk_events": chunk,
        "events_per_core_s_at_workflow_chunk": round(chunk / (fixed + chunk * per_event)),
        "goal_events_per_core_s": GOAL_EVENTS_PER_CORE_S,
        "pass": n / big["cpu_s"] >= GOAL_EVENTS_PER_CORE_S,
    }


def decoded_events(workdir: Path, label: str) -> int:
    return int(json.loads((workdir / f"{label}.decode.json").read_text())["events_decoded"])


def median_runs(runs: list[dict[str, dict]]) -> dict[str, dict]:
    return {
        stage: {key: statistics.median(r[stage][key] for r in runs) for key in runs[0][stage]}
        for stage in STAGES
    }


def summarise(big: dict, tiny: dict, start_up: dict, n: int, n_tiny: int, chunk: int) -> dict:
    """Per-stage and chain figures: events/s per core, fixed and per-event CPU cost."""
    stages = {}
    for stage in STAGES:
        per_event = (big[stage]["cpu_s"] - tiny[stage]["cpu_s"]) / (n - n_tiny)
        fixed = tiny[stage]["cpu_s"] - n_tiny * per_event
        stages[stage] = {
            **{k: round(v, 3) for k, v in big[stage].items()},
            "events_per_core_s": round(n / big[stage]["cpu_s"]),
            "fixed_cpu_s": round(fixed, 3),
            "per_event_cpu_us": round(per_event * 1e6, 2),
            "events_per_core_s_without_fixed": round(1 / per_event) if per_event > 0 else None,
        }
    cpu = sum(big[s]["cpu_s"] for s in STAGES)
    fixed = sum(stages[s]["fixed_cpu_s"] for s in STAGES)
    per_event = sum(stages[s]["per_event_cpu_us"] for s in STAGES) * 1e-6
    return {
        "events": n,
        "stages": stages,
        "chain": {
            "cpu_s": round(cpu, 3),
            "wall_s": round(sum(big[s]["wall_s"] for s in STAGES), 3),
            "max_rss_MB": round(max(big[s]["max_rss_MB"] for s in STAGES), 1),
            "events_per_core_s": round(n / cpu),
            "fixed_cpu_s": round(fixed, 3),
            "fixed_fraction": round(fixed / cpu, 3),
            "per_event_cpu_us": round(per_event * 1e6, 2),
            "events_per_core_s_without_fixed": round(1 / per_event) if per_event > 0 else None,
            "workflow_chunk_events": chunk,
            "events_per_core_s_at_workflow_chunk": round(chunk / (fixed + chunk * per_event)),
            "bottleneck_per_event": max(STAGES, key=lambda s: stages[s]["per_event_cpu_us"]),
        },
        "start_up": {k: round(v, 3) for k, v in start_up.items()},
        "goal_events_per_core_s": GOAL_EVENTS_PER_CORE_S,
        "pass": n / cpu >= GOAL_EVENTS_PER_CORE_S,
    }


def print_table(result: dict) -> None:
    print(f"\n{result['events']} events; median of the repeats; CPU = user + system of the job")
    head = ("stage", "CPU s", "wall s", "peak RSS MB", "events/s/core", "fixed CPU s",
            "us/event", "ev/s/core w/o fixed")  # fmt: skip
    print("{:<9} {:>7} {:>7} {:>11} {:>13} {:>11} {:>9} {:>19}".format(*head))
    rows = [*((s, result["stages"][s]) for s in STAGES), ("chain", result["chain"])]
    for name, r in rows:
        fast = r["events_per_core_s_without_fixed"]
        print(f"{name:<9} {r['cpu_s']:>7.2f} {r['wall_s']:>7.2f} {r['max_rss_MB']:>11.0f} "
              f"{r['events_per_core_s']:>13,} {r['fixed_cpu_s']:>11.2f} "
              f"{r['per_event_cpu_us']:>9.1f} {f'{fast:,}' if fast else '-':>19}")  # fmt: skip
    c = result["chain"]
    print(f"`na64 --version` (interpreter + CLI imports): {result['start_up']['cpu_s']:.2f} CPU s, "
          f"{result['start_up']['max_rss_MB']:.0f} MB")  # fmt: skip
    print(f"fixed cost: {c['fixed_fraction']:.0%} of the chain CPU; at "
          f"{c['workflow_chunk_events']} events per job "
          f"(the workflow's chunks): {c['events_per_core_s_at_workflow_chunk']:,} "
          f"events/s/core")  # fmt: skip
    verdict = "meets" if result["pass"] else "MISSES"
    print(
        f"chain: {c['events_per_core_s']:,} events/s per core: {verdict} the goal of "
        f"{GOAL_EVENTS_PER_CORE_S:,}; largest per-event cost: {c['bottleneck_per_event']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000, help="physics events to time")
    parser.add_argument("--tiny-events", type=int, default=100, help="events of the fixed-cost run")
    parser.add_argument("--repeat", type=int, default=3, help="timed chains (median reported)")
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--derived", type=Path,
                        help="derived conditions root (default: results/<tag>/conditions if "
                             "present, else derived in the workdir)")  # fmt: skip
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/na64-bench-chain"),
                        help="simulated files are kept here and reused")  # fmt: skip
    parser.add_argument("--run", type=int, default=5001, help="run number of the physics run")
    parser.add_argument("--one-process", action="store_true",
                        help="the four stages in one `na64 chain` process")  # fmt: skip
    parser.add_argument("--out", type=Path, help="default: benchmarks/out/chain[_one_process].json")
    args = parser.parse_args(argv)
    name = "chain_one_process.json" if args.one_process else "chain.json"
    args.out = args.out or HERE / "out" / name

    config = yaml.safe_load(args.config.read_text())
    args.workdir.mkdir(parents=True, exist_ok=True)
    derived = args.derived or REPO / "results" / config["tag"] / "conditions"
    commands = Commands(config, derived if derived.is_dir() else args.workdir / "conditions")
    if not derived.is_dir():
        derive(commands, args.workdir)
    big = simulated(commands, args.workdir, "physics", args.run, args.events)
    tiny = simulated(commands, args.workdir, "physics", args.run + 1, args.tiny_events)

    for raw in (tiny, big):  # untimed: numba caches of every code path, page cache
        chain(commands, raw, args.workdir, "warmup")
    chunk = int(config["datasets"].get("physics", {}).get("simulate", {}).get("events", 5000))
    if args.one_process:
        return run_one_process(args, commands, tiny, big, chunk)
    start_up, big_runs, tiny_runs = [], [], []
    for i in range(args.repeat):
        start_up.append(timed([*na64(), "--version"], args.workdir / "version.log"))
        tiny_runs.append(chain(commands, tiny, args.workdir, "tiny"))
        big_runs.append(chain(commands, big, args.workdir, "big"))
        cpu = sum(big_runs[-1][s]["cpu_s"] for s in STAGES)
        print(f"repeat {i + 1}/{args.repeat}: chain {cpu:.2f} CPU s", flush=True)
    n, n_tiny = decoded_events(args.workdir, "big"), decoded_events(args.workdir, "tiny")
    result = summarise(median_runs(big_runs), median_runs(tiny_runs),
                       {k: statistics.median(r[k] for r in start_up) for k in start_up[0]},
                       n, n_tiny, chunk)  # fmt: skip
    result |= {
        "repeats": args.repeat,
        "tiny_events": n_tiny,
        "runs_chain_cpu_s": [round(sum(r[s]["cpu_s"] for s in STAGES), 3) for r in big_runs],
        "commands": {s: " ".join(commands.stage(s, PLACEHOLDERS)) for s in STAGES},
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "python_dont_write_bytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
        "cpus": os.cpu_count(),
        "derived_conditions": str(commands.derived),
    }
    print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def run_one_process(args, commands: Commands, tiny: Path, big: Path, chunk: int) -> int:
    big_runs, tiny_runs = [], []
    for i in range(args.repeat):
        tiny_runs.append(one_process(commands, tiny, args.workdir, "tiny"))
        big_runs.append(one_process(commands, big, args.workdir, "big"))
        print(f"repeat {i + 1}/{args.repeat}: chain {big_runs[-1]['cpu_s']:.2f} CPU s", flush=True)
    n, n_tiny = decoded_events(args.workdir, "big"), decoded_events(args.workdir, "tiny")
    median = {k: statistics.median(r[k] for r in big_runs) for k in big_runs[0]}
    median_tiny = {k: statistics.median(r[k] for r in tiny_runs) for k in tiny_runs[0]}
    result = summarise_one_process(median, median_tiny, n, n_tiny, chunk)
    result |= {
        "repeats": args.repeat,
        "tiny_events": n_tiny,
        "runs_cpu_s": [round(r["cpu_s"], 3) for r in big_runs],
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    print(
        f"\n{n} events in one `na64 chain` process (median of {args.repeat}): "
        f"{result['cpu_s']:.2f} CPU s, {result['max_rss_MB']:.0f} MB peak; "
        f"{result['events_per_core_s']:,} events/s per core; "
        f"fixed {result['fixed_cpu_s']:.2f} CPU s, {result['per_event_cpu_us']:.1f} us/event; "
        f"at {chunk} events per chunk: "
        f"{result['events_per_core_s_at_workflow_chunk']:,} events/s per core"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
