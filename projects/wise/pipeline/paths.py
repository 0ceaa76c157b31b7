"""The checkout the pipeline runs in: its tools and configs, found from this package.

The pipeline calls the checkout's thin CLIs (``tools/*.py``) and configs
(``configs/wise/``), so it looks for the folder holding both above this package
rather than trusting a fixed depth.
"""
from __future__ import annotations

from pathlib import Path


def _checkout() -> Path:
    here = Path(__file__).resolve()
    for folder in here.parents:
        if (folder / 'tools' / 'train.py').is_file() and (folder / 'configs' / 'wise').is_dir():
            return folder
    raise RuntimeError(f'{here}: no checkout with tools/train.py and configs/wise/ above this '
                       'package; the pipeline runs from a clone of the project')


#: the checkout: the pipeline's commands run here, and its relative paths start here
ROOT = _checkout()
#: the project's configs
CONFIGS = ROOT / 'configs' / 'wise'
