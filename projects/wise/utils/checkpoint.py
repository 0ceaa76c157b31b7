"""Let torch>=2.6's ``weights_only`` loader read mmengine checkpoints.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; since torch 2.6
that means the safe unpickler, which refuses what mmengine itself stores in
``meta`` and the message hub: numpy scalars, arrays and dtypes, ``HistoryBuffer``
objects, and ``getattr`` (a ``HistoryBuffer`` pickles its statistics methods
as ``getattr(HistoryBuffer, 'mean')``). We allow-list exactly those globals
instead of turning the check off. ``getattr`` is harmless there: the safe
unpickler only ever calls allow-listed callables, so an attribute it fetches
cannot be invoked unless it is one of them. Any other pickled object is still
refused.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

try:  # numpy < 2
    from numpy.core.multiarray import _reconstruct, scalar
except ImportError:  # pragma: no cover - numpy 2 renamed numpy.core
    from numpy._core.multiarray import _reconstruct, scalar


def mmengine_checkpoint_globals() -> list[Any]:
    """The non-tensor globals in checkpoints written by mmengine runners.

    Unpickling a numpy dtype also rebuilds its class (``Float64DType``...), so
    the numeric dtype classes are listed with ``np.dtype``.
    """
    dtype_classes = [type(np.dtype(t)) for t in (
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
        np.uint32, np.uint64, np.float16, np.float32, np.float64)]
    return [scalar, _reconstruct, np.ndarray, np.dtype, *dtype_classes, HistoryBuffer, getattr]


def allow_mmengine_checkpoints() -> None:
    """Register the globals with torch's safe unpickler (idempotent)."""
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())
