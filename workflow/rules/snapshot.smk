# Per-tag snapshot: the effective configuration and every condition file the tag uses
# (shipped and derived: kind, version, valid runs, sha256), with copies of the shipped
# files, under results/<tag>/snapshot/ (`na64 snapshot`). Reruns when the configuration,
# a shipped condition file or a derived one changes.

import json

SNAPSHOT = f"{RESULTS}/snapshot"
# the snapshot files of this tag, for the default target
SNAPSHOT_TARGETS = [f"{SNAPSHOT}/config.yaml", f"{SNAPSHOT}/conditions.json"]
# every shipped condition file of the setup (every kind, every version)
SHIPPED_CONDITION_FILES = sorted(
    str(p) for r in shipped_roots() for p in Path(r).glob(f"{config['setup']}/*/*") if p.suffix in (".yaml", ".json")
)
# raw files of the recorded datasets: their headers name the runs (simulated: the config);
# the command globs the patterns of the config itself (no file list on the command line)
RECORDED_RAW_FILES = [f for d in config["datasets"] if not simulated_runs(d) for f in raw_files(d).values()]


rule snapshot:
    input:
        shipped=SHIPPED_CONDITION_FILES,
        derived=derived_conditions(DERIVED_KINDS),
        raw=RECORDED_RAW_FILES,
    output:
        config=f"{SNAPSHOT}/config.yaml",
        conditions=f"{SNAPSHOT}/conditions.json",
        copies=directory(f"{SNAPSHOT}/conditions"),
    log:
        f"{LOGS}/snapshot.log",
    benchmark:
        f"{BENCH}/snapshot.tsv"
    localrule: True
    params:
        code=code_hash(*CORE_CODE, "recon/commands/snapshot.py"),
        output=lambda w, output: Path(output.config).parent,
        config=json.dumps(config),
        derived=f"--derived {DERIVED}" if DERIVES else "",
        conditions=conditions_args(DERIVED_KINDS),
    conda:
        "../../envs/recon.yaml"
    shell:
        "na64 snapshot --config-json {params.config:q} -o {params.output}"
        " {params.derived} {params.conditions} > {log} 2>&1"
