"""Where a run's torchruns go: ``--gpus`` against the GPUs torch sees, and the port and
GPUs of each stage run side by side.

tools/dist_run.sh starts torchrun on ``PORT`` (default 29500) over every GPU it sees,
so two stages side by side with --gpus N > 1 would bind one port and share the first N
GPUs. With --jobs J > 1 each running stage holds one of J slots: slot k's torchrun
listens on PORT + k and, where GPUs are visible, sees the k-th N of them
(``CUDA_VISIBLE_DEVICES``). Without a visible GPU torchrun starts CPU processes with
gloo (utils/launch.py), any number of them, and only the ports matter.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from queue import SimpleQueue

import torch

#: dist_run.sh's torchrun port when ``PORT`` is not set
DEFAULT_PORT = 29500


def visible_gpus() -> list[str]:
    """The GPUs torch sees, as ``CUDA_VISIBLE_DEVICES`` names them (none: CPU only)."""
    count = torch.cuda.device_count()
    listed = os.environ.get('CUDA_VISIBLE_DEVICES')
    if not count:
        return []
    return listed.split(',')[:count] if listed else [str(i) for i in range(count)]


def gpu_problem(gpus: int, jobs: int, visible: int) -> str | None:
    """Why ``--gpus`` with ``--jobs`` cannot run where torch sees ``visible`` GPUs; None
    where it can, and wherever none is visible (CPU processes: any count runs)."""
    if not visible:
        return None
    if gpus > visible:
        return f'--gpus {gpus}, but torch sees {visible} GPU(s) on this machine'
    if gpus > 1 and gpus * jobs > visible:
        return (f'--jobs {jobs} x --gpus {gpus} needs {gpus * jobs} GPUs side by side, but '
                f'torch sees {visible}: use --jobs {visible // gpus}, or fewer --gpus')
    return None


def slot_env(slot: int, gpus: int, devices: Sequence[str], port: int) -> dict[str, str]:
    """The environment of the stage holding ``slot``: its torchrun port and, where GPUs
    are visible, its own ``gpus`` of ``devices``."""
    env = {'PORT': str(port + slot)}
    if devices:
        env['CUDA_VISIBLE_DEVICES'] = ','.join(devices[slot * gpus:(slot + 1) * gpus])
    return env


class Slots:
    """The ``jobs`` places of stages side by side; with ``gpus`` > 1 each is a torchrun
    port and GPU set (one-process stages bind no port and take turns on the GPUs)."""

    def __init__(self, gpus: int, jobs: int, devices: Sequence[str]) -> None:
        port = int(os.environ.get('PORT', DEFAULT_PORT))
        self.envs = [slot_env(k, gpus, devices, port) for k in range(jobs)] \
            if gpus > 1 and jobs > 1 else []
        self._free: SimpleQueue[int] = SimpleQueue()
        for k in range(jobs):
            self._free.put(k)

    def __str__(self) -> str:
        return (f'up to {len(self.envs)} stages side by side, each torchrun on its own '
                'port' + (' and GPUs' if 'CUDA_VISIBLE_DEVICES' in self.envs[0] else '')
                + ': ' + '; '.join(' '.join(f'{k}={v}' for k, v in env.items())
                                   for env in self.envs))

    @contextmanager
    def hold(self) -> Iterator[dict[str, str]]:
        """A free slot's environment while a stage runs in it (empty: nothing to set)."""
        slot = self._free.get()
        try:
            yield self.envs[slot] if self.envs else {}
        finally:
            self._free.put(slot)
