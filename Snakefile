# NA64 invisible-mode reconstruction and analysis workflow.
#
#   snakemake --cores all                      # the embedded default (config.yaml)
#   snakemake --cores 32 --configfile my.yaml  # your datasets
#
# The rules only call `na64 <stage>`; the physics lives in the `recon` package.

import gc

from snakemake.utils import min_version, validate

min_version("9.0")

# Snakemake keeps ~20 kB of Python objects per job while it builds the DAG (1 GB at 40 000 jobs),
# and Python's cyclic garbage collector, at its default thresholds, rescans that growing heap
# again and again. Rarer collections while the workflow is parsed and the DAG built (same peak
# memory), the default ones again when jobs start: `snakemake -n -q` at 10 000 chunks takes
# 41.7 s of CPU instead of 49.9 s (docs/farm.md, "DAG build time").
GC_THRESHOLDS = gc.get_threshold()
gc.set_threshold(100_000, 1_000, 1_000)


onstart:
    gc.set_threshold(*GC_THRESHOLDS)


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
include: "workflow/rules/chain.smk"
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
