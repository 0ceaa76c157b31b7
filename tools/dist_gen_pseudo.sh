#!/usr/bin/env bash
# Pseudo masks with torchrun on one or several machines (each process takes
# every NPROC-th image; rank 0 merges the parts when all are done):
#   tools/dist_gen_pseudo.sh CONFIG CHECKPOINT NPROC --out OUT.json --proposals ... [args...]
# Several machines: NNODES=2 NODE_RANK=0|1 MASTER_ADDR=host0 tools/dist_gen_pseudo.sh ...
# (the output folder must then be shared). Without a GPU each process runs on CPU (gloo).
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PYTHON=${PYTHON:-python}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" \
    --master_port="$PORT" \
    "$ROOT/tools/gen_pseudo.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
