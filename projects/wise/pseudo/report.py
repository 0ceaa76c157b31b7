"""gen_pseudo's report: what happened to every image, and how good the masks are.

Quality is measured exactly as the test set is (``VOCInstanceMetric``: mAP at
IoU 0.25/0.5/0.75 and ABO, void ignored) with the pseudo masks as
predictions, where a ground-truth instances json exists for the split.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from ..evaluation import VOCInstanceMetric

MAX_LISTED_ERRORS = 20


def summarize(records: Iterable[dict], classes: Sequence[str], gt_ann_file: str | None,
              recall_ks: Sequence[int], score_thr: float = 0.0) -> dict:
    """One pass over the image records of a finished run (category id = label + 1);
    the quality counts the instances scoring ``score_thr`` or more."""
    events: Counter = Counter()
    errors: list[str] = []
    recall_hits = np.zeros(len(recall_ks), np.int64)
    recall_gts = 0
    seconds = Counter()
    metric = None
    if gt_ann_file:
        metric = VOCInstanceMetric(ann_file=gt_ann_file, metric='segm', score_thr=score_thr)
        metric.dataset_meta = dict(classes=tuple(classes))
    for r in records:
        events.update(r['events'])
        errors.extend(r['errors'])
        seconds.update(r.get('seconds', {}))
        if r.get('recall'):
            recall_hits += np.asarray(r['recall']['hits'], np.int64)
            recall_gts += r['recall']['num_gts']
        if metric is not None:
            anns = r['annotations']
            metric.process(None, [dict(img_id=r['image']['id'], pred_instances=dict(
                scores=np.array([a['score'] for a in anns], np.float32),
                labels=np.array([a['category_id'] - 1 for a in anns], np.int64),
                masks=[a['segmentation'] for a in anns]))])
    report: dict = dict(events=dict(sorted(events.items())), num_errors=len(errors),
                        errors=errors[:MAX_LISTED_ERRORS])
    images = max(events['images'] + events['images_without_labels'], 1)
    report['seconds_per_image'] = {k: round(v / images, 4) for k, v in sorted(seconds.items())}
    if recall_gts:
        report['proposal_recall@0.5'] = {
            str(k): round(100 * float(h) / recall_gts, 2) for k, h in zip(recall_ks, recall_hits)}
    if metric is not None:
        report['quality'] = metric.compute_metrics(metric.results)
        report['quality_per_class'] = metric.last_results['per_class']['segm']
        # over-firing shows here first: 1.0 is one pseudo instance per object
        num_gts = sum(c['num_gts'] for c in report['quality_per_class'].values())
        report['instances_per_object'] = round(events['instances'] / max(num_gts, 1), 3)
    return report
