# Calibration conditions derived from the pedestal and calibration datasets of the config:
# sadc_pedestals -> pulse_template -> {ecal, hcal, counter}_calibration, each a condition file
# under results/<tag>/conditions/ with the configured version and run range, plus a plot and
# a JSON summary under results/<tag>/calibration/.

CAL = config.get("calibration", {})
CAL_PLOTS = f"{RESULTS}/calibration"

# kind -> (`na64 derive` kind, config key of the input dataset, conditions it needs)
DERIVATIONS = {
    "strip_pedestals": ("strip-pedestals", "pedestals", ()),
    "sadc_pedestals": ("sadc-pedestals", "pedestals", ()),
    "pulse_template": ("pulse-templates", "ecal_scan", ("sadc_pedestals",)),
    "ecal_calibration": ("ecal-calibration", "ecal_scan", ("sadc_pedestals", "pulse_template")),
    "hcal_calibration": ("hcal-calibration", "muons", ("sadc_pedestals", "pulse_template")),
    "counter_calibration": ("counter-calibration", "ecal_scan", ("sadc_pedestals", "pulse_template")),
}


# the code each derivation runs (an edit elsewhere does not rerun it)
DERIVATION_CODE = {kind: "recon/calo" for kind in DERIVATIONS} | {"strip_pedestals": "recon/tracking/strip_pedestals.py"}


def calibration_outputs():
    if not DERIVES:
        return []
    return [derived_condition(k) for k in DERIVATIONS] + [
        f"{CAL_PLOTS}/{k}_{calibration_version(k)}.{ext}" for k in DERIVATIONS for ext in ("png", "summary.json")
    ]


for _kind, (_cli, _dataset_key, _needs) in (DERIVATIONS.items() if DERIVES else ()):

        rule:
            name:
                f"derive_{_kind}"
            input:
                digits=digits_files(CAL[_dataset_key]),
                muons=digits_files(CAL["muons"]) if _kind == "counter_calibration" else [],
                muon_scan=digits_files(CAL["ecal_muon_scan"]) if _kind == "ecal_calibration" and CAL.get("ecal_muon_scan") else [],
                needs=[derived_condition(k) for k in _needs],
            output:
                condition=derived_condition(_kind),
                plot=report(
                    f"{CAL_PLOTS}/{_kind}_{calibration_version(_kind)}.png",
                    caption="../report/calibration.rst",
                    category="Calibration",
                ),
                summary=f"{CAL_PLOTS}/{_kind}_{calibration_version(_kind)}.summary.json",
            log:
                f"{LOGS}/derive/{_kind}.log",
            benchmark:
                f"{BENCH}/derive/{_kind}.tsv"
            params:
                code=code_hash(*CORE_CODE, DERIVATION_CODE[_kind], "recon/commands/derive.py"),
                cli=_cli,
                muons=lambda w, input: f"--muons {' '.join(input.muons)}" if input.muons else "",
                muon_scan=lambda w, input: f"--muon-scan {' '.join(input.muon_scan)}" if input.muon_scan else "",
                version=calibration_version(_kind),
                valid_runs=" ".join(str(r) for r in CAL["valid_runs"]),
                conditions=conditions_args(_needs),
            threads: 1
            resources:
                mem_mb=config["resources"]["derive"]["mem_mb"],
                runtime=config["resources"]["derive"]["runtime"],
            conda:
                "../../envs/recon.yaml"
            shell:
                "na64 derive {params.cli} {input.digits} {params.muons} {params.muon_scan} --version {params.version}"
                f" --valid-runs {{params.valid_runs}} --root {DERIVED} --plots {CAL_PLOTS}"
                " {params.conditions} > {log} 2>&1"
