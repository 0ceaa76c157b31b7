"""The GPU path's decisions, checked on a CPU machine: which mmcv build ``make env`` makes
(CPU or CUDA ops, for which GPUs), under which cache key, which one-line error stops it,
and how tools start their process group on GPUs."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from projects.wise.utils import launch
from tools.setup import mmcv_plan as mp

from conftest import ROOT

TORCH_ARCHS = ['sm_75', 'sm_80', 'sm_86', 'sm_90', 'sm_100', 'sm_120']  # the cu130 wheel's
CPU_KEY = 'mmcv-2.1.0-torch2.14.1-cpu-cp311'


def facts(**kw) -> mp.Facts:
    """A CPU machine with this project's torch, unless told otherwise."""
    base = dict(torch_version='2.14.1+cu130', torch_cuda='13.0', torch_archs=TORCH_ARCHS,
                py_tag='cp311', nvcc_archs=['7.5', '8.0', '8.6', '8.9', '9.0', '10.0', '12.0'])
    return mp.Facts(**{**base, **kw})


def gpu_machine(**kw) -> mp.Facts:
    return facts(**{**dict(gpus_torch=1, gpus_smi=1, driver='580.65',
                           nvcc='/usr/local/cuda-13.0/bin/nvcc', nvcc_version='13.0'), **kw})


def test_cpu_machine_keeps_its_build_and_cache_key() -> None:
    """A CPU machine must not need nvcc nor rebuild: the key of the wheels cached so far."""
    plan = mp.plan(facts(installed_mmcv='2.1.0'))
    assert (plan.mode, plan.key, plan.ready) == ('cpu', CPU_KEY, True)
    assert not mp.plan(facts()).ready  # no mmcv yet: build


def test_gpu_machine_builds_cuda_ops_for_torchs_gpus_plus_ptx() -> None:
    """Bug: the CUDA ops were built for whatever GPU the build machine had, and cached
    under a key without it; the same wheel then failed on another GPU type."""
    plan = mp.plan(gpu_machine())
    assert plan.mode == 'cuda' and plan.arch_list == '7.5;8.0;8.6;9.0;10.0;12.0+PTX'
    assert plan.key == 'mmcv-2.1.0-torch2.14.1-cu130-sm75-80-86-90-100-120ptx-cp311'
    assert plan.cuda_home == '/usr/local/cuda-13.0'
    one = mp.plan(gpu_machine(env={'TORCH_CUDA_ARCH_LIST': '9.0'}))
    assert one.arch_list == '9.0' and one.key != plan.key and 'sm90' in one.key


def test_cpu_only_mmcv_is_rebuilt_where_a_gpu_is_visible() -> None:
    """Bug: an env made on a login node kept its CPU-only mmcv on the GPU node, where
    RoIAlign then failed on cuda:0."""
    assert not mp.plan(gpu_machine(installed_mmcv='2.1.0', installed_cuda=False)).ready
    assert mp.plan(gpu_machine(installed_mmcv='2.1.0', installed_cuda=True,
                               installed_key=mp.plan(gpu_machine()).key)).ready
    problem = launch.mmcv_ops_problem(True, 'not available')
    assert problem and 'make env' in problem
    assert launch.mmcv_ops_problem(False, 'not available') is None
    assert launch.mmcv_ops_problem(True, '13.0') is None


@pytest.mark.parametrize('env, mode', [({'WISE_CUDA': '1'}, 'cuda'), ({'FORCE_CUDA': '1'}, 'cuda'),
                                       ({}, 'cpu')])
def test_login_node_builds_cuda_ops_when_asked(env: dict, mode: str) -> None:
    machine = facts(nvcc='/usr/local/cuda-13.0/bin/nvcc', nvcc_version='13.0', env=env)
    assert mp.plan(machine).mode == mode


def test_wise_cuda_0_builds_cpu_ops_next_to_a_gpu() -> None:
    assert mp.plan(gpu_machine(env={'WISE_CUDA': '0'})).key == CPU_KEY


