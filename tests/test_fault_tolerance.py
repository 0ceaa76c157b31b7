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

from conftest import ROOT, run_tool


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
