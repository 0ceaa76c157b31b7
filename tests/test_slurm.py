"""tools/slurm_*.sh: what they run, read from a fake ``srun`` that prints its arguments
and runs the task as slurm does (``SLURM_JOB_ID`` set), and a fake interpreter that
prints its ``MASTER_PORT`` and arguments."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from conftest import ROOT

SRUN = '''#!/usr/bin/env bash
echo "srun $*"
while [[ $1 == -* ]]; do  # srun's own options (-p NAME: two words)
    [[ $1 == -? ]] && shift
    shift
done
SLURM_JOB_ID=123456 exec "$@"
'''
PYTHON = '''#!/usr/bin/env bash
echo "$0 MASTER_PORT=$MASTER_PORT $*"
'''
#: 29500 + 123456 % 10000
JOB_PORT = 32956


def _executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def _slurm(tmp_path: Path, script: str, *args: str, venv: bool = True,
           **env: str) -> list[str]:
    """The output of ``tools/<script>`` copied into a checkout of its own (with a
    ``.venv`` or not), with the fake srun and a fake ``python`` on PATH."""
    root = tmp_path / 'repo'
    (root / 'tools').mkdir(parents=True, exist_ok=True)
    for f in ROOT.glob('tools/slurm_*.sh'):
        shutil.copy(f, root / 'tools')
    if venv:
        _executable(root / '.venv/bin/python', PYTHON)
    _executable(tmp_path / 'bin/srun', SRUN)
    _executable(tmp_path / 'bin/python', PYTHON)
    base = {k: v for k, v in os.environ.items()
            if k not in ('PYTHON', 'PORT', 'SCALE_SCHEDULE', 'GPUS', 'SRUN_ARGS')}
    proc = subprocess.run(['bash', str(root / 'tools' / script), *args], capture_output=True,
                          text=True, timeout=60,
                          env={**base, 'PATH': f"{tmp_path / 'bin'}:{os.environ['PATH']}",
                               **env})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_slurm_train_keeps_the_recipe_on_its_own_port_with_the_venvs_python(tmp_path: Path):
    """Bug caught: every job's tasks met on port 29500 (MASTER_PORT unset: mmengine's
    default), so two jobs on one node collided; the tasks ran whatever ``python`` PATH
    found (none, or another env, without an activated venv); --scale-schedule was left
    to the user (16 tasks trained the PRM at 16 x the config's batch)."""
    repo = tmp_path / 'repo'
    srun, task = _slurm(tmp_path, 'slurm_train.sh', 'gpu', 'prm', 'cfg.py', 'work', '--amp',
                        GPUS='16')
    assert {'--job-name=prm', '--gres=gpu:8', '--ntasks=16'} <= set(srun.split())
    assert task == (f'{repo}/.venv/bin/python MASTER_PORT={JOB_PORT} -u {repo}/tools/train.py '
                    'cfg.py --work-dir=work --launcher=slurm --scale-schedule --amp')
    _, task = _slurm(tmp_path, 'slurm_train.sh', 'gpu', 'prm', 'cfg.py', 'work', PORT='31000',
                     SCALE_SCHEDULE='0')
    assert task == (f'{repo}/.venv/bin/python MASTER_PORT=31000 -u {repo}/tools/train.py '
                    'cfg.py --work-dir=work --launcher=slurm')


def test_slurm_test_runs_python_on_path_without_a_venv(tmp_path: Path) -> None:
    """Bug caught: a test job on the fixed port 29500; or the tool not found without a
    venv (the default must fall back to python on PATH), or PYTHON not obeyed."""
    repo, bin_python = tmp_path / 'repo', tmp_path / 'bin/python'
    _, task = _slurm(tmp_path, 'slurm_test.sh', 'gpu', 'test', 'cfg.py', 'ckpt.pth', '--refine',
                     venv=False)
    assert task == (f'{bin_python} MASTER_PORT={JOB_PORT} -u {repo}/tools/test.py cfg.py '
                    'ckpt.pth --launcher=slurm --refine')
    other = _executable(tmp_path / 'other/python', PYTHON)
    _, task = _slurm(tmp_path, 'slurm_test.sh', 'gpu', 'test', 'cfg.py', 'ckpt.pth',
                     PYTHON=str(other))
    assert task.startswith(f'{other} MASTER_PORT={JOB_PORT} -u {repo}/tools/test.py ')