@pytest.mark.parametrize('machine, words', [
    (gpu_machine(nvcc=None, nvcc_version=None), ['nvidia-cuda-nvcc==13.0', 'WISE_CUDA=0']),
    (gpu_machine(nvcc_version='12.4'), ['nvcc 12.4', 'CUDA 13']),
    (gpu_machine(torch_cuda=None, torch_version='2.14.1+cpu'), ['CPU-only build']),
    (facts(gpus_smi=2, driver='550.54'), ['driver >= 580', '550.54', 'WISE_CUDA=0']),
    (gpu_machine(env={'TORCH_CUDA_ARCH_LIST': '7.0'}), ['cannot build for 7.0']),
    (gpu_machine(env={'TORCH_CUDA_ARCH_LIST': 'hopper'}), ["'hopper'"]),
    (gpu_machine(env={'WISE_CUDA': 'yes'}), ["WISE_CUDA='yes'"]),
    (gpu_machine(toolkit_headers=False), ['cusparse.h']),
])
def test_a_cuda_build_that_cannot_work_stops_with_what_to_do(machine: mp.Facts,
                                                            words: list[str]) -> None:
    """Bugs: no nvcc gave setup.py's "CUDA_HOME environment variable is not set", nvcc
    12 failed on torch's version check after minutes, a too-old driver silently made a
    CPU env. Each now stops before building, with one line."""
    with pytest.raises(mp.PlanError) as e:
        mp.plan(machine)
    assert '\n' not in str(e.value) and all(w in str(e.value) for w in words), str(e.value)


def test_toolkit_without_cublas_headers_uses_the_venvs_cuda_wheels() -> None:
    """These machines' CUDA 13 toolkit lacks cuBLAS/cuSPARSE/cuSOLVER headers, which
    torch's headers include; torch's own CUDA wheels carry them."""
    inc = '/venv/site-packages/nvidia/cu13/include'
    assert mp.plan(gpu_machine(toolkit_headers=False, wheel_headers=inc)).cpath == inc
    assert mp.plan(gpu_machine()).cpath == ''


def _run_plan(env: dict, script: str = 'tools/setup/mmcv_plan.py') -> subprocess.CompletedProcess:
    return subprocess.run(['bash', script, sys.executable] if script.endswith('.sh')
                          else [sys.executable, script],
                          cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=300)


def _fake_toolkit(root: Path, release: str) -> Path:
    nvcc = root / 'bin/nvcc'
    nvcc.parent.mkdir(parents=True)
    nvcc.write_text(f'#!/bin/sh\ncase "$1" in --version) echo "Cuda compilation tools, '
                    f'release {release}, V{release}.1";; *) echo compute_90;; esac\n')
    nvcc.chmod(0o755)
    return root


def test_a_matching_nvcc_is_preferred_the_venvs_first(tmp_path: Path) -> None:
    """Bug caught: PATH and /usr/local/cuda were tried before the venv's CUDA wheels, so on
    a machine with a CUDA 12 toolkit, pip-installing CUDA 13's nvcc into the venv, as the
    version error says, brought the same error back. A compiler of torch's CUDA major wins,
    the venv's first; with none, the first found is named in the error."""
    site = tmp_path / 'site'
    wheel = _fake_toolkit(site / 'nvidia/cu13', '13.0') / 'bin/nvcc'
    cuda12 = _fake_toolkit(tmp_path / 'cuda-12.4', '12.4') / 'bin/nvcc'
    cuda13 = _fake_toolkit(tmp_path / 'cuda-13.0', '13.0') / 'bin/nvcc'
    path12 = {'PATH': str(cuda12.parent)}
    assert mp.find_nvcc(path12, site, '13.0', system=(cuda12,)) == str(wheel)
    assert mp.find_nvcc({'PATH': str(cuda13.parent)}, site, '13.0') == str(wheel)
    assert mp.find_nvcc(path12, tmp_path / 'no-site', '13.0', system=(cuda13,)) == str(cuda13)
    assert mp.find_nvcc(path12, site, '12.4') == str(cuda12)  # a cu124 torch
    assert mp.find_nvcc(path12, tmp_path / 'no-site', '13.0', system=()) == str(cuda12)
    assert mp.find_nvcc({'PATH': str(tmp_path / 'nothing')}, tmp_path / 'no-site', '13.0',
                        system=()) is None


