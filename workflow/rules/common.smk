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


def calibration_version(kind):
    """The version of a derived kind: `calibration.versions.<kind>`, else `calibration.version`."""
    calibration = config["calibration"]
    return (calibration.get("versions") or {}).get(kind, calibration["version"])


def derived_condition(kind):
    """The condition file a calibration rule writes for this workflow's calibration version."""
    return f"{DERIVED}/{config['setup']}/{kind}/{calibration_version(kind)}.json"


def derived_conditions(kinds):
    """The derived condition files of ``kinds`` a job needs ([] with external calibrations)."""
    return [derived_condition(k) for k in kinds] if DERIVES else []


def shipped_roots():
    return [r if Path(r).is_absolute() else str(BASEDIR / r) for r in config["conditions"]["roots"]]


def conditions_args(kinds=()):
    """`--conditions DIR ... --pin KIND=VERSION ...` for the stage commands.

    Derived ``kinds`` are searched in this workflow's derived conditions too, pinned to
    their calibration version, so a job's command line changes only with the versions
    it uses. Config pins (`conditions.versions`) apply to every job.
    """
    roots = shipped_roots()
    pins = dict(config["conditions"].get("versions") or {})
    if kinds and DERIVES:
        roots.append(DERIVED)
        for kind in kinds:
            pins.setdefault(kind, calibration_version(kind))
    return " ".join([f"--conditions {r}" for r in roots] + [f"--pin {k}={v}" for k, v in sorted(pins.items())])


def shipped_conditions(*kinds):
    """The shipped condition files of these kinds (every version): a job reruns when one changes."""
    files = []
    for root in shipped_roots():
        for kind in kinds:
            files += sorted(str(p) for p in Path(root).glob(f"{config['setup']}/{kind}/*") if p.suffix in (".yaml", ".json"))
    return files


@functools.cache
def shipped_hash(*kinds):
    """Hash of the shipped condition files of these kinds (every version, every root).

    A `params` entry of the per-chunk rules instead of one input file per condition and job:
    an edited, added or removed condition file reruns the jobs that read its kind (Snakemake's
    params trigger), at no cost per job when the DAG is built.
    """
    digest = hashlib.sha256()
    for position, root in enumerate(shipped_roots()):
        for kind in kinds:
            for path in sorted(Path(root).glob(f"{config['setup']}/{kind}/*")):
                if path.suffix in (".yaml", ".json"):
                    digest.update(f"{position}:{path.relative_to(root).as_posix()}".encode())
                    digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


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


def simulate_options(dataset):
    """`--beam-energy-gev E ... --target-cell IX IY` of an ECAL energy-scan dataset ("" otherwise)."""
    spec = config["datasets"][dataset]["simulate"]
    options = []
    if "beam_energies_GeV" in spec:
        options.append("--beam-energy-gev " + " ".join(str(e) for e in spec["beam_energies_GeV"]))
    if "target_cell" in spec:
        options.append("--target-cell " + " ".join(str(i) for i in spec["target_cell"]))
    options += ["--scan-cells"] if spec.get("scan_cells") else []
    return " ".join(options)


def sim_path(dataset, run, suffix):
    return f"{SIM}/{dataset}/run{run}.{suffix}"


@functools.cache
def raw_files(dataset):
    """File name without suffix -> raw file, for every raw file of a dataset (a simulated run: one file)."""
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


FILES_PER_CHUNK = config["decode"].get("files_per_chunk", 1)


def raw_run(path):
    """The run number in a raw file's header (to group files into chunks of one run)."""
    from recon.io.rawformat import FILE_HEADER_SIZE, FileHeader

    try:
        with open(path, "rb") as stream:
            return FileHeader.unpack(stream.read(FILE_HEADER_SIZE), path).run
    except (OSError, ValueError) as error:
        raise WorkflowError(f"decode.files_per_chunk: no run number in {path}: {error}") from error


def chunk_name(stems):
    """A chunk is named after its first raw file, `+<n-1>` appended when it holds n > 1 files."""
    return stems[0] if len(stems) == 1 else f"{stems[0]}+{len(stems) - 1}"


