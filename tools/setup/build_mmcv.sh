#!/usr/bin/env bash
# Build (once) and print the path of an mmcv 2.1.0 wheel with compiled ops.
#
# Why: PyPI has only mmcv's source archive, and its setup.py pins -std=c++14/17,
# while PyTorch >= 2.10 headers need C++20. We download the sdist, raise the
# flag, and build with the venv's torch (no build isolation, so it compiles
# against exactly that torch). What to build (CPU or CUDA ops, for which GPUs) is
# decided by mmcv_plan.py, which also names the cache folder: the wheel is cached
# outside the repository, keyed by mmcv / torch / CUDA versions and the GPU list,
# so a build runs once per machine. An interrupted build resumes where it stopped.
#
# Usage: build_mmcv.sh PYTHON   (the venv's interpreter)
set -euo pipefail
PY=${1:?usage: build_mmcv.sh PYTHON}
[[ $PY == /* ]] || PY=$PWD/$PY  # we cd into the source tree below
HERE=$(cd "$(dirname "$0")" && pwd)
export MMCV_VERSION=${MMCV_VERSION:-2.1.0}
CACHE_ROOT=${WISE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wise}

plan=$("$PY" "$HERE/mmcv_plan.py")  # exits with its one-line reason if CUDA cannot be built
eval "$plan"
DEST="$CACHE_ROOT/wheels/$MMCV_KEY"
shopt -s nullglob
cached=("$DEST"/mmcv-*.whl)
if (( ${#cached[@]} )); then
  echo "${cached[0]}"
  exit 0
fi

SRC="$CACHE_ROOT/build/$MMCV_KEY/mmcv-$MMCV_VERSION"
if [[ $MMCV_MODE == cuda ]]; then
  export FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=$MMCV_ARCH_LIST CUDA_HOME=$MMCV_CUDA_HOME
  export PATH=$MMCV_CUDA_HOME/bin:$PATH
  [[ -z $MMCV_CPATH ]] || export CPATH=$MMCV_CPATH${CPATH:+:$CPATH}
  # CUDA from PyPI wheels has libcudart.so.13 but no libcudart.so for the linker's -lcudart.
  if ! compgen -G "$MMCV_CUDA_HOME/lib*/libcudart.so" > /dev/null; then
    runtime=$(compgen -G "$MMCV_CUDA_HOME/lib*/libcudart.so.[0-9]*" | head -n1)
    [[ -n $runtime ]] || { echo "[build_mmcv] no libcudart in $MMCV_CUDA_HOME: pip install nvidia-cuda-runtime" >&2; exit 2; }
    mkdir -p "$CACHE_ROOT/build/$MMCV_KEY/lib"
    ln -sf "$runtime" "$CACHE_ROOT/build/$MMCV_KEY/lib/libcudart.so"
    export LIBRARY_PATH=$CACHE_ROOT/build/$MMCV_KEY/lib${LIBRARY_PATH:+:$LIBRARY_PATH}
  fi
  echo "[build_mmcv] building mmcv $MMCV_VERSION with CUDA ops for $MMCV_ARCH_LIST" \
       "($MMCV_REASON; nvcc in $MMCV_CUDA_HOME): about 1 h per GPU architecture on 2 CPU cores" >&2
else
  export CUDA_VISIBLE_DEVICES= FORCE_CUDA=0  # mmcv's setup.py builds CUDA ops wherever a GPU shows
  echo "[build_mmcv] building mmcv $MMCV_VERSION with CPU ops ($MMCV_REASON);" \
       "about 14 min on 2 CPU cores" >&2
fi
[[ -f $SRC/.patched ]] && echo "[build_mmcv] resuming the build in $SRC" >&2
if [[ ! -f $SRC/.patched ]]; then
  rm -rf "$SRC" && mkdir -p "$SRC"
  "$PY" -m pip download --quiet --no-deps --no-binary :all: -d "$SRC/.." "mmcv==$MMCV_VERSION" >&2
  tar -xzf "$SRC/../mmcv-$MMCV_VERSION.tar.gz" -C "$SRC/.."
  sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' "$SRC/setup.py"
  grep -q -- '-std=c++20' "$SRC/setup.py" || { echo "[build_mmcv] could not patch $SRC/setup.py" >&2; exit 1; }
  touch "$SRC/.patched"
fi

export MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)}
# In-tree build: ninja's objects stay in $SRC/build, so a rerun compiles only what is missing.
(cd "$SRC" && "$PY" -m pip wheel --no-build-isolation --no-deps -w "$SRC/dist" . >&2)
mkdir -p "$DEST"
# Rename into place atomically so an interrupted build never leaves a wheel behind.
built=("$SRC"/dist/mmcv-*.whl)
cp "${built[0]}" "$DEST/.partial.whl"
mv "$DEST/.partial.whl" "$DEST/$(basename "${built[0]}")"
rm -rf "$CACHE_ROOT/build/$MMCV_KEY"
echo "$DEST/$(basename "${built[0]}")"
