# NA64 invisible-mode reconstruction and analysis workflow.
#
#   snakemake --cores all                      # the embedded default (config.yaml)
#   snakemake --cores 32 --configfile my.yaml  # your datasets
#
# The rules only call `na64 <stage>`; the physics lives in the `recon` package.

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/decode.smk"
include: "workflow/rules/calibrate.smk"
include: "workflow/rules/calorimetry.smk"
include: "workflow/rules/tracking.smk"
include: "workflow/rules/classify.smk"
include: "workflow/rules/validation.smk"
include: "workflow/rules/snapshot.smk"
include: "workflow/rules/analysis_common.smk"
include: "workflow/rules/analysis.smk"


rule all:
    default_target: True
    input:
        all_targets(),
        EVENT_VALIDATION_TARGETS,
        SNAPSHOT_TARGETS,
        analysis_targets(),
