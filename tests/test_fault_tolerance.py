"""Training that goes wrong stops cleanly: a NaN loss never reaches a checkpoint, a full
disk or read-only work dir is one line and leaves earlier outputs whole, kill -9 resumes."""
from __future__ import annotations

import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import projects.wise  # noqa: F401  (lets torch.load read mmengine checkpoints)

from conftest import ROOT, child_cfg, run_tool


def test_finite_loss_hook_names_the_bad_terms() -> None:
    from projects.wise.engine import FiniteLossHook
    from projects.wise.errors import NonFiniteLossError
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


NAN_ON_ONE_RANK = '''
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmdet.registry import HOOKS


@HOOKS.register_module()
class NanBatchHook(Hook):
    """Makes one rank's batch of one iteration all NaN pixels."""

    def __init__(self, rank, iteration):
        self.rank, self.iteration = rank, iteration

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if get_rank() == self.rank and runner.iter + 1 == self.iteration:
            data_batch["inputs"] = [torch.full(x.shape, float("nan")) for x in data_batch["inputs"]]
'''


def test_nan_loss_on_one_rank_stops_every_rank_before_a_checkpoint(tiny_full_cfg: Path,
                                                                    tmp_path: Path) -> None:
    """Bug caught: FiniteLossHook looked at its own rank's loss only. A NaN batch on rank
    1 (whose gradient DDP averages into every rank's weights) stopped rank 1, while rank
    0, whose loss was finite, went on and saved the poisoned weights as iter_2.pth.

    The two ranks are started as torchrun starts them (RANK, WORLD_SIZE, MASTER_*; gloo
    on CPU), each on its own, so that each one's exit status and last line are its own:
    status 1, not SIGABRT from a gloo thread outliving the interpreter.
    """
    (tmp_path / 'nan_batch.py').write_text(NAN_ON_ONE_RANK)
    cfg = child_cfg(tiny_full_cfg, tmp_path / 'nan.py',
                    custom_imports=dict(imports=['projects.wise', 'nan_batch'],
                                        allow_failed_imports=False),
                    custom_hooks=[dict(type='NanBatchHook', rank=1, iteration=2)],
                    train_cfg=dict(max_iters=3), default_hooks=dict(checkpoint=dict(interval=1)))
    work = tmp_path / 'work'
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': f'{ROOT}:{tmp_path}',
           'MASTER_ADDR': '127.0.0.1', 'MASTER_PORT': '29553', 'WORLD_SIZE': '2'}
    errs = [tmp_path / f'rank{r}.err' for r in (0, 1)]
    ranks = []
    try:
        for r, err in enumerate(errs):
            with err.open('w') as f:
                ranks.append(subprocess.Popen(
                    [sys.executable, 'tools/train.py', str(cfg), '--launcher', 'pytorch',
                     '--work-dir', str(work)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=f,
                    env={**env, 'RANK': str(r), 'LOCAL_RANK': str(r)}))
        for p in ranks:
            p.wait(timeout=300)
    finally:
        for p in ranks:
            p.kill()
            p.wait()
    assert sorted(p.name for p in work.glob('*.pth')) == ['iter_1.pth']  # none after the NaN
    assert (work / 'last_checkpoint').read_text().strip().endswith('iter_1.pth')
    for p, err in zip(ranks, errs):
        assert p.returncode == 1, err.read_text()[-3000:]
        last = err.read_text().strip().splitlines()[-1]
        assert last.startswith('train.py: error: non-finite loss at iteration 2 on rank 1'), last


def _scalars(work: Path) -> list[dict]:
    [log] = sorted(work.glob('*/vis_data/scalars.json'))[-1:]
    return [json.loads(line) for line in log.read_text().splitlines() if '"loss"' in line]


def test_kill_9_then_resume_continues_the_schedule(tiny_full_cfg: Path, tmp_path: Path) -> None:
    cfg = tiny_full_cfg.with_name('tiny_warmup.py')  # 8 iterations of warmup, each saved
    straight = tmp_path / 'straight'
    run_tool('tools/train.py', cfg, '--work-dir', straight)
    lr = {r['iter']: r['lr'] for r in _scalars(straight)}
    assert sorted(lr) == list(range(1, 9))

    work = tmp_path / 'killed'
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    proc = subprocess.Popen([sys.executable, 'tools/train.py', str(cfg), '--work-dir', str(work)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        last = work / 'last_checkpoint'
        if last.exists() and last.read_text().strip().endswith('iter_3.pth'):
            break
        time.sleep(0.05)
    assert proc.poll() is None, 'finished before it could be killed'
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = int(Path((work / 'last_checkpoint').read_text().strip()).stem.split('_')[1])
    assert 3 <= done < 8

    out = run_tool('tools/train.py', cfg, '--work-dir', work, '--resume')
    assert f'resumed epoch: 0, iter: {done}' in out.stdout + out.stderr
    resumed = _scalars(work)
    assert [r['iter'] for r in resumed] == list(range(done + 1, 9))  # no step lost or repeated
    for r in resumed:  # the warm-up schedule goes on where it was, not from the start
        assert r['lr'] == pytest.approx(lr[r['iter']], rel=1e-6)
        assert math.isfinite(r['loss'])
    assert torch.load(work / 'iter_8.pth', map_location='cpu')['meta']['iter'] == 8


def _file_size_limit(limit: int) -> Callable[[], None]:
    """A preexec_fn under which no file may grow past ``limit`` bytes: a full disk."""
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_disk_full_at_a_checkpoint_keeps_the_last_good_one(tiny_full_cfg: Path,
                                                           tmp_path: Path) -> None:
    run_tool('tools/train.py', tiny_full_cfg, '--work-dir', tmp_path, '--cfg-options',
             'train_cfg.max_iters=2')
    good = tmp_path / 'iter_2.pth'
    good_bytes = good.read_bytes()
    proc = run_tool('tools/train.py', tiny_full_cfg, '--work-dir', tmp_path, '--resume',
                    '--cfg-options', 'train_cfg.max_iters=4', check=False,
                    preexec_fn=_file_size_limit(len(good_bytes) // 2))
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f'train.py: error: cannot write {tmp_path}/iter_4.pth: '
                           'File too large; earlier outputs are untouched'), last
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == \
        ['iter_2.pth', 'last_checkpoint', 'tiny_full.py']  # no torn iter_4.pth, no temporary file
    assert good.read_bytes() == good_bytes
    assert (tmp_path / 'last_checkpoint').read_text().strip() == str(good)

    out = run_tool('tools/train.py', tiny_full_cfg, '--work-dir', tmp_path, '--resume',
                   '--cfg-options', 'train_cfg.max_iters=4')  # space again: rerun goes on
    assert 'resumed epoch: 0, iter: 2' in out.stdout + out.stderr
    assert torch.load(tmp_path / 'iter_4.pth', map_location='cpu')['meta']['iter'] == 4


# Root ignores permission bits; without these capabilities it is held to them.
NO_DAC = ('--inh-caps=-dac_override,-dac_read_search',
          '--bounding-set=-dac_override,-dac_read_search')


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which('setpriv') is None,
                    reason='root needs setpriv to be refused a read-only folder')
@pytest.mark.parametrize('tool', ['train', 'test'])
def test_read_only_work_dir_is_one_clear_line(tool: str, tiny_full_cfg: Path,
                                              tmp_path: Path) -> None:
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'earlier.log').write_text('an earlier output')
    work.chmod(0o555)
    ckpt = [tmp_path / 'missing.pth'] if tool == 'test' else []
    wrapper = ('setpriv', *NO_DAC) if os.geteuid() == 0 else ()
    try:
        proc = run_tool(f'tools/{tool}.py', tiny_full_cfg, *ckpt, '--work-dir', work,
                        check=False, wrapper=wrapper)
    finally:
        work.chmod(0o755)
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f'{tool}.py: error: cannot write {work}/') \
        and 'Permission denied' in last, last
    assert [p.name for p in work.iterdir()] == ['earlier.log']
    assert (work / 'earlier.log').read_text() == 'an earlier output'
