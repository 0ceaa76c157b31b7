"""Stop training at the first non-finite loss, before anything is saved from it."""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.distributed as dist
from mmengine.dist import get_comm_device, get_rank, get_world_size, is_distributed
from mmengine.hooks import Hook

from mmdet.registry import HOOKS

from ..errors import NonFiniteLossError


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raise, naming the iteration, the ranks and the loss terms, when a loss is NaN or inf.

    It runs after every training step at a higher priority than
    ``CheckpointHook``, so the step that went wrong never reaches a checkpoint:
    the last one on disk is from before it, and ``--resume`` starts from there.
    Under DDP every rank raises when any rank's loss is not finite: the bad rank's
    gradient was averaged into every rank's weights, and rank 0, which saves, may
    have a finite loss of its own.
    Not mmdet's ``CheckInvalidLossHook``: a bare assert on ``loss`` only; its message is None.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self) -> None:
        self._last_check: dist.Work | None = None

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: dict | None = None) -> None:
        values = {k: _scalar(v) for k, v in (outputs or {}).items() if k.startswith('loss')}
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        ranks = self._ranks_with(bool(bad))
        if ranks:
            world = get_world_size()
            where = f' on rank {", ".join(map(str, ranks))}' if world > 1 else ''
            terms = f' ({", ".join(f"{k}={v}" for k, v in bad.items())})' if bad else ''
            stopped = f'all {world} ranks stopped' if world > 1 else 'training stopped'
            raise NonFiniteLossError(
                f'non-finite loss at iteration {runner.iter + 1}{where}{terms}; {stopped} '
                'before any checkpoint of it was written. Lower the learning rate, add '
                'warm-up or gradient clipping, or check the data of this batch.')

    def _ranks_with(self, flag: bool) -> list[int]:
        """The ranks whose ``flag`` is set, known to every rank: one all-reduce of a flag
        per rank under torch.distributed, the flag itself in a single process."""
        if not is_distributed():
            return [0] if flag else []
        flags = torch.zeros(get_world_size(), dtype=torch.int32, device=get_comm_device())
        flags[get_rank()] = int(flag)
        # Held until the next check: the last reference to a collective's work drops its
        # tensors, which takes the GIL. On a gloo worker thread, while the interpreter
        # exits right after the raise below, that aborts the process (SIGABRT).
        self._last_check = dist.all_reduce(flags, async_op=True)
        self._last_check.wait()
        return flags.nonzero().flatten().tolist()


def _scalar(v: Any) -> float:
    return v.detach().float().mean().item() if isinstance(v, torch.Tensor) else float(v)