@functools.cache
def chunk_raw_files(dataset):
    """Chunk name -> its raw files, in name order.

    A chunk is the unit of every per-chunk rule (one job per chunk and rule). It holds up to
    `decode.files_per_chunk` (default 1) consecutive raw files of one run, as the file headers
    say, decoded into one digits file; a simulated run is one chunk. Fewer, larger chunks make
    a smaller DAG and fewer, longer jobs (docs/farm.md).
    """
    files = raw_files(dataset)
    if FILES_PER_CHUNK == 1 or simulated_runs(dataset):
        return {stem: [path] for stem, path in files.items()}
    by_run = {}
    for stem in sorted(files):
        by_run.setdefault(raw_run(files[stem]), []).append(stem)
    groups = {}
    for stems in by_run.values():
        for start in range(0, len(stems), FILES_PER_CHUNK):
            group = stems[start : start + FILES_PER_CHUNK]
            groups[chunk_name(group)] = [files[stem] for stem in group]
    return groups


def chunks(dataset):
    return sorted(chunk_raw_files(dataset))


def chunk_runtime(rule):
    """`resources.<rule>.runtime` (minutes per raw file) times the files of a chunk."""
    return config["resources"][rule]["runtime"] * FILES_PER_CHUNK


# Per-chunk jobs (`chunk_jobs`): `per_stage`, one job per stage and chunk (decode, calo, track,
# classify); `per_chunk`, one job per chunk of a physics dataset running the four stages in one
# process (`na64 chain`, in chain.smk), each keeping its output when still current: a quarter of
# the jobs, for farm-scale datasets (docs/farm.md). Calibration datasets stay per stage.
PER_CHUNK = config.get("chunk_jobs", "per_stage") == "per_chunk"
CHAINED = physics_datasets() if PER_CHUNK else []
STAGED = [d for d in config["datasets"] if d not in CHAINED]


def decode_options():
    decode = config["decode"]
    return (
        f"--chunk-events {decode['chunk_events']} --policy {decode['policy']}"
        f" --compression {decode['compression']} {conditions_args()}"
    )


def calo_options():
    calo = config["calo"]
    return (
        f"--chunk-events {calo['chunk_events']} --intime-window-ns {calo['intime_window_ns']}"
        f" --hcal-modules-in-sum {calo['hcal_modules_in_sum']} {conditions_args(CALO_KINDS)}"
    )


def track_options():
    return f"--chunk-events {config['track']['chunk_events']} {conditions_args(TRACK_KINDS)}"


def classify_options():
    return f"{option_args('srd', 'srd')} {option_args('classify', 'classify')}"


def digits_files(dataset):
    return [f"{RESULTS}/{dataset}/digits/{c}.{EXT}" for c in chunks(dataset)]


def stage_files(stage, dataset):
    return [f"{RESULTS}/{dataset}/{stage}/{c}.parquet" for c in chunks(dataset)]


def all_targets():
    targets = []
    for dataset in config["datasets"]:
        if dataset not in CHAINED:  # a chained dataset's digits come with its events
            targets += digits_files(dataset)
        targets.append(f"{RESULTS}/{dataset}/decode_summary.json")
    targets += calibration_outputs()
    for dataset in physics_datasets():
        targets.append(f"{RESULTS}/{dataset}/events.parquet")
    if validates():
        targets += [f"{RESULTS}/validation/calorimetry.json", f"{RESULTS}/validation/tracking.json"]
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


def is_signal(dataset):
    return config["datasets"][dataset].get("simulate", {}).get("kind") == "signal"


def pairs(stage, dataset):
    """[stage file, truth file] of every chunk of a simulated dataset, interleaved."""
    files = []
    for run in simulated_runs(dataset):
        files += [f"{RESULTS}/{dataset}/{stage}/run{run}.parquet", sim_path(dataset, run, "truth.parquet")]
    return files


def validation_options(input):
    """`--scan C T --muons C T --signal C T ... --physics C T ...` from the validate_calo inputs."""
    options = []
    for key in ("scan", "muons", "signal", "physics"):
        values = list(getattr(input, key))
        options += [f"--{key} {values[i]} {values[i + 1]}" for i in range(0, len(values), 2)]
    return " ".join(options)


def validates():
    """Validation runs when the calibration and physics datasets are all simulated."""
    calibration = [config["calibration"][k] for k in ("ecal_scan", "muons")] if DERIVES else []
    return bool(calibration) and all(simulated_runs(d) for d in calibration) and bool(SIMULATED_PHYSICS)

