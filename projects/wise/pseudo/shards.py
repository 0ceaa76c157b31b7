"""A gen_pseudo run over a split: shards, resumable progress, the merge and its report.

Each worker labels every N-th image from its shard index and appends the records
to its own parts file (``writer``); whoever finds every shard finished merges them
into one COCO json and a report. Parts are resumed and merged only by the run that
wrote them (``PseudoLabeller.fingerprint``).
"""
from __future__ import annotations

import json
from pathlib import Path

from mmengine.utils import ProgressBar

from ..utils.io import dump_json
from .labeller import RECALL_KS, PseudoLabeller
from .report import summarize
from .writer import PartsFile, iter_records, parts_path, write_coco


def label_shard(labeller: PseudoLabeller, out: Path, shard: int = 0,
                num_shards: int = 1) -> None:
    """Label the shard's images not done yet, one fsynced record each."""
    parts = PartsFile(parts_path(out, shard, num_shards), labeller.fingerprint)
    if parts.restarted:
        print(f'[gen_pseudo] {parts.path}: {parts.restarted}: starting this shard over',
              flush=True)
    todo = [i for i in range(shard, len(labeller), num_shards) if i not in parts.done]
    print(f'[gen_pseudo] shard {shard}/{num_shards}: {len(todo)} images to do, '
          f'{len(parts.done)} done before', flush=True)
    bar = ProgressBar(len(todo))
    try:
        for index in todo:
            parts.append(labeller(index))
            bar.update()
    finally:
        parts.close()
    print()


def merge(labeller: PseudoLabeller, out: Path, num_shards: int, config: str | None = None,
          checkpoint: str | None = None) -> dict:
    """Write the COCO json ``out`` and ``<out>.report.json`` from every shard's parts
    (a DataError names what is missing if a shard has not finished); the report names
    the ``config`` and ``checkpoint`` files and the run's options."""
    run = labeller.fingerprint
    paths = [parts_path(out, i, num_shards) for i in range(num_shards)]
    classes = labeller.classes
    categories = [dict(id=i + 1, name=c) for i, c in enumerate(classes)]
    write_coco(paths, len(labeller), run, categories, out)
    gt_file = run.get('gt_ann_file')
    # peak values under 0 are weak peaks (the quality leaves them out); selection scores
    # (ILC's retrieval scores) may be negative and all count
    score_thr = 0.0 if labeller.instance_score == 'peak' else -float('inf')
    report = summarize(iter_records(paths, len(labeller), run), classes, gt_file, RECALL_KS,
                       score_thr)
    report.update(config=config, checkpoint=checkpoint, checkpoint_sha256=run['checkpoint'],
                  selector=run['selector'], proposals=run['proposals'], oracle=run['oracle'],
                  image_labels=run['image_labels'], seed=run['seed'], gt_ann_file=gt_file)
    report_path = Path(f'{out}.report.json')
    dump_json(report, report_path, indent=2)
    print(json.dumps({k: v for k, v in report.items() if k != 'quality_per_class'}, indent=2))
    print(f'[gen_pseudo] {report["events"].get("instances", 0)} pseudo instances -> {out}; '
          f'report -> {report_path}')
    return report
