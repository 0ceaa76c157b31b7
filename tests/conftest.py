"""Shared fixtures: a tiny built-in dataset in VOC layout, converted to COCO json,
configs that train the demo models on it in seconds (tests/data/), and a PRM trained
once.

The data and the PRM are built once per test run, also under pytest-xdist: the
first worker to need them builds them under a file lock in the run's shared
temporary folder, the others wait and reuse them.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from filelock import FileLock
from mmengine.config import Config

from tool_process import run_forked

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / 'tests/data'  # the tests' configs

SHAPES_CLASSES = ('circle', 'square', 'triangle', 'star', 'cross')


def run_tool(*args: str | os.PathLike, check: bool = True, env: dict | None = None,
             timeout: float = 600, wrapper: Sequence[str] = (),
             preexec_fn: Callable[[], None] | None = None) -> subprocess.CompletedProcess:
    """Run a project tool the way a user does, from the repository root (``wrapper``:
    a command that runs it, e.g. setpriv; ``preexec_fn``: e.g. a resource limit).

    A python tool runs in a process forked from a server that has imported the
    package (tool_process.py); with a wrapper or preexec_fn, in a new interpreter.
    """
    full_env = {**os.environ, 'OMP_NUM_THREADS': '1', **(env or {})}
    args = tuple(map(str, args))
    if wrapper or preexec_fn or not args[0].endswith('.py'):
        proc = subprocess.run([*wrapper, sys.executable, *args], cwd=ROOT, env=full_env,
                              capture_output=True, text=True, timeout=timeout,
                              preexec_fn=preexec_fn)
    else:
        code, out, err = run_forked(args[0], list(args[1:]), full_env, ROOT, timeout)
        proc = subprocess.CompletedProcess(args, code, out, err)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n'
                             f'{proc.stderr[-5000:]}')
    return proc


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str,
               build: Callable[[Path], None]) -> Path:
    """``name``'s folder, filled by ``build`` once per test run (all xdist workers)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'):
        base = base.parent  # shared by the workers of this run
    path = base / f'shared-{name}'
    with FileLock(f'{path}.lock'):
        if not (path / '.done').exists():
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir()
            build(path)
            (path / '.done').touch()
    return path


def trained_once(tmp_path_factory: pytest.TempPathFactory, cfg: Path, checkpoint: str) -> Path:
    """``checkpoint`` of a training of ``cfg``, run once per test run (all xdist workers)."""
    work = built_once(tmp_path_factory, cfg.stem,
                      lambda work: run_tool('tools/train.py', cfg, '--work-dir', work))
    return work / checkpoint


def _make_shapes(root: Path) -> None:
    run_tool('tools/make_shapes_dataset.py', root, '--num-train', '12', '--num-val', '4',
             '--num-test', '0', '--image-size', '96', '--seed', '1')
    run_tool('tools/dataset_converters/voc_to_coco.py', root, '--classes-file',
             root / 'classes.txt', '--splits', 'train', 'val')


@pytest.fixture(scope='session')
def shapes_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 train + 4 val images of 96 px, converted to COCO json."""
    return built_once(tmp_path_factory, 'shapes', _make_shapes)


def child_cfg(base: str | os.PathLike, path: Path, **keys) -> Path:
    """Write ``path``: a config that inherits ``base`` and sets ``keys``, plain Python values
    (mmengine merges a dict into the base's; a list or any other value replaces it)."""
    path.write_text(''.join(f'{k} = {v!r}\n' for k, v in {'_base_': str(base), **keys}.items()))
    return path


@pytest.fixture(scope='session')
def tiny_data(shapes_root: Path) -> Iterator[Path]:
    """The tiny data, where the tests/data configs read it: $WISE_TEST_DATA, set for the
    session (the tools it runs inherit it; every xdist worker sets the same folder)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('WISE_TEST_DATA', str(shapes_root))
        yield shapes_root


@pytest.fixture(scope='session')
def tiny_full_cfg(tiny_data: Path) -> Path:
    """The demo's fully supervised Mask R-CNN on the tiny data: 96 px, batch 2, 4
    iterations, trained on the ground-truth instances."""
    return DATA / 'tiny_full.py'


@pytest.fixture(scope='session')
def tiny_full_ckpt(tiny_full_cfg: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Mask R-CNN checkpoint from the tiny config's 4 iterations (weak, but real)."""
    return trained_once(tmp_path_factory, tiny_full_cfg, 'iter_4.pth')


@pytest.fixture(scope='session')
def tiny_solov2_cfg(tiny_full_cfg: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's WISE SOLOv2 (a single-stage segmenter, no boxes) on the tiny data: the
    tiny Mask R-CNN config with the demo SOLOv2 config's model, metric settings and hooks."""
    solo = Config.fromfile(ROOT / 'configs/wise/demo/solov2_r18_shapes_pseudo.py').to_dict()
    metric = {k: v for k, v in solo['val_evaluator'].items() if k != 'ann_file'}
    return child_cfg(tiny_full_cfg, tmp_path_factory.mktemp('cfg') / 'tiny_solov2.py',
                     model=dict(solo['model'], _delete_=True), val_evaluator=metric,
                     test_evaluator=metric, custom_hooks=solo['custom_hooks'])


@pytest.fixture(scope='session')
def tiny_prm_cfg(tiny_data: Path) -> Path:
    """The demo PRM config on the tiny data: 64 px, batch 4, 2 epochs."""
    return DATA / 'tiny_prm.py'


@pytest.fixture(scope='session')
def tiny_prm_ckpt(tiny_prm_cfg: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PRM checkpoint from 2 epochs of the tiny config (weak, but real)."""
    return trained_once(tmp_path_factory, tiny_prm_cfg, 'epoch_2.pth')


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test on the built-in data (it trains or runs tools) is ``slow``."""
    for item in items:
        if 'shapes_root' in getattr(item, 'fixturenames', ()):
            item.add_marker(pytest.mark.slow)
