"""Committed results, and the documents that quote them.

``tools/pipeline.py PRESET --seeds ... --publish`` copies the run's table (every seed's
figures, the means and sds) and its stages' records (commit, date, the hashes of what
made them) into ``bench/tables/<preset>.json``, then writes each block of README.md and
docs/*.md between ``<!-- results:<preset> -->`` and ``<!-- /results:<preset> -->`` as
that file's table. A block ``<!-- bench:FILE.NAME -->`` is benchmark NAME's rows in
``bench/FILE.json`` (``bench/run.py`` writes them and rewrites the blocks). A test
keeps documents and files in step, so no table in them is typed by hand.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..errors import DataError
from ..utils.io import atomic_write
from .paths import ROOT
from .runner import RECORDS, read_records
from .self_training import choice_lines, rounds_lines
from .sweep import sweep_lines
from .table import difference_lines, table_lines

TABLES = ROOT / 'bench' / 'tables'
DOCUMENTS = ('README.md', 'docs/*.md')
#: a results file's ``kind`` -> its markdown: a preset's table, the variant sweep's, the
#: choice of a self-training round's options
RENDERERS = {'wise': table_lines, 'sweep': sweep_lines, 'relabel_choice': choice_lines,
             'round_weights': rounds_lines}
#: ``<!-- results:NAME.VIEW -->``: another view of a results file
VIEWS = {'differences': difference_lines}
BLOCK = re.compile(r'(<!-- (results|bench):([\w.-]+) -->\n)(.*?)(<!-- /\2:\3 -->)', re.S)


def publish(name: str, work: Path, seeds: Sequence[int]) -> Path:
    """``bench/tables/<name>.json`` from the seeded run in ``work``; the documents'
    blocks of it rewritten."""
    results = work / 'results.json'
    if not seeds or not results.is_file():
        raise DataError(f'{results}: --publish takes a finished run with --seeds (a table '
                        'of every seed)')
    table = json.loads(results.read_text())
    table['records'] = _records(work, seeds, table.get('variants'))
    out = TABLES / f'{name}.json'
    with atomic_write(out) as f:
        json.dump(table, f, indent=1)
    render_documents()
    return out


def render_documents() -> list[Path]:
    """Rewrite every document's blocks from the committed files; the ones changed."""
    changed = []
    for path in documents():
        text = path.read_text()
        new = rendered(text, path)
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed


def _records(work: Path, seeds: Sequence[int],
             variants: Iterable[str] | None = None) -> dict[str, dict]:
    """The stages' records of the run's seeds under ``work``, by folder: 'shared',
    'seed0', ...; a sweep's, of its ``variants`` only: 'sweep3', 'sweep3/seed0', ..."""
    wanted = {f'seed{s}' for s in seeds}
    tops = {'.'} if variants is None else set(variants)
    out = {}
    for path in sorted(work.rglob(RECORDS)):
        folder = path.parent.relative_to(work)
        top = folder.parts[0] if variants is not None and folder.parts else '.'
        if top in tops and (not folder.name.startswith('seed') or folder.name in wanted):
            out[folder.as_posix() if folder.parts else 'shared'] = read_records(path)
    return out


def documents() -> list[Path]:
    return sorted(p for pattern in DOCUMENTS for p in ROOT.glob(pattern))


def rendered(text: str, where: Path) -> str:
    """``text`` with each results block written from its committed table."""
    def block(m: re.Match) -> str:
        lines = bench_lines(m[3], where) if m[2] == 'bench' else results_lines(m[3], where)
        return m[1] + '\n'.join(lines) + '\n' + m[5]
    return BLOCK.sub(block, text)


def results_lines(key: str, where: Path) -> list[str]:
    """The committed table ``bench/tables/<name>.json`` (``key``: NAME or NAME.VIEW),
    rendered by its kind or as the view."""
    name, _, view = key.partition('.')
    table = TABLES / f'{name}.json'
    if not table.is_file():
        raise DataError(f'{where}: a results block of {name!r}, but {table} does not '
                        f'exist (tools/pipeline.py {name} --seeds ... --publish)')
    result = json.loads(table.read_text())
    kind = result.get('kind', 'wise')
    if view and (view not in VIEWS or kind != 'wise'):
        raise DataError(f'{where}: no view {view!r} of {table} (a preset table\'s views: '
                        f'{", ".join(VIEWS)})')
    return (VIEWS[view] if view else RENDERERS[kind])(result)


def bench_lines(key: str, where: Path) -> list[str]:
    """Benchmark NAME's rows of ``bench/FILE.json`` (``key``: FILE.NAME), with the
    commit and date of the run that measured them."""
    stem, _, name = key.rpartition('.')
    path = TABLES.parent / f'{stem}.json'
    run = json.loads(path.read_text()) if path.is_file() else {}
    rows = run.get('results', {}).get(name)
    if not rows:
        raise DataError(f'{where}: a bench block of {name!r}, but {path} holds no such rows '
                        f'(bench/run.py --only {name} --out bench/{stem})')
    env = run['env']
    lines = ['| figure | value | target | met |', '|---|---|---|---|']
    lines += [f"| {r['name']} | {r['value']} {r['unit']} | {r['target']} | "
              f"{'-' if r['ok'] is None else 'yes' if r['ok'] else '**no**'} |" for r in rows]
    link = os.path.relpath(TABLES.parent / f'{stem}.md', where.parent)
    return [*lines, '', f"*bench `{name}`, commit {env['commit']}, {env['date']} "
                        f"([bench/{stem}.md]({link}))*"]


def stale_documents() -> list[str]:
    """The documents whose results blocks differ from the committed tables."""
    texts = {p: p.read_text() for p in documents()}
    return [str(p.relative_to(ROOT)) for p, text in texts.items() if rendered(text, p) != text]
