# Simulated datasets: one `na64 simulate` job per run, writing the raw file (a chunk),
# the truth table, the run summary (electrons on target) and the simulation's true constants.


rule simulate:
    input:
        shipped=shipped_conditions("geometry", "field", "daq", "channel_map"),
    output:
        raw=f"{SIM}/{{dataset}}/run{{run}}.na64raw",
        truth=f"{SIM}/{{dataset}}/run{{run}}.truth.parquet",
        summary=f"{SIM}/{{dataset}}/run{{run}}.summary.json",
        constants=f"{SIM}/{{dataset}}/run{{run}}.true_constants.json",
    log:
        f"{LOGS}/simulate/{{dataset}}/run{{run}}.log",
    benchmark:
        f"{BENCH}/simulate/{{dataset}}/run{{run}}.tsv"
    wildcard_constraints:
        run=r"\d+",
    params:
        code=code_hash(*CORE_CODE, "sim"),
        kind=lambda w: config["datasets"][w.dataset]["simulate"]["kind"],
        events=lambda w: config["datasets"][w.dataset]["simulate"]["events"],
        mass=lambda w: (
            f"--mass-mev {config['datasets'][w.dataset]['simulate']['mass_mev']}"
            if "mass_mev" in config["datasets"][w.dataset]["simulate"]
            else ""
        ),
        scan=lambda w: simulate_options(w.dataset),
        seed=lambda w: config["simulation"]["seed"],
        setup=config["setup"],
        conditions=conditions_args(),
    threads: 1
    resources:
        mem_mb=config["resources"]["simulate"]["mem_mb"],
        runtime=config["resources"]["simulate"]["runtime"],
    conda:
        "../../envs/recon.yaml"
    shell:
        "na64 simulate --setup {params.setup} --run {wildcards.run} --kind {params.kind} {params.mass} {params.scan}"
        " --events {params.events} --seed {params.seed} -o {output.raw} --truth {output.truth}"
        " --summary {output.summary} --true-constants {output.constants} {params.conditions}"
        " > {log} 2>&1"
