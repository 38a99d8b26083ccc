# The search (`analysis` section of the config): the paper's selection, cut flow, N-1 and
# both background estimates on the background dataset (`na64 select`, blind unless
# `analysis.unblind`), the A' signal efficiency of each signal dataset
# (`na64 signal-efficiency`), and the 90% CL exclusion in pipeline and paper modes
# (`na64 limit`). Everything lands under results/<tag>/analysis/.

rule select:
    input:
        unpack(background_inputs),
    output:
        json=f"{ANALYSIS}/selection/background.json",
        selected=f"{ANALYSIS}/selection/selected.parquet",
        tables=[
            report(
                f"{ANALYSIS}/selection/{name}",
                caption="../report/analysis_tables.rst",
                category="Analysis",
                subcategory="Selection",
            )
            for name in SELECTION_TABLES
        ],
        plots=report(
            directory(f"{ANALYSIS}/selection/plots"),
            patterns=["{name}.png"],
            caption="../report/analysis_selection.rst",
            category="Analysis",
            subcategory="Selection",
        ),
    log:
        f"{LOGS}/analysis/select.log",
    benchmark:
        f"{BENCH}/analysis/select.tsv"
    params:
        code=code_hash(*CORE_CODE, "recon/analysis", "recon/commands/select.py"),
        inputs=background_args,
        options=selection_args(sidebands=True) if analyses() else "",
        target_eot=lambda w: analysis_setting("paper")["eot"],
        unblind="--unblind" if config.get("analysis", {}).get("unblind") else "",
        outdir=lambda w, output: Path(output.json).parent,
    threads: 1
    resources:
        mem_mb=config["resources"]["merge"]["mem_mb"],
        runtime=config["resources"]["merge"]["runtime"],
    conda:
        "../../envs/recon.yaml"
    shell:
        "na64 select --events {input.events} {params.inputs} --target-eot {params.target_eot}"
        " {params.options} {params.unblind} --output-dir {params.outdir} --plots {output.plots}"
        " > {log} 2>&1"


rule signal_efficiency:
    input:
        events=f"{RESULTS}/{{dataset}}/events.parquet",
        truth=f"{RESULTS}/{{dataset}}/truth.parquet",
        summaries=lambda w: summaries(w.dataset),
    output:
        f"{ANALYSIS}/efficiency/{{dataset}}.json",
    log:
        f"{LOGS}/analysis/efficiency/{{dataset}}.log",
    benchmark:
        f"{BENCH}/analysis/efficiency/{{dataset}}.tsv"
    params:
        code=code_hash(*CORE_CODE, "recon/analysis", "recon/commands/signal_efficiency.py"),
        mass=lambda w: mass_GeV(w.dataset),
        x_min=analysis_setting("x_min") if analyses() else None,
        options=selection_args(sidebands=False) if analyses() else "",
    threads: 1
    resources:
        mem_mb=config["resources"]["merge"]["mem_mb"],
        runtime=config["resources"]["merge"]["runtime"],
    conda:
        "../../envs/recon.yaml"
    shell:
        "na64 signal-efficiency --events {input.events} --truth {input.truth}"
        " --sim-summary {input.summaries} --mass-GeV {params.mass} --x-min {params.x_min}"
        " {params.options} -o {output} > {log} 2>&1"


rule limit:
    input:
        efficiency=lambda w: [f"{ANALYSIS}/efficiency/{d}.json" for d in config["analysis"]["signal"]],
        selection=f"{ANALYSIS}/selection/background.json",
    output:
        json=f"{ANALYSIS}/limit/limit.json",
        tables=[
            report(
                f"{ANALYSIS}/limit/{name}",
                caption="../report/analysis_tables.rst",
                category="Analysis",
                subcategory="Limit",
            )
            for name in LIMIT_TABLES
        ],
        plots=report(
            directory(f"{ANALYSIS}/limit/plots"),
            patterns=["{name}.png"],
            caption="../report/analysis_limit.rst",
            category="Analysis",
            subcategory="Limit",
        ),
    log:
        f"{LOGS}/analysis/limit.log",
    benchmark:
        f"{BENCH}/analysis/limit.tsv"
    params:
        code=code_hash(*CORE_CODE, "recon/analysis", "recon/commands/limit.py"),
        options=lambda w: (
            f"--masses-GeV {' '.join(str(v) for v in analysis_setting('masses_GeV'))}"
            f" --cl {analysis_setting('cl')} --yield-rel-unc {analysis_setting('yield_rel_unc')}"
            f" --efficiency-rel-unc {analysis_setting('efficiency_rel_unc')}"
            f" --paper-eot {analysis_setting('paper')['eot']}"
            f" --paper-n-obs {analysis_setting('paper')['n_obs']}"
            f" --beam-energy-GeV {config['classify'].get('beam_energy_GeV', 100.0)}"
            f" --x-min {analysis_setting('x_min')}"
        ),
        outdir=lambda w, output: Path(output.json).parent,
    threads: 1
    resources:
        mem_mb=config["resources"]["merge"]["mem_mb"],
        runtime=config["resources"]["merge"]["runtime"],
    conda:
        "../../envs/recon.yaml"
    shell:
        "na64 limit --efficiency {input.efficiency} --selection {input.selection} {params.options}"
        " --output-dir {params.outdir} --plots {output.plots} > {log} 2>&1"
