"""What made a stage's outputs: its commands, its configs as resolved and the source
code that ran them, as hashes in the stage's record.

A stage is reused only when all three are what they would be now; outputs with no
record (made before records existed, by hand, or by another tool) are made again, so
no table or benchmark quietly reads a training that other code or settings produced.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable
from typing import Any

from .paths import ROOT
from .stage import Stage

#: the code a stage's commands run; the pipeline (package and CLI) only writes those
#: commands, which the record holds word for word
SOURCES = ('projects/wise', 'tools')
NOT_RUN_BY_STAGES = ('projects/wise/pipeline', 'tools/pipeline.py')
#: mmengine resolves ``mmdet::`` bases through pkg_resources, which is not thread-safe;
#: stages side by side check their configs from threads of one process
_CONFIG_LOCK = threading.Lock()


def _digest(chunks: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
        h.update(b'\0')
    return h.hexdigest()[:16]


def source_hash() -> str:
    """The package and tools' code, file by file (names and contents)."""
    files = sorted(p for root in SOURCES for p in (ROOT / root).rglob('*')
                   if p.suffix in ('.py', '.sh') and p.is_file()
                   and not any(p.is_relative_to(ROOT / x) for x in NOT_RUN_BY_STAGES))
    return _digest(chunk for p in files
                   for chunk in (str(p.relative_to(ROOT)).encode(), p.read_bytes()))


def config_hash(path: str) -> str:
    """A config with its bases resolved: an edit to a base counts, a comment does not."""
    from mmengine.config import Config
    with _CONFIG_LOCK:
        cfg = Config.fromfile(ROOT / path)
    return _digest([json.dumps(cfg.to_dict(), sort_keys=True, default=str).encode()])


def configs_of(stage: Stage) -> list[str]:
    """The stage's inputs that are configs (the tools and package are source)."""
    return [i for i in stage.inputs if i.endswith('.py') and (ROOT / i).is_file()
            and not i.startswith(SOURCES)]


def provenance(stage: Stage) -> dict[str, Any]:
    """The stage's record as it would be if it ran now (hashes only)."""
    return dict(commands=stage.command_lines(),
                configs={c: config_hash(c) for c in configs_of(stage)},
                source=source_hash())


def stale_because(made_by: Any, now: dict[str, Any]) -> str | None:
    """Why outputs made as ``made_by`` says are not what the stage would make now, or
    None when they are."""
    if not isinstance(made_by, dict) or 'source' not in made_by:
        return 'no record of what made its outputs'
    if made_by.get('commands') != now['commands']:
        return 'its commands changed since it ran'
    changed = [c for c, h in now['configs'].items() if made_by.get('configs', {}).get(c) != h]
    if changed or set(made_by.get('configs', {})) != set(now['configs']):
        return f'its config changed since it ran ({", ".join(changed) or "another set"})'
    if made_by['source'] != now['source']:
        return 'the package or tools source changed since it ran'
    return None


def stamped(now: dict[str, Any], seconds: float, commit: str) -> dict[str, Any]:
    """The record written after a run: what made it, when, at which commit."""
    return dict(now, seconds=round(seconds, 1), commit=commit,
                date=time.strftime('%Y-%m-%d %H:%M'))
