# Digits -> APV clusters, space points and the momentum fit, one job per chunk of a
# physics-like dataset, with the strip pedestals derived by the calibration rules.


rule track:
    input:
        digits=f"{RESULTS}/{{dataset}}/digits/{{chunk}}.{EXT}",
        conditions=derived_conditions(TRACK_KINDS),
    output:
        f"{RESULTS}/{{dataset}}/track/{{chunk}}.parquet",
    wildcard_constraints:
        dataset=one_of(STAGED),
    log:
        f"{LOGS}/track/{{dataset}}/{{chunk}}.log",
    benchmark:
        f"{BENCH}/track/{{dataset}}/{{chunk}}.tsv"
    params:
        code=code_hash(*CORE_CODE, "recon/tracking", "recon/commands/track.py", "recon/commands/stage.py"),
        shipped=shipped_hash("geometry", "field", "alignment", "tracking_parameters"),
        options=track_options(),
    threads: 1
    resources:
        mem_mb=config["resources"]["track"]["mem_mb"],
        runtime=chunk_runtime("track"),
    conda:
        "../../envs/recon.yaml"
    shell:
        "na64 track {input.digits} -o {output} {params.options} > {log} 2>&1"
