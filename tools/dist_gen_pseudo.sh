#!/usr/bin/env bash
# Pseudo masks with torchrun on one or several machines (each process takes
# every NPROC-th image; the last to finish merges the parts):
#   tools/dist_gen_pseudo.sh CONFIG CHECKPOINT NPROC --out OUT.json --proposals ... [args...]
# Several machines: NNODES=2 NODE_RANK=0|1 MASTER_ADDR=host0 tools/dist_gen_pseudo.sh ...
# (the output folder must then be shared). Without a GPU each process runs on CPU (gloo).
set -euo pipefail
exec bash "$(dirname "$0")/dist_run.sh" gen_pseudo.py "$3" "$1" "$2" "${@:4}"
