"""The package's house rules, read from the source: what a reviewer would otherwise
have to catch by eye."""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

#: the code that may import the package's modules
TREES = ('projects', 'tools', 'bench', 'tests', 'configs')


def _sources() -> list[Path]:
    return sorted(p for tree in TREES for p in (ROOT / tree).rglob('*.py')
                  if '.venv' not in p.parts)


def _parsed() -> dict[Path, ast.Module]:
    return {p: ast.parse(p.read_text(), str(p)) for p in _sources()}


def _private(name: str) -> bool:
    return name.startswith('_') and not name.startswith('__')


def _ours(node: ast.ImportFrom) -> bool:
    """An import from the project's own code (not numpy's, say)."""
    return node.level > 0 or (node.module or '').split('.')[0] in (*TREES, 'conftest')


def test_no_module_imports_another_modules_private_names() -> None:
    """Bug caught: a module reaching into another's helpers (counting_metric.py took
    prm_metrics.py's ``_by_image``; tests drove the pipeline through ``_run_stage``), so
    a rename inside one module breaks another that nothing says depends on it."""
    found = [f'{p.relative_to(ROOT)}:{node.lineno}: {alias.name}'
             for p, tree in _parsed().items() for node in ast.walk(tree)
             if isinstance(node, ast.ImportFrom) and _ours(node)
             for alias in node.names if _private(alias.name)]
    assert not found, found


def test_no_test_or_benchmark_loads_a_file_by_path() -> None:
    """Bug caught: tests and bench loading tools/pipeline.py by file path (a second
    module object beside the one the tools import, private names as its API); they
    import the package, or a tool as ``tools.<name>``."""
    found = [str(p.relative_to(ROOT)) for p in _sources()
             if p.parts[len(ROOT.parts)] in ('tests', 'bench')
             and 'spec_from_file_location' in p.read_text() and p.name != 'test_layout.py']
    assert not found, found


def test_registries_and_errors_each_live_in_one_module() -> None:
    """Bug caught: a registry or an error class defined beside its first user (three
    registries in three files, ``DataError`` in utils/io.py), where the next one is
    not looked for and a second, unrelated copy appears."""
    registries, errors = [], []
    for p, tree in _parsed().items():
        if p.parts[len(ROOT.parts)] != 'projects':
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'Registry':
                registries.append(p.name)
            if isinstance(node, ast.ClassDef) and any(
                    getattr(b, 'id', '').endswith(('Error', 'Exception')) for b in node.bases):
                errors.append(f'{p.name}: {node.name}')
    assert set(registries) == {'registry.py'} and len(registries) == 3, registries
    assert {e.split(':')[0] for e in errors} == {'errors.py'}, errors
