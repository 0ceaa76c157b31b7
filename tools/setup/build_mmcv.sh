#!/usr/bin/env bash
# Build (once) and print the path of an mmcv 2.1.0 wheel with compiled ops.
#
# Why: PyPI has only mmcv's source archive, and its setup.py pins -std=c++14/17,
# while PyTorch >= 2.10 headers need C++20. We download the sdist, raise the
# flag, and build with the venv's torch (no build isolation, so it compiles
# against exactly that torch). The wheel is cached outside the repository,
# keyed by mmcv / torch / CUDA versions, so the ~14 min CPU build runs once per
# machine. Where CUDA is usable (GPU visible and nvcc on PATH) the CUDA ops are
# built too.
#
# Usage: build_mmcv.sh PYTHON   (the venv's interpreter)
set -euo pipefail
PY=${1:?usage: build_mmcv.sh PYTHON}
[[ $PY == /* ]] || PY=$PWD/$PY  # we cd into the source tree below
MMCV_VERSION=${MMCV_VERSION:-2.1.0}
CACHE_ROOT=${WISE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wise}

read -r TORCH_V CUDA_TAG < <("$PY" - <<'PYEOF'
import shutil, torch
cuda = torch.version.cuda if (torch.cuda.is_available() and shutil.which('nvcc')) else None
print(torch.__version__.split('+')[0], f'cu{cuda.replace(".", "")}' if cuda else 'cpu')
PYEOF
)
PY_TAG=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
DEST="$CACHE_ROOT/wheels/mmcv-$MMCV_VERSION-torch$TORCH_V-$CUDA_TAG-$PY_TAG"
shopt -s nullglob
cached=("$DEST"/mmcv-*.whl)
if (( ${#cached[@]} )); then
  echo "${cached[0]}"
  exit 0
fi

echo "[build_mmcv] building mmcv $MMCV_VERSION for torch $TORCH_V ($CUDA_TAG); about 14 min on 2 CPU cores" >&2
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$PY" -m pip download --quiet --no-deps --no-binary :all: -d "$WORK" "mmcv==$MMCV_VERSION" >&2
tar -xzf "$WORK"/mmcv-"$MMCV_VERSION".tar.gz -C "$WORK"
SRC="$WORK/mmcv-$MMCV_VERSION"
sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' "$SRC/setup.py"
grep -q -- '-std=c++20' "$SRC/setup.py" || { echo "[build_mmcv] could not patch $SRC/setup.py" >&2; exit 1; }

export MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)}
if [[ $CUDA_TAG != cpu ]]; then export FORCE_CUDA=1; fi
(cd "$SRC" && "$PY" -m pip wheel --no-build-isolation --no-deps -w "$WORK/dist" . >&2)
mkdir -p "$DEST"
# Rename into place atomically so an interrupted build never leaves a wheel behind.
built=("$WORK"/dist/mmcv-*.whl)
cp "${built[0]}" "$DEST/.partial.whl"
mv "$DEST/.partial.whl" "$DEST/$(basename "${built[0]}")"
echo "$DEST/$(basename "${built[0]}")"