def test_cuda_home_is_the_only_place_looked_in(tmp_path: Path) -> None:
    """CUDA_HOME is the user's choice: it is used even where the venv has a matching nvcc,
    and a wrong one is refused with advice that works while it is set."""
    site = tmp_path / 'site'
    _fake_toolkit(site / 'nvidia/cu13', '13.0')
    toolkit = _fake_toolkit(tmp_path / 'cuda-12.4', '12.4')
    env = {'PATH': str(tmp_path / 'nothing'), 'CUDA_HOME': str(toolkit)}
    assert mp.find_nvcc(env, site, '13.0') == str(toolkit / 'bin/nvcc')
    with pytest.raises(mp.PlanError, match='point CUDA_HOME at a CUDA 13 toolkit, or unset it'):
        mp.plan(gpu_machine(nvcc=str(toolkit / 'bin/nvcc'), nvcc_version='12.4', env=env))


def test_the_plan_probes_this_machine() -> None:
    """The real probe: it finds the venv's mmcv and torch, so a CPU build is not redone
    (WISE_CUDA=0: on a GPU machine the automatic choice would be CUDA)."""
    proc = _run_plan({'WISE_CUDA': '0', 'FORCE_CUDA': ''})
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split('=', 1) for line in proc.stdout.splitlines())
    assert lines['MMCV_MODE'] == 'cpu' and lines['MMCV_READY'] == '1'
    assert lines['MMCV_KEY'] == f'mmcv-2.1.0-torch{torch.__version__.split("+")[0]}-cpu-' \
        f'cp{sys.version_info[0]}{sys.version_info[1]}'


def test_build_script_reuses_the_wheel_of_its_key(tmp_path: Path) -> None:
    """build_mmcv.sh looks the wheel up under the plan's key: a CUDA wheel for 9.0 is
    found for TORCH_CUDA_ARCH_LIST=9.0 (and nothing is downloaded or compiled)."""
    toolkit = _fake_toolkit(tmp_path / 'cuda', '13.0')
    (toolkit / 'include').mkdir()
    env = {'WISE_CACHE': str(tmp_path / 'cache'), 'WISE_CUDA': '1', 'CUDA_HOME': str(toolkit),
           'TORCH_CUDA_ARCH_LIST': '9.0'}
    proc = _run_plan(env)
    assert proc.returncode == 0, proc.stderr
    key = dict(line.split('=', 1) for line in proc.stdout.splitlines())['MMCV_KEY']
    wheel = tmp_path / 'cache/wheels' / key / 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl'
    wheel.parent.mkdir(parents=True)
    wheel.touch()
    proc = _run_plan(env, 'tools/setup/build_mmcv.sh')
    assert proc.returncode == 0 and proc.stdout.strip() == str(wheel), proc.stderr


def test_build_script_stops_on_a_wrong_nvcc_before_building(tmp_path: Path) -> None:
    toolkit = _fake_toolkit(tmp_path / 'cuda', '12.4')
    env = {'WISE_CACHE': str(tmp_path / 'cache'), 'WISE_CUDA': '1', 'CUDA_HOME': str(toolkit)}
    proc = _run_plan(env, 'tools/setup/build_mmcv.sh')
    assert proc.returncode == 2 and proc.stdout == ''
    assert proc.stderr.strip().count('\n') == 0 and 'nvcc 12.4' in proc.stderr
    assert not (tmp_path / 'cache').exists()  # nothing downloaded, nothing half-built


