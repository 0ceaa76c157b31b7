#!/usr/bin/env bash
# The GPU path on a GPU box with the env built (make env), offline, in minutes:
#   bash tools/setup/gpu_check.sh [OUT]     # one line a check; default work_dirs/gpu_check
# Exits 1 when a check failed (its log is under OUT/logs/).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
exec "$PY" "$ROOT/tools/setup/gpu_check.py" "$@"
