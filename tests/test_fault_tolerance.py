"""Training that goes wrong stops cleanly: a NaN loss never reaches a checkpoint."""
from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from conftest import run_tool


def test_finite_loss_hook_names_the_bad_terms() -> None:
    from projects.wise.engine import FiniteLossHook, NonFiniteLossError
    hook = FiniteLossHook()
    runner = SimpleNamespace(iter=6)
    hook.after_train_iter(runner, 0, outputs=dict(loss=torch.tensor(1.5), acc=torch.tensor(90.)))
    with pytest.raises(NonFiniteLossError, match=r'iteration 7 \(loss=nan, loss_mask=inf\)'):
        hook.after_train_iter(runner, 0, outputs=dict(
            loss=torch.tensor(math.nan), loss_cls=torch.tensor(0.3),
            loss_mask=torch.tensor(math.inf), acc=torch.tensor(math.nan)))


def test_nan_loss_stops_training_before_a_checkpoint(tiny_full_cfg: Path, tmp_path: Path) -> None:
    # std 0 in the data preprocessor makes every input inf/NaN: the first loss is NaN
    proc = run_tool('tools/train.py', tiny_full_cfg, '--work-dir', tmp_path, '--cfg-options',
                    'model.data_preprocessor.std=[0.0,0.0,0.0]',
                    'default_hooks.checkpoint.interval=1', check=False)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('train.py: error: non-finite loss at iteration 1 (loss=nan'), last
    assert not list(tmp_path.glob('*.pth'))
