"""Let torch>=2.6's ``weights_only`` loader read mmengine checkpoints.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; since torch 2.6
that means the safe unpickler, which refuses the numpy scalars/arrays and the
``HistoryBuffer`` objects mmengine itself stores in ``meta`` and the message
hub. We allow-list exactly those globals (the safe loader stays on, so any
other pickled object is still refused) instead of turning the check off.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

try:  # numpy >= 1.25 moved the scalar reconstructors
    from numpy.core.multiarray import _reconstruct, scalar
except ImportError:  # pragma: no cover - numpy 2
    from numpy._core.multiarray import _reconstruct, scalar


def mmengine_checkpoint_globals() -> list[Any]:
    """The non-tensor globals found in checkpoints written by mmengine runners."""
    dtype_classes = [type(np.dtype(t)) for t in (
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
        np.uint32, np.uint64, np.float16, np.float32, np.float64)]
    return [scalar, _reconstruct, np.ndarray, np.dtype, *dtype_classes, HistoryBuffer]


def allow_mmengine_checkpoints() -> None:
    """Register the globals with torch's safe unpickler (idempotent)."""
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())
