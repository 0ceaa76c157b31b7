"""Run a project tool in a fresh process forked from a server that has imported
``projects.wise`` once (multiprocessing's forkserver).

Each run is still its own process running the tool's real ``__main__`` with the
given argv, environment and working directory, and its exit status, stdout and
stderr are the tool's; only the ~6 s of importing torch, mmcv and mmdet are paid
once per test worker instead of once per run. The server itself holds no test
state: it forks from a clean interpreter, never from pytest.
"""
from __future__ import annotations

import io
import multiprocessing as mp
import os
import runpy
import sys
import tempfile
from pathlib import Path

_CTX = mp.get_context('forkserver')
_CTX.set_forkserver_preload(['projects.wise', 'tool_process'])


def _run(tool: str, argv: list[str], env: dict, cwd: str, out: str, err: str) -> None:
    """In the forked child: become ``python tool argv...`` and exit with its status."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_TRUNC)
        os.dup2(target, fd)
        os.close(target)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, 'w', closefd=False), line_buffering=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, 'w', closefd=False), line_buffering=True)
    if 'OMP_NUM_THREADS' in env:  # torch read the server's value at import
        import torch
        torch.set_num_threads(int(env['OMP_NUM_THREADS']))
    sys.argv = [tool, *argv]
    sys.path[0] = os.path.dirname(os.path.abspath(tool))
    try:
        runpy.run_path(tool, run_name='__main__')
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def run_forked(tool: str, argv: list[str], env: dict, cwd: Path,
               timeout: float) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``tool`` run with ``argv`` in a forked process;
    a run past ``timeout`` seconds is killed (status -9)."""
    with tempfile.TemporaryDirectory() as tmp:
        out, err = os.path.join(tmp, 'out'), os.path.join(tmp, 'err')
        Path(out).touch()
        Path(err).touch()
        proc = _CTX.Process(target=_run, args=(tool, argv, env, str(cwd), out, err))
        proc.start()
        proc.join(timeout)
        if proc.exitcode is None:
            proc.kill()
            proc.join()
        return proc.exitcode, Path(out).read_text(), Path(err).read_text()
