# Digits -> calibrated cells and ECAL/HCAL/counter summaries, one job per chunk of a
# physics-like dataset, with the conditions derived by the calibration rules.


rule calo:
    input:
        digits=f"{RESULTS}/{{dataset}}/digits/{{chunk}}.{EXT}",
        conditions=derived_conditions(CALO_KINDS),
    output:
        f"{RESULTS}/{{dataset}}/calo/{{chunk}}.parquet",
    wildcard_constraints:
        dataset=one_of(STAGED),
    log:
        f"{LOGS}/calo/{{dataset}}/{{chunk}}.log",
    benchmark:
        f"{BENCH}/calo/{{dataset}}/{{chunk}}.tsv"
    params:
        code=code_hash(*CORE_CODE, "recon/calo", "recon/commands/calo.py", "recon/commands/stage.py"),
        shipped=shipped_hash("geometry", "daq"),
        options=calo_options(),
    threads: 1
    resources:
        mem_mb=config["resources"]["calo"]["mem_mb"],
        runtime=chunk_runtime("calo"),
    conda:
        "../../envs/recon.yaml"
    shell:
        "na64 calo {input.digits} -o {output} {params.options} > {log} 2>&1"
