"""A config's one-process training recipe, kept on N processes (``--scale-schedule``).

Batch sizes are per process, so N GPUs see N times the batch of the config. The
recipe written for one process is kept in what it means:

- epoch-based loops (the PRM: batch 16, 20 epochs) keep the total batch: each of the
  N processes takes 1/N of it, at the same lr;
- iteration-based loops (Mask R-CNN: the paper's 50K iterations of 1 image at lr
  0.00125) keep the images seen: 1/N of the iterations (and of every interval and
  iteration-based scheduler bound) at N times the lr, the linear scaling rule.
"""
from __future__ import annotations

import math
import os

from mmengine.config import Config

from ..errors import OptionError


def world_size(launcher: str) -> int:
    """Processes the launcher starts, read before the process group exists."""
    if launcher == 'slurm':
        return int(os.environ.get('SLURM_NTASKS', 1))
    if launcher in ('pytorch', 'mpi'):
        return int(os.environ.get('WORLD_SIZE', 1))
    return 1


def scale_schedule(cfg: Config, processes: int) -> str:
    """Rescale ``cfg`` in place for ``processes``; return a line saying what runs."""
    loop = cfg.train_cfg.get('type', '')
    batch = int(cfg.train_dataloader.batch_size)
    lr = cfg.optim_wrapper.optimizer.lr
    if cfg.get('auto_scale_lr', {}).get('enable', False):
        raise OptionError('--scale-schedule and --auto-scale-lr both change the lr; use one')
    if 'IterBased' in loop:
        return _scale_iterations(cfg, processes, batch, lr)
    if batch % processes:
        raise OptionError(f'the total batch {batch} does not split over {processes} '
                          f'processes; use a process count that divides it')
    cfg.train_dataloader.batch_size = batch // processes
    return (f'schedule: {processes} processes x batch {batch // processes} = the '
            f"config's batch {batch}, lr {lr:g}, {cfg.train_cfg.get('max_epochs')} epochs")


def _scale_iterations(cfg: Config, n: int, batch: int, lr: float) -> str:
    def fewer(value: int) -> int:
        return max(1, math.ceil(value / n))

    iters = cfg.train_cfg.max_iters
    cfg.train_cfg.max_iters = fewer(iters)
    if 'val_interval' in cfg.train_cfg:
        cfg.train_cfg.val_interval = fewer(cfg.train_cfg.val_interval)
    checkpoint = cfg.get('default_hooks', {}).get('checkpoint')
    if checkpoint and not checkpoint.get('by_epoch', True) and 'interval' in checkpoint:
        checkpoint.interval = fewer(checkpoint.interval)
    for sched in cfg.get('param_scheduler') or []:
        if not sched.get('by_epoch', True):
            for key in ('begin', 'end'):
                if key in sched and sched[key] is not None and sched[key] > 0:
                    sched[key] = fewer(sched[key])
    cfg.optim_wrapper.optimizer.lr = lr * n
    return (f'schedule: {n} processes x batch {batch} for {cfg.train_cfg.max_iters} '
            f'iterations at lr {lr * n:g} = the config\'s {iters} iterations of batch '
            f'{batch} at lr {lr:g} (same images, lr scaled linearly)')
