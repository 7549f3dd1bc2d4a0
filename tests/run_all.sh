#!/usr/bin/env bash
# The whole test suite on a fresh machine (the README's test command; .ci/run calls it):
# installs what the tests need, starts the real local SLURM cluster, runs pytest, stops the cluster.
# Extra arguments go to pytest, e.g. `bash tests/run_all.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."

SLURM_PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server chromium)
if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null || ! command -v munged >/dev/null \
        || ! command -v mariadbd >/dev/null || ! command -v chromium >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "tests: the SLURM tests need Debian packages; run: sudo apt-get install -y --no-install-recommends ${SLURM_PACKAGES[*]}" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${SLURM_PACKAGES[@]}" >/dev/null
fi

# torch first and pinned: an unpinned torch can pull a multi-GB CUDA build.
python3 -m pip install -q torch==2.13.0
python3 -m pip install -q -e ".[test]"

bash slurm/local-cluster.sh up
eval "$(bash slurm/local-cluster.sh env)"  # SLURM_CONF of this checkout's cluster
trap 'bash slurm/local-cluster.sh down' EXIT

export WANDB_MODE=disabled
python3 -m pytest "$@"
