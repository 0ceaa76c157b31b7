#!/usr/bin/env bash
# Create the project's virtual environment and install everything it needs.
# Idempotent: `make` only calls this when requirements, pyproject.toml or this
# script change.
#
# Usage: install_env.sh VENV_DIR
set -euo pipefail
VENV=${1:?usage: install_env.sh VENV_DIR}
[[ $VENV == /* ]] || VENV=$PWD/$VENV
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PYTHON=${PYTHON:-python3}

[[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV"
PY=$VENV/bin/python
PIP=("$PY" -m pip --disable-pip-version-check)

# Build prerequisites first: mmcv's setup.py imports pkg_resources (setuptools<81)
# and compiles against the installed torch.
"${PIP[@]}" install --quiet "setuptools<81" wheel ninja "numpy<2" \
  "$(grep -E '^torch==' "$ROOT/requirements/runtime.txt")" \
  "$(grep -E '^torchvision==' "$ROOT/requirements/runtime.txt")"

# mmcv with CPU or CUDA ops, as mmcv_plan.py decides (a GPU here, or WISE_CUDA=1, wants
# CUDA ops). Where they cannot be built it stops with one line, before anything else.
plan=$("$PY" "$HERE/mmcv_plan.py")
eval "$plan"
if [[ $MMCV_READY != 1 ]]; then
  wheel=$(bash "$HERE/build_mmcv.sh" "$PY")
  "${PIP[@]}" install --quiet --no-deps --force-reinstall "$wheel"
  echo "$MMCV_KEY" > "$VENV/.wise-mmcv-key"  # what the next plan compares its key with
fi
"${PIP[@]}" install --quiet -r "$ROOT/requirements.txt"
# mmengine and mmcv require opencv-python, whose cv2 links libGL.so.1 (absent from CUDA
# container images); the headless build of the pin provides the same cv2 without it.
# Both write into cv2/, so the headless one is put back after the other goes.
if "$PY" -m pip show --quiet opencv-python 2>/dev/null; then
  "${PIP[@]}" uninstall --quiet -y opencv-python
  "${PIP[@]}" install --quiet --no-deps --force-reinstall \
    "$(grep -E '^opencv-python-headless==' "$ROOT/requirements/runtime.txt")"
fi
# The project itself, editable: tools and configs import projects.wise from anywhere.
"${PIP[@]}" install --quiet --no-deps --no-build-isolation -e "$ROOT"
MMCV_MODE=$MMCV_MODE "$PY" - <<'PYEOF'
import os
import mmcv, mmdet, torch
from mmcv.ops import get_compiling_cuda_version
cuda = get_compiling_cuda_version()
if os.environ['MMCV_MODE'] == 'cuda' and cuda == 'not available':
    raise SystemExit('[env] mmcv was installed without its CUDA ops; remove it from the venv and rerun')
ops = 'CPU ops' if cuda == 'not available' else f'CUDA {cuda} ops'
print(f'[env] torch {torch.__version__}, mmcv {mmcv.__version__} ({ops}), mmdet {mmdet.__version__}')
PYEOF
# On a GPU the CUDA ops run once: a wheel built for other GPUs fails here, not at the
# first RoIAlign of a training.
if [[ $MMCV_MODE == cuda ]] && "$PY" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
  "$PY" "$HERE/mmcv_plan.py" --check-ops
fi