def test_tools_start_their_process_group_on_their_own_gpu(monkeypatch) -> None:
    """Bug: gen_pseudo started NCCL without setting the device, so every rank's barrier
    ran on cuda:0 and hung after the last image. Each rank must take the GPU of its
    LOCAL_RANK and NCCL, whose barriers run on GPUs."""
    calls = {}
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'set_device', lambda d: calls.setdefault('device', d))
    monkeypatch.setattr(dist, 'is_initialized', lambda: 'backend' in calls)
    monkeypatch.setattr(dist, 'init_process_group',
                        lambda backend, **kw: calls.setdefault('backend', backend))
    monkeypatch.setattr(dist, 'get_rank', lambda: 5)
    monkeypatch.setattr(dist, 'get_world_size', lambda: 8)
    monkeypatch.setenv('RANK', '5')
    monkeypatch.setenv('LOCAL_RANK', '1')
    monkeypatch.setenv('WORLD_SIZE', '8')
    assert launch.init_distributed('pytorch') == (5, 8)
    assert calls == {'device': 1, 'backend': 'nccl'}


def test_cv2_needs_no_libgl() -> None:
    """Bug caught (issue 31, item 2): the env's cv2 is opencv-python's, which links
    libGL.so.1; on a CUDA container image (no libGL) every tool fails at ``import cv2``."""
    from importlib import metadata

    import cv2
    names = {d.metadata['Name'].lower() for d in metadata.distributions()}
    assert 'opencv-python' not in names and 'opencv-python-headless' in names
    binary = next(Path(cv2.__file__).parent.glob('cv2*.so'))
    needed = subprocess.run(['ldd', str(binary)], capture_output=True, text=True, check=True)
    assert 'libGL.so' not in needed.stdout


@pytest.mark.slow
def test_gpu_check_runs_here_every_check_that_needs_no_gpu(tmp_path: Path) -> None:
    """Bug caught: tools/setup/gpu_check.sh failing on its own commands (a config path, an
    option a tool lacks, data it did not make, a log line it looks for), found only on
    the first GPU box, where its minutes are dearest; or a check that passes when its
    tool failed."""
    proc = subprocess.run(['bash', 'tools/setup/gpu_check.sh', str(tmp_path)], cwd=ROOT,
                          env={**os.environ, 'PYTHON': sys.executable, 'OMP_NUM_THREADS': '1'},
                          capture_output=True, text=True, timeout=900)
    lines = [x.split() for x in proc.stdout.splitlines() if x.startswith('[gpu_check] ')]
    verdicts = {words[1]: words[4] for words in lines}
    assert verdicts == dict(cuda_ops='skipped', data='ok', prm='ok', prm_amp='skipped',
                            gen_pseudo='ok', mask_rcnn='ok', test_refine='ok',
                            two_ranks='skipped'), proc.stdout + proc.stderr
    assert proc.returncode == 0
    # a tool that fails is a FAILED line naming its log, and the script exits 1
    (tmp_path / 'wise/last_checkpoint').write_text('/nonexistent.pth')
    broken = subprocess.run(['bash', 'tools/setup/gpu_check.sh', str(tmp_path), '--only',
                             'test_refine'], cwd=ROOT,
                            env={**os.environ, 'PYTHON': sys.executable}, capture_output=True,
                            text=True, timeout=900)
    assert broken.returncode == 1
    assert f'FAILED  test.py exited 1 (log: {tmp_path}/logs/test_refine.log)' in broken.stdout


def test_cuda_ops_built_for_other_gpus_are_rebuilt() -> None:
    """Bug caught (issue 31, item 9): an env whose mmcv was built for sm_90 only counted as
    ready on an A100 (sm_80), where the first RoIAlign fails with "no kernel image"; the
    installed wheel's key now has to be the planned one."""
    only_h100 = mp.plan(gpu_machine(env={'TORCH_CUDA_ARCH_LIST': '9.0'})).key
    for key, ready in ((only_h100, False), (None, False),
                       (mp.plan(gpu_machine(env={'TORCH_CUDA_ARCH_LIST': '8.0'})).key, True)):
        machine = gpu_machine(installed_mmcv='2.1.0', installed_cuda=True, installed_key=key,
                              env={'TORCH_CUDA_ARCH_LIST': '8.0'})
        assert mp.plan(machine).ready is ready, key
