"""A stage of the chain: its commands, and what it reads and writes.

What a stage reads and writes decides both whether it is fresh (its outputs newer
than its inputs) and what it waits for when stages run side by side
(:func:`~.parallel.dependencies`).
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .paths import ROOT

#: one process's argv; ``['bash', '-c', line]`` where it reads a file's text ($(cat ...))
Command = list[str]
#: commands run side by side (the proposal shards); most steps hold one
Step = list[Command]


@dataclass
class Stage:
    """A named piece of work: its steps run in order, then ``action`` (in this process).

    ``inputs`` / ``outputs`` are paths relative to the checkout (files, or folders whose
    ``*.py`` count); ``work`` is where its records go; ``seed`` is set on the stages run
    once per seed.
    """

    name: str
    steps: list[Step] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    work: str = ''
    seed: int | None = None
    action: Callable[[], None] | None = None
    #: run even when fresh: a check, whose verdict hangs on flags and thresholds that no
    #: record holds (it rewrites its output only when the verdict changes)
    always: bool = False

    @property
    def label(self) -> str:
        return self.name if self.seed is None else f'{self.name} (seed {self.seed})'

    def fresh(self) -> bool:
        """Every output exists and is newer than every input."""
        outs = [ROOT / o for o in self.outputs]
        if not outs or not all(o.exists() for o in outs):
            return False
        newest_in = max((_mtime(ROOT / i) for i in self.inputs), default=0.0)
        return min(o.stat().st_mtime for o in outs) >= newest_in

    def command_lines(self) -> list[str]:
        """The commands as text, the interpreter named ``python`` (a venv moved or
        entered another way runs the same commands)."""
        return [' '.join(map(str, cmd)).replace(sys.executable, 'python')
                for step in self.steps for cmd in step]


def _mtime(path: Path) -> float:
    if path.is_dir():
        return max((p.stat().st_mtime for p in path.rglob('*.py')), default=0.0)
    return path.stat().st_mtime if path.exists() else float('inf')
