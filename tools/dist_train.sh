#!/usr/bin/env bash
# Train with torchrun on one or several machines:
#   tools/dist_train.sh CONFIG NPROC [train.py args...]
# Several machines: NNODES=2 NODE_RANK=0|1 MASTER_ADDR=host0 tools/dist_train.sh ...
# Without a GPU each process trains on CPU (gloo).
set -euo pipefail
exec bash "$(dirname "$0")/dist_run.sh" train.py "$2" "$1" "${@:3}"
