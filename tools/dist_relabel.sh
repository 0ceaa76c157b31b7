#!/usr/bin/env bash
# A self-training round's labels with torchrun on one or several machines (each process
# takes every NPROC-th image; the last to finish merges the parts):
#   tools/dist_relabel.sh CONFIG CHECKPOINT NPROC --labels L --previous P --out OUT.json [args...]
# Several machines: NNODES=2 NODE_RANK=0|1 MASTER_ADDR=host0 tools/dist_relabel.sh ...
# (the output folder must then be shared). Without a GPU each process runs on CPU (gloo).
set -euo pipefail
exec bash "$(dirname "$0")/dist_run.sh" relabel.py "$3" "$1" "$2" "${@:4}"
