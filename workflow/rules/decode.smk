# Raw NA64RAW1 files -> per-event digits, one job per chunk (`decode.files_per_chunk` raw
# files of one run, by default one).


rule decode:
    input:
        raw=lambda w: chunk_raw_files(w.dataset)[w.chunk],
    output:
        digits=f"{RESULTS}/{{dataset}}/digits/{{chunk}}.{EXT}",
        report=f"{RESULTS}/{{dataset}}/decode/{{chunk}}.json",
    wildcard_constraints:
        dataset=one_of(STAGED),
    log:
        f"{LOGS}/decode/{{dataset}}/{{chunk}}.log",
    benchmark:
        f"{BENCH}/decode/{{dataset}}/{{chunk}}.tsv"
    params:
        code=code_hash(*CORE_CODE, "recon/decode.py", "recon/commands/decode.py", "recon/commands/stage.py"),
        shipped=shipped_hash("channel_map", "daq"),
        options=decode_options(),
    threads: 1
    resources:
        mem_mb=config["resources"]["decode"]["mem_mb"],
        runtime=chunk_runtime("decode"),
    conda:
        "../../envs/recon.yaml"
    shell:
        "na64 decode {input.raw} -o {output.digits} --report {output.report} {params.options}"
        " > {log} 2>&1"


rule decode_summary:
    input:
        lambda w: expand(f"{RESULTS}/{w.dataset}/decode/{{chunk}}.json", chunk=chunks(w.dataset)),
    output:
        f"{RESULTS}/{{dataset}}/decode_summary.json",
    log:
        f"{LOGS}/decode_summary/{{dataset}}.log",
    localrule: True
    conda:
        "../../envs/recon.yaml"
    shell:
        "na64 summarize-decode {input} -o {output} > {log} 2>&1"
