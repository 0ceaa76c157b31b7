"""Object counting metrics of ILC (Cholakkal et al., CVPR 2019), per class then averaged."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from mmdet.registry import METRICS

from ..datasets.image_label_dataset import coco_image_labels
from ..utils.io import load_coco_json
from ..utils.masks import to_numpy
from .prm_metrics import dataset_classes, results_by_image

#: where a predicted count comes from: the density branch, or the PRM's reported peaks
SOURCES = ('density', 'peaks')


def counting_errors(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """mRMSE, mRMSE-nz, m-relRMSE and m-relRMSE-nz of N x C predicted and true counts.

    Per class c, RMSE_c = sqrt(mean_i (p - g)^2) over all images, and its ``nz``
    twin over the images where c is present (g > 0); the ``rel`` ones divide each
    squared error by g + 1. Each is the mean over classes (``nz``: over the classes
    present somewhere), as ILC's evaluation computes them.
    """
    err = (pred.astype(np.float64) - gt) ** 2
    rel = err / (gt + 1.0)
    present = gt > 0
    nz = present.any(0)

    def per_class(values: np.ndarray, where: np.ndarray) -> np.ndarray:
        return np.sqrt((values * where).sum(0) / np.maximum(where.sum(0), 1))

    everywhere = np.ones_like(present)
    return {'mRMSE': float(per_class(err, everywhere).mean()),
            'mRMSE-nz': float(per_class(err, present)[nz].mean()) if nz.any() else float('nan'),
            'm-relRMSE': float(per_class(rel, everywhere).mean()),
            'm-relRMSE-nz': float(per_class(rel, present)[nz].mean()) if nz.any()
            else float('nan')}


@METRICS.register_module()
class CountingMetric(BaseMetric):
    """Counting errors (:func:`counting_errors`) against the ``label_counts`` of ``ann_file``.

    Each source the model gives is scored: ``density`` from ``pred_counts``
    (:class:`~projects.wise.models.PRMDensity`), ``peaks`` from the number of
    reported ``pred_peaks`` of each class (a PRM counting its peaks, after its
    ``test_cfg`` thresholds). Keys ``<source>_<error>``, e.g. ``count/density_mRMSE``.
    A class labelled but counted 0 (VOC's difficult-only) counts 0, as in ILC.

    Args:
        ann_file: a ``*_labels.json`` or ``*_instances.json`` with ``label_counts``.
        collect_device: 'cpu' or 'gpu', for collecting across ranks.
        prefix: key prefix; defaults to ``'count'``.
    """
    default_prefix: str | None = 'count'

    def __init__(self, ann_file: str, collect_device: str = 'cpu',
                 prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.ann_file = str(ann_file)
        data = load_coco_json(self.ann_file)
        self._gt = dict(images=data['images'], categories=data['categories'])

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        num_classes = len(dataset_classes(self))
        for sample in data_samples:
            result = dict(img_id=sample['img_id'])
            if 'pred_counts' in sample:
                result['density'] = to_numpy(sample['pred_counts']).reshape(-1)
            if 'pred_peaks' in sample:
                labels = to_numpy(sample['pred_peaks']['labels']).astype(np.int64)
                result['peaks'] = np.bincount(labels, minlength=num_classes)
            self.results.append(result)

    def compute_metrics(self, results: list) -> dict[str, float]:
        logger: MMLogger = MMLogger.get_current_instance()
        classes = dataset_classes(self)
        truth = {}
        for r in coco_image_labels(self._gt, classes, self.ann_file, with_counts=True):
            truth[r['img_id']] = np.zeros(len(classes))
            truth[r['img_id']][r['image_labels']] = r['image_counts']
        preds = results_by_image(results, truth, self.ann_file, logger)
        gt = np.stack([truth[i] for i in preds]) if preds else np.zeros((0, len(classes)))
        metrics = {}
        for source in SOURCES:
            if preds and all(source in r for r in preds.values()):
                pred = np.stack([r[source] for r in preds.values()])
                for name, value in counting_errors(pred, gt).items():
                    metrics[f'{source}_{name}'] = round(value, 4)
        if not metrics:
            logger.warning('no counts to score: the model gives neither pred_counts nor '
                           'pred_peaks')
        return metrics
