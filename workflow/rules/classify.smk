# Per chunk: join calo and track outputs, SRD tag, region labels (`na64 classify`);
# per dataset: the merged event table, and for simulated datasets the merged truth
# with the generator weights copied into the events (`na64 merge`).


rule classify:
    input:
        calo=f"{RESULTS}/{{dataset}}/calo/{{chunk}}.parquet",
        track=f"{RESULTS}/{{dataset}}/track/{{chunk}}.parquet",
    output:
        f"{RESULTS}/{{dataset}}/events/{{chunk}}.parquet",
    wildcard_constraints:
        dataset=one_of(STAGED),
    log:
        f"{LOGS}/classify/{{dataset}}/{{chunk}}.log",
    benchmark:
        f"{BENCH}/classify/{{dataset}}/{{chunk}}.tsv"
    params:
        code=code_hash(*CORE_CODE, "recon/srd.py", "recon/classify.py", "recon/commands/classify.py"),
        options=classify_options(),
    threads: 1
    resources:
        mem_mb=config["resources"]["classify"]["mem_mb"],
        runtime=chunk_runtime("classify"),
    conda:
        "../../envs/recon.yaml"
    shell:
        "na64 classify --calo {input.calo} --track {input.track} -o {output} {params.options} > {log} 2>&1"


rule merge_recorded:
    input:
        events=lambda w: stage_files("events", w.dataset),
    output:
        events=f"{RESULTS}/{{dataset}}/events.parquet",
    wildcard_constraints:
        dataset=one_of(RECORDED_PHYSICS),
    log:
        f"{LOGS}/merge/{{dataset}}.log",
    benchmark:
        f"{BENCH}/merge/{{dataset}}.tsv"
    params:
        code=code_hash(*CORE_CODE, "recon/commands/merge.py"),
    threads: 1
    resources:
        mem_mb=config["resources"]["merge"]["mem_mb"],
        runtime=config["resources"]["merge"]["runtime"],
    conda:
        "../../envs/recon.yaml"
    shell:
        "na64 merge {input.events} -o {output.events} > {log} 2>&1"


rule merge_simulated:
    input:
        events=lambda w: stage_files("events", w.dataset),
        truth=lambda w: truth_files(w.dataset),
    output:
        events=f"{RESULTS}/{{dataset}}/events.parquet",
        truth=f"{RESULTS}/{{dataset}}/truth.parquet",
    wildcard_constraints:
        dataset=one_of(SIMULATED_PHYSICS),
    log:
        f"{LOGS}/merge/{{dataset}}.log",
    benchmark:
        f"{BENCH}/merge/{{dataset}}.tsv"
    params:
        code=code_hash(*CORE_CODE, "recon/commands/merge.py"),
    threads: 1
    resources:
        mem_mb=config["resources"]["merge"]["mem_mb"],
        runtime=config["resources"]["merge"]["runtime"],
    conda:
        "../../envs/recon.yaml"
    shell:
        "na64 merge {input.events} -o {output.events} --truth {input.truth}"
        " --truth-output {output.truth} > {log} 2>&1"
