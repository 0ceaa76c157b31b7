"""Metrics of the PRM classifier (peak response maps, Zhou et al. CVPR 2018).

PRM is trained from image-level labels only, so it is judged on two things:
how well it says which classes are in an image (:class:`MultiLabelMAP`), and
whether its class peaks land on objects of that class
(:class:`PeakLocalisationMetric`), which is what WISE's later stages rely on.

Both read the ground truth from ``ann_file`` by ``img_id``, never from the
data samples: the model is given no ground truth to pass through. They expect
from the model ``pred_scores`` (FloatTensor[C], raw class scores) and, for the
peaks, ``pred_peaks`` (InstanceData with ``labels`` [K], ``points`` [K, 2] as
(x, y) in original image pixels, and ``scores`` [K]).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Dict, Optional, Sequence

import numpy as np
import pycocotools.mask as mask_util
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from terminaltables import AsciiTable

from mmdet.registry import METRICS

from ..datasets.image_label_dataset import coco_cat2label, coco_image_labels
from ..errors import DataError
from ..utils.io import load_coco_json
from ..utils.masks import pixel_indices, to_numpy, to_rle


def average_precision(scores: np.ndarray, positives: np.ndarray) -> float:
    """Non-interpolated AP, as sklearn's ``average_precision_score``.

    The mean, over positives, of the precision at the positive's rank. Tied
    scores form one step (every tied item counts at the tie's end), so the
    result does not depend on the order images were evaluated in. NaN when
    there is no positive.
    Not sklearn (+60 MB; 0.0, not NaN), torchmetrics (float32: 1e-7 off), mmpretrain (tie order).
    """
    positives = np.asarray(positives, dtype=bool)
    num_pos = int(positives.sum())
    if num_pos == 0:
        return math.nan
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind='stable')
    sorted_scores, hits = np.asarray(scores)[order], positives[order]
    tp = np.cumsum(hits)
    last_of_tie = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    tp, ranks = tp[last_of_tie], np.flatnonzero(last_of_tie) + 1
    new_tp = np.diff(tp, prepend=0)
    return float(np.sum(new_tp * tp / ranks) / num_pos)


def dataset_classes(metric: BaseMetric) -> tuple:
    """The class names the runner gave ``metric`` from its dataset."""
    classes = tuple((metric.dataset_meta or {}).get('classes') or ())
    if not classes:
        raise ValueError(f'{type(metric).__name__} needs dataset_meta["classes"] '
                         '(set by the runner from the dataset)')
    return classes


def results_by_image(results: list, known: Any, ann_file: str, logger: MMLogger) -> Dict[Any, dict]:
    """One result per image (the first), each image known to the ground truth."""
    preds: Dict[Any, dict] = OrderedDict()
    for r in results:
        preds.setdefault(r['img_id'], r)
    if len(preds) != len(results):
        logger.warning(f'{len(results) - len(preds)} duplicate image results ignored')
    if not preds:
        logger.warning('no images were evaluated')
    for img_id in preds:
        if img_id not in known:
            raise DataError(f'{ann_file}: has no image with id {img_id}')
    return preds


def _pct(num: int, den: int, what: str, logger: MMLogger) -> float:
    if den == 0:
        logger.warning(f'no {what}: reported as 0')
        return 0.0
    return 100.0 * num / den


@METRICS.register_module()
class MultiLabelMAP(BaseMetric):
    """Multi-label classification mAP from ``pred_scores``.

    Per class, the non-interpolated average precision (see
    :func:`average_precision`) of the class score over the evaluated images,
    against the image-level labels in ``ann_file``; mAP is the mean over the
    classes present in at least one evaluated image.

    Args:
        ann_file (str): ``*_labels.json`` or ``*_instances.json`` (only the
            images' ``labels`` are read).
        classwise (bool): log a per-class table.
        collect_device (str): 'cpu' or 'gpu', for collecting across ranks.
        prefix (str, optional): key prefix; defaults to ``'prm'``.

    Returned key: ``mAP`` (percent, 2 decimals). ``self.last_results`` then
    holds the unrounded mAP and the per-class APs.
    """
    default_prefix: Optional[str] = 'prm'

    def __init__(self,
                 ann_file: str,
                 classwise: bool = True,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.ann_file = str(ann_file)
        self.classwise = bool(classwise)
        data = load_coco_json(self.ann_file)
        # annotations (masks) are never needed: don't hold them
        self._gt = dict(images=data['images'], categories=data['categories'])
        self.last_results: Optional[dict] = None

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            self.results.append(dict(
                img_id=sample['img_id'],
                scores=to_numpy(sample['pred_scores']).astype(np.float64).reshape(-1)))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        logger: MMLogger = MMLogger.get_current_instance()
        classes = dataset_classes(self)
        gt = {r['img_id']: r['image_labels']
              for r in coco_image_labels(self._gt, classes, self.ann_file)}
        preds = results_by_image(results, gt, self.ann_file, logger)

        num_classes = len(classes)
        for img_id, r in preds.items():
            if r['scores'].shape != (num_classes, ):
                raise ValueError(f'image {img_id}: pred_scores has {r["scores"].size} '
                                 f'values for {num_classes} classes')
            if not np.isfinite(r['scores']).all():
                raise ValueError(f'image {img_id}: pred_scores is not finite')
        scores = np.zeros((len(preds), num_classes))
        targets = np.zeros((len(preds), num_classes), dtype=bool)
        for row, (img_id, r) in enumerate(preds.items()):
            scores[row] = r['scores']
            targets[row, gt[img_id]] = True

        aps = [average_precision(scores[:, c], targets[:, c]) * 100
               for c in range(num_classes)]
        valid = [ap for ap in aps if not math.isnan(ap)]
        if not valid:
            logger.warning(f'no class is present in the {len(preds)} evaluated images; '
                           'mAP reported as 0')
        mean_ap = float(np.mean(valid)) if valid else 0.0

        num_pos = targets.sum(axis=0).tolist()
        if self.classwise:
            table = [['category', '#images', 'AP']]
            table += [[name, str(n), '-' if math.isnan(ap) else f'{ap:.2f}']
                      for name, n, ap in zip(classes, num_pos, aps)]
            table.append(['mean', str(len(preds)), f'{mean_ap:.2f}'])
            ascii_table = AsciiTable(table)
            ascii_table.inner_footing_row_border = True
            logger.info('multi-label classification AP (%):\n' + ascii_table.table)
        logger.info(f'multi-label mAP {mean_ap:.2f} over {len(valid)} classes, '
                    f'{len(preds)} images')
        self.last_results = dict(
            mAP=mean_ap, num_images=len(preds), ann_file=self.ann_file,
            per_class=OrderedDict((name, dict(num_images=n, AP=ap))
                                  for name, n, ap in zip(classes, num_pos, aps)))
        return dict(mAP=round(mean_ap, 2))


@METRICS.register_module()
class PeakLocalisationMetric(BaseMetric):
    """Do class peaks land on ground-truth instances of their class?

    Peaks count when their class scores ``>= score_thr`` in ``pred_scores``
    and their own peak score is ``>= peak_thr``. A peak's point is rounded to
    the nearest pixel (pixel centres at integer coordinates) and clipped to
    the image.

    Args:
        ann_file (str): COCO ``*_instances.json`` with instance masks
            (RLE or polygons) at original image size.
        score_thr (float): minimum class score for a class's peaks to count.
        peak_thr (float): minimum peak response for a peak to count.
        collect_device (str): 'cpu' or 'gpu', for collecting across ranks.
        prefix (str, optional): key prefix; defaults to ``'prm'``.

    Returned keys (2 decimals): ``peak_precision``, the percentage of counted
    peaks inside an instance of their class (crowd regions count: the peak is
    on such an object); ``instance_recall``, the percentage of non-crowd
    instances with at least one counted peak of their class inside; and
    ``num_peaks_per_image``, counted peaks per evaluated image.
    """
    default_prefix: Optional[str] = 'prm'

    def __init__(self,
                 ann_file: str,
                 score_thr: float = 0.0,
                 peak_thr: float = 0.0,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.ann_file = str(ann_file)
        self.score_thr = float(score_thr)
        self.peak_thr = float(peak_thr)
        self.last_results: Optional[dict] = None
        data = load_coco_json(self.ann_file)
        self._categories = data['categories']
        self._gt = self._index_gt(data)

    def _index_gt(self, data: dict) -> Dict[Any, dict]:
        """Per image id: its size and its instances (category ids, crowd flags, RLEs)."""
        try:
            gt = {img['id']: dict(hw=(int(img['height']), int(img['width'])), cat_ids=[],
                                  crowd=[], rles=[]) for img in data['images']}
            for ann in data.get('annotations', []):
                img = gt[ann['image_id']]
                rle = to_rle(ann['segmentation'], *img['hw'])
                if tuple(int(s) for s in rle['size']) != img['hw']:
                    raise DataError(f'{self.ann_file}: annotation {ann.get("id")}: mask size '
                                    f'{rle["size"]} != image size {list(img["hw"])}')
                img['cat_ids'].append(ann['category_id'])
                img['crowd'].append(bool(ann.get('iscrowd', 0)))
                img['rles'].append(rle)
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f'{self.ann_file}: malformed COCO instances ({e!r})') from None
        return gt

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Keep each image's counted peaks."""
        for sample in data_samples:
            peaks = sample['pred_peaks']
            class_scores = to_numpy(sample['pred_scores']).reshape(-1)
            labels = to_numpy(peaks['labels']).astype(np.int64).reshape(-1)
            if len(labels) and (labels.min() < 0 or labels.max() >= len(class_scores)):
                raise ValueError(f'image {sample["img_id"]}: peak labels outside '
                                 f'[0, {len(class_scores)})')
            keep = (to_numpy(peaks['scores']).reshape(-1) >= self.peak_thr) \
                & (class_scores[labels] >= self.score_thr)
            self.results.append(dict(
                img_id=sample['img_id'], labels=labels[keep],
                points=to_numpy(peaks['points']).astype(np.float64).reshape(-1, 2)[keep]))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        logger: MMLogger = MMLogger.get_current_instance()
        classes = dataset_classes(self)
        cat2label = coco_cat2label(self._categories, classes, self.ann_file)
        preds = results_by_image(results, self._gt, self.ann_file, logger)

        num_peaks = num_correct = num_instances = num_found = 0
        for img_id, r in preds.items():
            gt = self._gt[img_id]
            h, w = gt['hw']
            unknown = set(gt['cat_ids']) - set(cat2label)
            if unknown:
                raise DataError(f'{self.ann_file}: image {img_id}: category ids '
                                f'{sorted(unknown)} are not among its categories')
            xs, ys = pixel_indices(r['points'], (h, w))
            crowd = np.array(gt['crowd'], dtype=bool)
            if gt['rles']:
                gt_labels = np.array([cat2label[c] for c in gt['cat_ids']])
                masks = mask_util.decode(gt['rles'])  # H x W x N
                hits = masks[ys, xs].astype(bool) & (r['labels'][:, None] == gt_labels)
                num_correct += int(hits.any(axis=1).sum())
                num_found += int(hits[:, ~crowd].any(axis=0).sum())
            num_peaks += len(r['labels'])
            num_instances += int((~crowd).sum())

        raw = OrderedDict(
            peak_precision=_pct(num_correct, num_peaks, 'peaks to score', logger),
            instance_recall=_pct(num_found, num_instances, 'ground-truth instance', logger),
            num_peaks_per_image=num_peaks / len(preds) if preds else 0.0)
        logger.info(f'peaks: precision {raw["peak_precision"]:.2f}, instance recall '
                    f'{raw["instance_recall"]:.2f} ({num_found}/{num_instances}), '
                    f'{raw["num_peaks_per_image"]:.2f} per image')
        self.last_results = dict(
            raw=dict(raw), num_images=len(preds), num_peaks=num_peaks,
            num_correct_peaks=num_correct, num_instances=num_instances,
            num_found_instances=num_found, score_thr=self.score_thr,
            peak_thr=self.peak_thr, ann_file=self.ann_file)
        return OrderedDict((k, round(v, 2)) for k, v in raw.items())
