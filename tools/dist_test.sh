#!/usr/bin/env bash
# Test with torchrun on one or several machines:
#   tools/dist_test.sh CONFIG CHECKPOINT NPROC [test.py args...]
# Several machines: NNODES=2 NODE_RANK=0|1 MASTER_ADDR=host0 tools/dist_test.sh ...
# Without a GPU each process runs on CPU (gloo).
set -euo pipefail
exec bash "$(dirname "$0")/dist_run.sh" test.py "$3" "$1" "$2" "${@:4}"
