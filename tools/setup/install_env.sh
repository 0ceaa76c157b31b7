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

if ! "$PY" -c 'import mmcv, mmcv.ops' 2>/dev/null; then
  wheel=$(bash "$HERE/build_mmcv.sh" "$PY")
  "${PIP[@]}" install --quiet --no-deps "$wheel"
fi
"${PIP[@]}" install --quiet -r "$ROOT/requirements.txt"
# The project itself, editable: tools and configs import projects.wise from anywhere.
"${PIP[@]}" install --quiet --no-deps --no-build-isolation -e "$ROOT"
"$PY" -c 'import mmcv.ops, mmdet, torch; print(f"[env] torch {torch.__version__}, mmcv {mmcv.__version__}, mmdet {mmdet.__version__}")'
