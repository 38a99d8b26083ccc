# Validation against simulation truth (simulated campaigns only): the derived calorimeter
# conditions and the calo output (`na64 validate-calo`; with `calibration.energy_scan`, the ECAL
# resolution and linearity from that energy scan), the tracks (`na64 validate-track`), and
# the SRD electron tag and the event classification (`na64 validate-events`).
# Each writes a JSON of figures with pass flags and its plots under results/<tag>/validation/.

VALIDATION = f"{RESULTS}/validation"


rule validate_calo:
    input:
        scan=lambda w: pairs("calo", CAL["ecal_scan"]),
        muons=lambda w: pairs("calo", CAL["muons"]),
        signal=lambda w: [f for d in SIMULATED_PHYSICS if is_signal(d) for f in pairs("calo", d)],
        physics=lambda w: [f for d in SIMULATED_PHYSICS if not is_signal(d) for f in pairs("calo", d)],
        # [calo, truth] of every run of the ECAL energy-scan dataset ([] without one)
        energy_scan=lambda w: pairs("calo", CAL["energy_scan"]) if CAL.get("energy_scan") else [],
        constants=lambda w: sim_path(CAL["ecal_scan"], simulated_runs(CAL["ecal_scan"])[0], "true_constants.json"),
    output:
        json=f"{VALIDATION}/calorimetry.json",
        plots=report(
            directory(f"{VALIDATION}/calorimetry"),
            patterns=["{name}.png"],
            caption="../report/validation_calo.rst",
            category="Validation",
            subcategory="Calorimetry",
        ),
    log:
        f"{LOGS}/validation/calorimetry.log",
    benchmark:
        f"{BENCH}/validation/calorimetry.tsv"
    params:
        code=code_hash(*CORE_CODE, "recon/validation", "recon/commands/validate_calo.py"),
        options=lambda w, input: validation_options(input),
        energy_scan=lambda w, input: " ".join(
            f"--energy-scan {calo} {truth}" for calo, truth in zip(input.energy_scan[::2], input.energy_scan[1::2])
        ),
        conditions=conditions_args(CALO_KINDS),
    threads: 1
    resources:
        mem_mb=config["resources"]["validate"]["mem_mb"],
        runtime=config["resources"]["validate"]["runtime"],
    conda:
        "../../envs/recon.yaml"
    shell:
        "na64 validate-calo --true-constants {input.constants} {params.options} {params.energy_scan}"
        " --output-json {output.json}"
        " --plots {output.plots} {params.conditions} > {log} 2>&1"


rule validate_track:
    input:
        tracks=lambda w: [f for d in SIMULATED_PHYSICS for f in stage_files("track", d)],
        truth=lambda w: [f for d in SIMULATED_PHYSICS for f in truth_files(d)],
        calo=lambda w: [f for d in SIMULATED_PHYSICS for f in stage_files("calo", d)],
    output:
        json=f"{VALIDATION}/tracking.json",
        plots=report(
            directory(f"{VALIDATION}/tracking"),
            patterns=["{name}.png"],
            caption="../report/validation_track.rst",
            category="Validation",
            subcategory="Tracking",
        ),
    log:
        f"{LOGS}/validation/tracking.log",
    benchmark:
        f"{BENCH}/validation/tracking.tsv"
    params:
        code=code_hash(*CORE_CODE, "recon/validation", "recon/commands/validate_track.py"),
        conditions=conditions_args(TRACK_KINDS),
    threads: 1
    resources:
        mem_mb=config["resources"]["validate"]["mem_mb"],
        runtime=config["resources"]["validate"]["runtime"],
    conda:
        "../../envs/recon.yaml"
    shell:
        "na64 validate-track --tracks {input.tracks} --truth {input.truth} --calo {input.calo}"
        " --output-json {output.json} --plots {output.plots} {params.conditions} > {log} 2>&1"


# the JSON of `validate_events`, for the default target when the campaign is simulated
EVENT_VALIDATION_TARGETS = [f"{VALIDATION}/events.json"] if validates() else []


rule validate_events:
    input:
        events=lambda w: [f"{RESULTS}/{d}/events.parquet" for d in SIMULATED_PHYSICS],
        truth=lambda w: [f"{RESULTS}/{d}/truth.parquet" for d in SIMULATED_PHYSICS],
    output:
        json=f"{VALIDATION}/events.json",
        plots=report(
            directory(f"{VALIDATION}/events"),
            patterns=["{name}.png"],
            caption="../report/validation_events.rst",
            category="Validation",
            subcategory="SRD and classification",
        ),
    log:
        f"{LOGS}/validation/events.log",
    benchmark:
        f"{BENCH}/validation/events.tsv"
    params:
        code=code_hash(
            *CORE_CODE,
            "recon/validation",
            "recon/srd.py",
            "recon/classify.py",
            "recon/commands/validate_events.py",
        ),
        options=option_args("srd", "srd"),
    threads: 1
    resources:
        mem_mb=config["resources"]["validate"]["mem_mb"],
        runtime=config["resources"]["validate"]["runtime"],
    conda:
        "../../envs/recon.yaml"
    shell:
        "na64 validate-events --events {input.events} --truth {input.truth} {params.options}"
        " --output-json {output.json} --plots {output.plots} > {log} 2>&1"
