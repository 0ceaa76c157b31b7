"""A labelling run over a split (gen_pseudo, relabel): shards, resumable progress, the
merge and its report.

Each worker labels every N-th image from its shard index and appends the records
to its own parts file (``writer``); whoever finds every shard finished merges them
into one COCO json and a report. Parts are resumed and merged only by the run that
wrote them (the labeller's ``fingerprint``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from mmengine.utils import ProgressBar

from ..errors import DataError
from ..utils.io import dump_json
from .labeller import RECALL_KS
from .report import summarize
from .writer import PartsFile, iter_records, parts_path, write_coco


class Labeller(Protocol):
    """What a labelling run needs of its labeller (``PseudoLabeller``, ``Relabeller``)."""

    fingerprint: dict[str, Any]  # what the output depends on
    classes: tuple[str, ...]
    quality_thr: float  # the score from which an instance counts in the report's quality

    def __len__(self) -> int: ...

    def __call__(self, index: int) -> dict: ...  # image ``index``'s record


def label_shard(labeller: Labeller, out: Path, shard: int = 0, num_shards: int = 1,
                tool: str = 'gen_pseudo') -> None:
    """Label the shard's images not done yet, one fsynced record each."""
    parts = PartsFile(parts_path(out, shard, num_shards), labeller.fingerprint)
    if parts.restarted:
        print(f'[{tool}] {parts.path}: {parts.restarted}: starting this shard over',
              flush=True)
    todo = [i for i in range(shard, len(labeller), num_shards) if i not in parts.done]
    print(f'[{tool}] shard {shard}/{num_shards}: {len(todo)} images to do, '
          f'{len(parts.done)} done before', flush=True)
    bar = ProgressBar(len(todo))
    try:
        for index in todo:
            parts.append(labeller(index))
            bar.update()
    finally:
        parts.close()
    print()


def merge(labeller: Labeller, out: Path, num_shards: int, config: str | None = None,
          checkpoint: str | None = None, tool: str = 'gen_pseudo') -> dict:
    """Write the COCO json ``out`` and ``<out>.report.json`` from every shard's parts
    (a DataError names what is missing if a shard has not finished); the report names
    the ``config`` and ``checkpoint`` files and the run's options."""
    run = labeller.fingerprint
    paths = [parts_path(out, i, num_shards) for i in range(num_shards)]
    classes = labeller.classes
    categories = [dict(id=i + 1, name=c) for i, c in enumerate(classes)]
    write_coco(paths, len(labeller), run, categories, out)
    gt_file = run.get('gt_ann_file')
    report = summarize(iter_records(paths, len(labeller), run), classes, gt_file, RECALL_KS,
                       labeller.quality_thr)
    options = {k: v for k, v in run.items() if k not in ('config', 'checkpoint')}
    report.update(config=config, checkpoint=checkpoint, checkpoint_sha256=run['checkpoint'],
                  **options)
    report_path = Path(f'{out}.report.json')
    dump_json(report, report_path, indent=2)
    print(json.dumps({k: v for k, v in report.items() if k != 'quality_per_class'}, indent=2))
    print(f'[{tool}] {report["events"].get("instances", 0)} pseudo instances -> {out}; '
          f'report -> {report_path}')
    return report


def label_split(labeller: Labeller, out: Path, shard: int, num_shards: int, tool: str,
                config: str, checkpoint: str) -> None:
    """A tool's run: its shard of the images, then the merge if every shard is done.
    Each worker (a ``--shard`` process or a torchrun rank) writes its last record before
    it looks, so the last to finish always merges (two at once write the same bytes, each
    atomically); no worker waits at a collective that a long labelling could time out."""
    label_shard(labeller, out, shard, num_shards, tool)
    try:
        merge(labeller, out, num_shards, config, checkpoint, tool)
    except DataError as e:  # another shard has not finished
        print(f'[{tool}] shard {shard}/{num_shards} done; not merged yet: {e}')
