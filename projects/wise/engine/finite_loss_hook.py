"""Stop training at the first non-finite loss, before anything is saved from it."""
from __future__ import annotations

import math
from typing import Any

import torch
from mmengine.hooks import Hook

from mmdet.registry import HOOKS

from ..errors import NonFiniteLossError


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raise, naming the iteration and the loss terms, when a loss is NaN or inf.

    It runs after every training step at a higher priority than
    ``CheckpointHook``, so the step that went wrong never reaches a checkpoint:
    the last one on disk is from before it, and ``--resume`` starts from there.
    Not mmdet's ``CheckInvalidLossHook``: a bare assert on ``loss`` only; its message is None.
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: dict | None = None) -> None:
        values = {k: _scalar(v) for k, v in (outputs or {}).items() if k.startswith('loss')}
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        if bad:
            terms = ', '.join(f'{k}={v}' for k, v in bad.items())
            raise NonFiniteLossError(
                f'non-finite loss at iteration {runner.iter + 1} ({terms}); training stopped '
                'before any checkpoint of it was written. Lower the learning rate, add '
                'warm-up or gradient clipping, or check the data of this batch.')


def _scalar(v: Any) -> float:
    return v.detach().float().mean().item() if isinstance(v, torch.Tensor) else float(v)
