#!/usr/bin/env bash
# Train on a slurm cluster, one task per GPU:
#   GPUS=16 tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]
set -euo pipefail
exec bash "$(dirname "$0")/slurm_run.sh" train.py "$1" "$2" "$3" --work-dir="$4" --launcher=slurm \
    "${@:5}"
