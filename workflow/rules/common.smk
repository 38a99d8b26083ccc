# Shared definitions: dataset and chunk bookkeeping, paths, code hashes.

import functools
import hashlib
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError

BASEDIR = Path(workflow.basedir)
TAG = config["tag"]
RESULTS = f"results/{TAG}"
LOGS = f"logs/{TAG}"
BENCH = f"{RESULTS}/benchmarks"
EXT = "root" if config["decode"]["format"] == "root" else "parquet"


DERIVED = f"{RESULTS}/conditions"
# Conditions the calibration rules derive, in order of dependence.
CALO_KINDS = ("sadc_pedestals", "pulse_template", "ecal_calibration", "hcal_calibration", "counter_calibration")
TRACK_KINDS = ("strip_pedestals",)
DERIVED_KINDS = CALO_KINDS + TRACK_KINDS


DERIVES = "calibration" in config


def derived_condition(kind):
    """The condition file a calibration rule writes for this workflow's calibration version."""
    return f"{DERIVED}/{config['setup']}/{kind}/{config['calibration']['version']}.json"


def derived_conditions(kinds):
    """The derived condition files of ``kinds`` a job needs ([] with external calibrations)."""
    return [derived_condition(k) for k in kinds] if DERIVES else []


def conditions_args(derived=False):
    """`--conditions DIR ... --pin KIND=VERSION ...` for the stage commands.

    With ``derived``, the conditions this workflow derives are searched too, pinned to the
    configured calibration version (a config pin of the same kind takes precedence).
    """
    roots = [r if Path(r).is_absolute() else str(BASEDIR / r) for r in config["conditions"]["roots"]]
    pins = dict(config["conditions"].get("versions") or {})
    if derived and DERIVES:
        roots.append(DERIVED)
        for kind in DERIVED_KINDS:
            pins.setdefault(kind, config["calibration"]["version"])
    return " ".join([f"--conditions {r}" for r in roots] + [f"--pin {k}={v}" for k, v in sorted(pins.items())])


def code_hash(*paths):
    """Hash of the source files a rule runs, so that an edit reruns that rule and what depends on it."""
    digest = hashlib.sha256()
    for rel in paths:
        root = BASEDIR / rel
        files = sorted(p for p in root.rglob("*") if p.suffix in (".py", ".yaml")) if root.is_dir() else [root]
        for f in files:
            digest.update(f.relative_to(BASEDIR).as_posix().encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()[:16]


CORE_CODE = ("recon/__init__.py", "recon/provenance.py", "recon/conditions", "recon/io", "recon/commands/common.py")


SIM = "data/sim"


def simulated_runs(dataset):
    """Run numbers of a simulated dataset ([] for recorded data)."""
    return list(config["datasets"][dataset].get("simulate", {}).get("runs", []))


def sim_path(dataset, run, suffix):
    return f"{SIM}/{dataset}/run{run}.{suffix}"


@functools.cache
def raw_files(dataset):
    """Chunk name -> raw file of a dataset (a chunk is one raw file; a simulated run is one file)."""
    spec = config["datasets"][dataset]
    if "simulate" in spec:
        return {f"run{run}": sim_path(dataset, run, "na64raw") for run in simulated_runs(dataset)}
    files = {}
    for pattern in spec.get("raw", []):
        matches = sorted(Path().glob(pattern)) if any(c in pattern for c in "*?[") else [Path(pattern)]
        for path in matches:
            files[path.name.rsplit(".", 1)[0]] = str(path)
    if not files:
        raise WorkflowError(f"dataset {dataset!r}: no raw file matches {spec.get('raw')}")
    return files


def check_unique_runs():
    """Simulated run numbers name the files and seed the event streams: no two datasets share one."""
    seen = {}
    for dataset in config["datasets"]:
        for run in simulated_runs(dataset):
            if run in seen:
                raise WorkflowError(f"run {run} is simulated in both {seen[run]!r} and {dataset!r}")
            seen[run] = dataset


check_unique_runs()


CALIBRATION_KINDS = ("pedestal", "calibration", "hcal_calibration")


def is_physics(dataset):
    """Physics-like datasets (physics, signal, recorded data) get the whole reconstruction."""
    spec = config["datasets"][dataset]
    if "simulate" in spec:
        return spec["simulate"]["kind"] not in CALIBRATION_KINDS
    return spec.get("role", "physics") == "physics"


def physics_datasets():
    return [d for d in config["datasets"] if is_physics(d)]


def chunks(dataset):
    return sorted(raw_files(dataset))


def digits_files(dataset):
    return [f"{RESULTS}/{dataset}/digits/{c}.{EXT}" for c in chunks(dataset)]


def stage_files(stage, dataset):
    return [f"{RESULTS}/{dataset}/{stage}/{c}.parquet" for c in chunks(dataset)]


def all_targets():
    targets = []
    for dataset in config["datasets"]:
        targets += digits_files(dataset)
        targets.append(f"{RESULTS}/{dataset}/decode_summary.json")
    targets += calibration_outputs()
    for dataset in physics_datasets():
        targets.append(f"{RESULTS}/{dataset}/events.parquet")
    return targets


def option_args(section, prefix):
    """`--<prefix>-<name> value` for every threshold of a config section."""
    args = []
    for name, value in sorted(config[section].items()):
        values = value if isinstance(value, list) else [value]
        args.append(f"--{prefix}-{name.replace('_', '-')} {' '.join(str(v) for v in values)}")
    return " ".join(args)


def truth_files(dataset):
    return [sim_path(dataset, run, "truth.parquet") for run in simulated_runs(dataset)]


def one_of(datasets):
    """A wildcard constraint matching exactly these dataset names (none: matches nothing)."""
    return "|".join(re.escape(d) for d in datasets) or "(?!)"


SIMULATED_PHYSICS = [d for d in physics_datasets() if simulated_runs(d)]
RECORDED_PHYSICS = [d for d in physics_datasets() if not simulated_runs(d)]
