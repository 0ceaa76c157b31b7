"""Checkpoints under torch>=2.6: resume and load_from work, arbitrary pickles are refused."""
from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import run_tool


def _scalars(work_dir: Path) -> list[dict]:
    [log] = sorted(work_dir.glob('*/vis_data/scalars.json'))[-1:]
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.fixture(scope='module')
def trained(tiny_full_cfg: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp('train')
    run_tool('tools/train.py', tiny_full_cfg, '--work-dir', work,
             '--cfg-options', 'train_cfg.max_iters=2')
    return work


def test_plain_torch_load_refuses_mmengine_checkpoint(trained: Path) -> None:
    """Guards the premise: without the allow-list torch 2.6+ cannot read these files."""
    code = ('import sys, torch\n'
            f'torch.load({str(trained / "iter_2.pth")!r})\n')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert proc.returncode != 0 and 'Weights only load failed' in proc.stderr


def test_resume_continues_iterations(trained: Path, tiny_full_cfg: Path, tmp_path: Path) -> None:
    work = tmp_path / 'resumed'
    work.mkdir()
    (work / 'iter_2.pth').write_bytes((trained / 'iter_2.pth').read_bytes())
    proc = run_tool('tools/train.py', tiny_full_cfg, '--work-dir', work,
                    '--resume', work / 'iter_2.pth')
    assert 'resumed epoch: 0, iter: 2' in proc.stdout + proc.stderr
    steps = [r['iter'] for r in _scalars(work) if 'loss' in r]
    assert steps == [3, 4]
    ckpt = torch.load(work / 'iter_4.pth', map_location='cpu')  # safe loader, allow-listed
    assert ckpt['meta']['iter'] == 4


def test_load_from_for_testing(trained: Path, tiny_full_cfg: Path, tmp_path: Path) -> None:
    proc = run_tool('tools/test.py', tiny_full_cfg, trained / 'iter_2.pth',
                    '--work-dir', tmp_path)
    out = proc.stdout + proc.stderr
    assert 'Load checkpoint from' in out and 'wise/segm_mAP50' in out


class _Payload:
    """Unpickling this touches a file: stands in for what a malicious checkpoint would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_arbitrary_pickle_is_refused(trained: Path, tiny_full_cfg: Path, tmp_path: Path) -> None:
    marker = tmp_path / 'pwned'
    evil = tmp_path / 'evil.pth'
    ckpt = torch.load(trained / 'iter_2.pth', map_location='cpu')
    ckpt['meta']['payload'] = _Payload(marker)
    with open(evil, 'wb') as f:
        torch.save(ckpt, f, pickle_module=pickle)
    proc = run_tool('tools/test.py', tiny_full_cfg, evil, '--work-dir', tmp_path, check=False)
    assert proc.returncode != 0
    assert 'Weights only load failed' in proc.stderr
    assert not marker.exists()
