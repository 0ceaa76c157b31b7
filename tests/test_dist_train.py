"""tools/dist_train.sh really trains with 2 CPU processes (torchrun + gloo + DDP)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, child_cfg

pytestmark = pytest.mark.slow  # torchrun with 2 processes

PROBE = '''
import hashlib, os
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmdet.registry import HOOKS


@HOOKS.register_module()
class RankProbeHook(Hook):
    """Records, per rank, every step taken and a digest of the final weights."""

    def __init__(self, out_dir):
        self.out_dir = out_dir

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        ids = ",".join(str(s.img_id) for s in data_batch["data_samples"])
        with open(os.path.join(self.out_dir, f"rank{get_rank()}.log"), "a") as f:
            f.write(f"{runner.iter + 1} {ids}\\n")

    def after_train(self, runner):
        model = runner.model.module if hasattr(runner.model, "module") else runner.model
        h = hashlib.sha1()
        for p in model.parameters():
            h.update(p.detach().cpu().numpy().tobytes())
        with open(os.path.join(self.out_dir, f"rank{get_rank()}.sha1"), "w") as f:
            f.write(h.hexdigest())
'''


# (config fixture, schedule override, steps per rank, the one checkpoint)
CASES = {
    'mask-rcnn': ('tiny_full_cfg', dict(train_cfg=dict(max_iters=3),
                                        default_hooks=dict(checkpoint=dict(interval=3))),
                  3, 'iter_3.pth'),
    # 12 images over 2 ranks with batch 4: 2 steps per rank in one epoch; BatchNorm
    # training and sync_bn on, as PRM + Density's configs have them (on CPU SyncBN would
    # stop the first step: the launcher leaves it off)
    'prm': ('tiny_prm_cfg', dict(train_cfg=dict(max_epochs=1), sync_bn='torch',
                                 model=dict(backbone=dict(norm_eval=False))),
            2, 'epoch_1.pth'),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_dist_train_two_cpu_processes(case: str, request: pytest.FixtureRequest,
                                      tmp_path: Path) -> None:
    fixture, schedule, steps, ckpt = CASES[case]
    (tmp_path / 'rank_probe.py').write_text(PROBE)
    cfg = child_cfg(request.getfixturevalue(fixture), tmp_path / 'dist.py',
                    custom_imports=dict(imports=['projects.wise', 'rank_probe'],
                                        allow_failed_imports=False),
                    custom_hooks=[dict(type='RankProbeHook', out_dir=str(tmp_path))], **schedule)
    work = tmp_path / 'work'
    env = {**os.environ, 'PYTHON': sys.executable, 'PORT': '29531',
           'PYTHONPATH': str(tmp_path)}
    proc = subprocess.run(['bash', 'tools/dist_train.sh', str(cfg), '2', '--work-dir', str(work)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-5000:]
    logs = {r: (tmp_path / f'rank{r}.log').read_text().split('\n')[:-1] for r in (0, 1)}
    for r in (0, 1):
        assert [int(line.split()[0]) for line in logs[r]] == list(range(1, steps + 1))
    # Each rank saw its own shard of the data...
    assert logs[0] != logs[1]
    # ...yet DDP kept the weights identical, and one checkpoint was written.
    assert (tmp_path / 'rank0.sha1').read_text() == (tmp_path / 'rank1.sha1').read_text()
    assert sorted(p.name for p in work.glob('*.pth')) == [ckpt]

