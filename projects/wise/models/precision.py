"""Float32 islands in a mixed-precision (``--amp``) model: PRM compares neighbouring map
values for equality (peaks) and divides by sums that may be tiny (peak backprop)."""
from __future__ import annotations

import torch
from torch import Tensor


def full_precision(like: Tensor) -> torch.autocast:
    """Autocast switched off on ``like``'s device: inside, ops run in their inputs' dtype,
    so inputs made float32 are computed in float32."""
    return torch.autocast(like.device.type, enabled=False)
