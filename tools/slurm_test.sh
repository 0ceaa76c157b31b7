#!/usr/bin/env bash
# Test on a slurm cluster, one task per GPU:
#   GPUS=16 tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]
set -euo pipefail
exec bash "$(dirname "$0")/slurm_run.sh" test.py "$1" "$2" "$3" "$4" --launcher=slurm "${@:5}"
