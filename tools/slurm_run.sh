#!/usr/bin/env bash
# srun one of the project's tools on a slurm cluster, one task per GPU
# (slurm_train.sh and slurm_test.sh call this; they pass --launcher=slurm):
#   GPUS=16 tools/slurm_run.sh TOOL.py PARTITION JOB_NAME [tool args...]
# The tasks meet on MASTER_PORT = PORT if set, else 29500 + the job id % 10000, so
# jobs sharing a node do not collide. PYTHON: default the checkout's .venv/bin/python
# (make env), else python on PATH.
set -euo pipefail
TOOL=$1
PARTITION=$2
JOB_NAME=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z ${PYTHON:-} ]]; then
    if [[ -x $ROOT/.venv/bin/python ]]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python; fi
fi

# the job id is known in the tasks only (srun makes the job)
# shellcheck disable=SC2016,SC2086
srun --partition="$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    $SRUN_ARGS \
    bash -c 'export MASTER_PORT=${PORT:-$((29500 + SLURM_JOB_ID % 10000))}; exec "$@"' task \
    "$PYTHON" -u "$ROOT/tools/$TOOL" "${@:4}"
