#!/usr/bin/env bash
# Train on a slurm cluster, one task per GPU, the config's one-process recipe kept on
# GPUS tasks (--scale-schedule, as pipeline.py --gpus trains; docs/voc.md);
# SCALE_SCHEDULE=0 trains the config as written on every task (e.g. --auto-scale-lr):
#   GPUS=16 tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]
set -euo pipefail
SCALE=--scale-schedule
if [[ ${SCALE_SCHEDULE:-1} == 0 ]]; then
    SCALE=
fi
# shellcheck disable=SC2086
exec bash "$(dirname "$0")/slurm_run.sh" train.py "$1" "$2" "$3" --work-dir="$4" --launcher=slurm \
    $SCALE "${@:5}"
