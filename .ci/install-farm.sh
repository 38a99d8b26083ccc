#!/usr/bin/env bash
# Installs what the farm tests (tests/farm/) need: a single-node SLURM from Debian's packages
# (slurmctld, slurmd, slurm-client = slurm-wlm) and munge, iproute2 (`ip`, for the test cluster's
# private network namespace), plus the Snakemake executor plugins (the project's `farm` extra).
# Idempotent: does nothing that is already done. Never starts a daemon: the test harness starts
# its own, with all their state under a temporary directory (tests/farm/slurm_cluster.py).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(slurm-wlm slurmctld slurmd slurm-client munge iproute2)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
    if [ "$(id -u)" -ne 0 ]; then
        SUDO=sudo
    else
        SUDO=
    fi
    # Keep the packages' maintainer scripts from starting munged/slurmd/slurmctld as services.
    created_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 755 /usr/sbin/policy-rc.d
        created_policy=1
    fi
    cleanup() { if [ -n "$created_policy" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi; }
    trap cleanup EXIT
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    echo "install-farm: installed ${missing[*]}"
else
    echo "install-farm: slurm and munge already installed"
fi

# The executor plugins (the project's `farm` extra).
if ! python -c "import snakemake_executor_plugin_slurm, snakemake_executor_plugin_htcondor" 2>/dev/null; then
    python -m pip install --quiet -e '.[farm]'
fi

export PATH="$PATH:/usr/sbin:/sbin"
for exe in slurmctld slurmd munged srun sbatch squeue sinfo ip; do
    command -v "$exe" >/dev/null || { echo "install-farm: $exe not found after install" >&2; exit 1; }
done
