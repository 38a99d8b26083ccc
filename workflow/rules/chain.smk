# `chunk_jobs: per_chunk`: one job per chunk of a physics dataset runs decode, calo, track and
# classify in one process (`na64 chain`), instead of one job per stage (decode.smk,
# calorimetry.smk, tracking.smk, classify.smk, which still serve the calibration datasets).
# The outputs are the same files, byte for byte. They are flagged `update`: Snakemake keeps them
# (with a backup, restored if the job fails) and each stage keeps its output when the provenance
# says it is current, so a calibration update redoes calo and classify only, as in per-stage mode.
# A chunk job reads the derived conditions through one input, the manifest of the calibration
# set (`na64 manifest`: paths and checksums), not six: input files are what a 10 000-chunk DAG
# costs to build (docs/farm.md).

# the command modules a chunk job runs (an edit elsewhere in recon/commands does not rerun it)
CHAIN_COMMANDS = ("chain", "decode", "calo", "track", "classify", "stage", "config_options")
CALIBRATION_SET = [f"{RESULTS}/calibration/calibration_set.json"] if DERIVES and CHAINED else []


if CALIBRATION_SET:

    rule calibration_set:
        input:
            derived_conditions(CALO_KINDS + TRACK_KINDS),
        output:
            CALIBRATION_SET,
        log:
            f"{LOGS}/calibration_set.log",
        localrule: True
        conda:
            "../../envs/recon.yaml"
        shell:
            "na64 manifest {input} -o {output} > {log} 2>&1"


if CHAINED:

    rule chain:
        input:
            raw=lambda w: chunk_raw_files(w.dataset)[w.chunk],
            conditions=CALIBRATION_SET,
        output:
            digits=update(f"{RESULTS}/{{dataset}}/digits/{{chunk}}.{EXT}"),
            report=update(f"{RESULTS}/{{dataset}}/decode/{{chunk}}.json"),
            calo=update(f"{RESULTS}/{{dataset}}/calo/{{chunk}}.parquet"),
            track=update(f"{RESULTS}/{{dataset}}/track/{{chunk}}.parquet"),
            events=update(f"{RESULTS}/{{dataset}}/events/{{chunk}}.parquet"),
        wildcard_constraints:
            dataset=one_of(CHAINED),
        log:
            f"{LOGS}/chain/{{dataset}}/{{chunk}}.log",
        benchmark:
            f"{BENCH}/chain/{{dataset}}/{{chunk}}.tsv"
        params:
            code=code_hash(
                *CORE_CODE, "recon/decode.py", "recon/calo", "recon/tracking", "recon/srd.py",
                "recon/classify.py", *(f"recon/commands/{m}.py" for m in CHAIN_COMMANDS),
            ),
            shipped=shipped_hash("channel_map", "daq", "geometry", "field", "alignment", "tracking_parameters"),
            decode=decode_options(),
            calo=calo_options(),
            track=track_options(),
            classify=classify_options(),
        threads: 1
        resources:
            mem_mb=config["resources"]["chain"]["mem_mb"],
            runtime=chunk_runtime("chain"),
            disk_mb=config["resources"]["chain"]["disk_mb"] * FILES_PER_CHUNK,
        conda:
            "../../envs/recon.yaml"
        shell:
            "na64 chain"
            " decode {input.raw} -o {output.digits} --report {output.report} {params.decode} --skip-current"
            " :: calo {output.digits} -o {output.calo} {params.calo} --skip-current"
            " :: track {output.digits} -o {output.track} {params.track} --skip-current"
            " :: classify --calo {output.calo} --track {output.track} -o {output.events}"
            " {params.classify} --skip-current > {log} 2>&1"
