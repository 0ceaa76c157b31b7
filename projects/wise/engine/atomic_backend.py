"""Checkpoints that are whole or absent.

mmengine's ``LocalBackend.put`` opens the checkpoint path and writes into it, so a
full disk or a kill mid-write leaves a truncated ``iter_N.pth`` that ``--resume``
later chokes on. This backend writes beside the target and renames into place;
configs select it with ``default_hooks.checkpoint.backend_args``.
"""
from __future__ import annotations

import os
from pathlib import Path

from mmengine.fileio import LocalBackend, register_backend

from ..utils.io import atomic_write


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """``LocalBackend`` whose writes are atomic; a failed write names its file."""

    def put(self, obj: bytes, filepath: str | Path) -> None:
        self._write(obj, filepath)

    def put_text(self, obj: str, filepath: str | Path, encoding: str = 'utf-8') -> None:
        self._write(obj.encode(encoding), filepath)

    @staticmethod
    def _write(data: bytes, filepath: str | Path) -> None:
        try:
            with atomic_write(filepath, 'wb') as f:
                f.write(data)
        except OSError as e:
            if e.filename is None:  # write() errors do not say which file
                raise OSError(e.errno, e.strerror, os.fspath(filepath)) from e
            raise
