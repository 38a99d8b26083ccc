# Definitions of the analysis rules (workflow/rules/analysis.smk): paths, settings with
# their schema defaults, and the option strings of the `na64 select`, `signal-efficiency`
# and `limit` commands.

ANALYSIS = f"{RESULTS}/analysis"
SELECTION_TABLES = ("cutflow.csv", "n_minus_one.csv", "background_mc.csv")
LIMIT_TABLES = ("limit_pipeline.csv", "limit_paper.csv", "efficiency.csv", "yield.csv")


def analyses():
    return "analysis" in config


def analysis_setting(key):
    """An `analysis` setting, with the schema's default where the config omits it."""
    return config["analysis"].get(key, ANALYSIS_DEFAULTS[key])


ANALYSIS_DEFAULTS = {
    "x_min": 0.5,
    "cl": 0.9,
    "yield_rel_unc": 0.19,
    "efficiency_rel_unc": 0.13,
    "masses_GeV": [0.001, 1.0, 61],
    "paper": {"eot": 2.75e9, "n_obs": 0},
}


def summaries(dataset):
    return [sim_path(dataset, run, "summary.json") for run in simulated_runs(dataset)]


def background_inputs(wildcards):
    dataset = config["analysis"]["background"]
    inputs = {"events": f"{RESULTS}/{dataset}/events.parquet"}
    if simulated_runs(dataset):
        inputs |= {"truth": f"{RESULTS}/{dataset}/truth.parquet", "summaries": summaries(dataset)}
    return inputs


def background_args(wildcards, input):
    """--truth and --sim-summary of a simulated dataset, --eot of a recorded one."""
    if "summaries" in input.keys():
        return f"--truth {input.truth} --sim-summary {' '.join(input.summaries)}"
    if "eot" not in config["analysis"]:
        raise WorkflowError("analysis.eot is needed for a recorded background dataset")
    return f"--eot {config['analysis']['eot']}"


def mass_GeV(dataset):
    spec = config["datasets"][dataset].get("simulate", {})
    if spec.get("kind") != "signal" or "mass_mev" not in spec:
        raise WorkflowError(f"analysis.signal: {dataset!r} is not a simulated A' dataset with mass_mev")
    return spec["mass_mev"] / 1e3


def analysis_targets():
    if not analyses():
        return []
    return [f"{ANALYSIS}/selection/background.json", f"{ANALYSIS}/limit/limit.json"]


def selection_args(*, sidebands):
    """`--selection-*` cut thresholds (and sideband settings) and the `--classify-*` box."""
    args = []
    for name, value in sorted(config["selection"].items()):
        if name.startswith("sideband_") and not sidebands:
            continue
        values = value if isinstance(value, list) else [value]
        args.append(f"--selection-{name.replace('_', '-')} {' '.join(str(v) for v in values)}")
    return " ".join(args + [option_args("classify", "classify")])
