"""Best-IoU recall of proposals against ground-truth instances.

The standard measure of a proposal method (and what bounds WISE's pseudo masks):
a ground-truth instance counts as found when some proposal among the top k
overlaps it with IoU >= the threshold.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..utils.masks import bytes_counts, to_rle
from .base import Proposals


def gt_rles(segmentations: Sequence, hw: tuple[int, int]) -> list[dict]:
    """COCO segmentations (polygons, or RLE with compressed or list counts) as RLEs."""
    return [bytes_counts(to_rle(segm, *hw)) for segm in segmentations]


def best_ious(proposals: Proposals, gt_rles: list[dict],
              ks: Sequence[int] = (100, 500, 1000)) -> dict[int, np.ndarray]:
    """For each k, each instance's best IoU among the k highest-scored proposals."""
    ranked = proposals.top(len(proposals))
    iou = ranked.iou(gt_rles)  # M x N, proposals by descending score
    if not iou.shape[1]:
        return {k: np.zeros(len(gt_rles)) for k in ks}
    # Running maximum along the ranking: column k-1 is the best among the top k.
    running = np.maximum.accumulate(iou, axis=1)
    return {k: running[:, min(k, iou.shape[1]) - 1] for k in ks}


def proposal_recall(proposals: Proposals, gt_rles: list[dict],
                    ks: Sequence[int] = (100, 500, 1000), iou_thr: float = 0.5) -> dict:
    """Recall at ``iou_thr`` for the top k proposals of one image, for each k.

    Returns ``{'num_gt': M, 'hits': {k: found}, 'recall': {k: found / M}}``;
    sum ``hits`` and ``num_gt`` over images for a data set's recall.
    """
    best = best_ious(proposals, gt_rles, ks)
    hits = {k: int((v >= iou_thr).sum()) for k, v in best.items()}
    m = len(gt_rles)
    return dict(num_gt=m, hits=hits, recall={k: h / m if m else float('nan')
                                             for k, h in hits.items()})
