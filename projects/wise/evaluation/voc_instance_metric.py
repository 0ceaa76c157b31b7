"""The WISE paper's instance-segmentation metric on PASCAL VOC 2012 val.

Laradji et al. (BMVC 2019) report mask AP at IoU 0.25, 0.5 and 0.75 computed
COCO-style (101-point interpolated precision, at most 100 detections per image,
area range 'all'), averaged over the classes that have ground truth, and the
Average Best Overlap (ABO, from PRM: for every ground-truth instance, the best
IoU with any predicted mask of its class in its image, 0 when there is none).
As in the authors' evaluation code, predictions scoring under 0.5 are dropped
and VOC's void pixels (label 255) are removed from predicted and ground-truth
masks before any overlap is measured.

The ground truth is a COCO instances json whose ``images`` entries may carry
``"void"``: a COCO RLE of that image's void pixels.

Unlike mmdet's ``CocoMetric`` this metric takes any IoU thresholds (a tuple is
fine, no numpy needed in configs), names its keys after them
(``segm_mAP25``...), finds per-class precision by category id rather than by
position, and maps dataset labels to category ids one name at a time.
"""
from __future__ import annotations

import contextlib
import io
import itertools
import math
from collections import OrderedDict, defaultdict
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import pycocotools.mask as mask_util
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from terminaltables import AsciiTable

from mmdet.datasets.api_wrappers import COCO, COCOeval
from mmdet.registry import METRICS

from ..errors import DataError
from ..utils.io import dump_json, load_coco_json
from ..utils.masks import encode_masks, str_counts, to_numpy, to_rle

_IOU_TYPES = ('segm', 'bbox')


def _quiet():
    """pycocotools prints progress to stdout; keep the training log clean."""
    return contextlib.redirect_stdout(io.StringIO())


def _remove_void(rles: List[dict], void: np.ndarray) -> List[dict]:
    """AND-NOT every mask with the H x W boolean ``void``."""
    if not rles:
        return []
    m = mask_util.decode(rles)  # H x W x N, Fortran order
    m[void] = 0
    return [str_counts(r) for r in mask_util.encode(np.asfortranarray(m))]


def _build_coco(dataset: dict) -> COCO:
    """mmdet's COCO wrapper around an already-loaded dict (no second read)."""
    coco = COCO()
    coco.dataset = dataset
    with _quiet():
        coco.createIndex()
    coco.img_ann_map = coco.imgToAnns
    coco.cat_img_map = coco.catToImgs
    return coco


def _fmt(v: float) -> str:
    return '-' if v is None or (isinstance(v, float) and math.isnan(v)) else f'{v:.2f}'


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj


@METRICS.register_module()
class VOCInstanceMetric(BaseMetric):
    """Mask/box AP at several IoU thresholds (COCO-style) plus mask ABO.

    Args:
        ann_file (str): COCO instances json of the evaluated split; images may
            carry a ``void`` RLE.
        metric (str | Sequence[str]): ``'segm'`` and/or ``'bbox'``.
        iou_thrs (Sequence[float]): IoU thresholds; each gives a key
            ``{metric}_mAP{round(100 * thr)}``.
        score_thr (float): predictions scoring below it are dropped.
        ignore_void (bool): remove void pixels from predicted and ground-truth
            masks (segm AP and ABO; boxes are unaffected).
        max_dets (int): detections per image and class kept by COCOeval.
        classwise (bool): log a per-class table.
        outfile_prefix (str, optional): if given, the full results (including
            the per-class table) are saved to ``{outfile_prefix}.metrics.json``.
        collect_device (str): 'cpu' or 'gpu', for collecting across ranks.
        prefix (str, optional): key prefix; defaults to ``'wise'``.

    Returned keys (percentages, 2 decimals), e.g. for the default thresholds:
    ``segm_mAP25, segm_mAP50, segm_mAP75, segm_mAP`` (mean of the three),
    ``segm_ABO``, and the same for ``bbox`` without ABO. After
    :meth:`compute_metrics`, ``self.last_results`` holds the unrounded values
    and the per-class results.
    """
    default_prefix: Optional[str] = 'wise'

    def __init__(self,
                 ann_file: str,
                 metric: Union[str, Sequence[str]] = ('segm', 'bbox'),
                 iou_thrs: Sequence[float] = (0.25, 0.5, 0.75),
                 score_thr: float = 0.5,
                 ignore_void: bool = True,
                 max_dets: int = 100,
                 classwise: bool = True,
                 outfile_prefix: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        metrics = (metric, ) if isinstance(metric, str) else tuple(metric)
        if not metrics:
            raise ValueError('metric must name at least one of segm, bbox')
        for m in metrics:
            if m not in _IOU_TYPES:
                raise KeyError(f"metric should be 'segm' or 'bbox', got {m!r}")
        self.metrics = tuple(dict.fromkeys(metrics))

        if isinstance(iou_thrs, (int, float)):
            iou_thrs = (iou_thrs, )
        self.iou_thrs = tuple(float(t) for t in iou_thrs)
        if not self.iou_thrs or not all(0.0 < t <= 1.0 for t in self.iou_thrs):
            raise ValueError(f'iou_thrs must be non-empty, in (0, 1]: {iou_thrs}')
        self.thr_names = tuple(f'mAP{int(round(t * 100))}' for t in self.iou_thrs)
        if len(set(self.thr_names)) != len(self.thr_names):
            raise ValueError(f'iou_thrs give duplicate key names: {self.thr_names}')

        self.score_thr = float(score_thr)
        self.ignore_void = bool(ignore_void)
        self.max_dets = int(max_dets)
        if self.max_dets < 1:
            raise ValueError(f'max_dets must be >= 1, got {max_dets}')
        self.classwise = bool(classwise)
        self.outfile_prefix = outfile_prefix
        self.ann_file = str(ann_file)
        self.last_results: Optional[dict] = None

        self._coco_api, self._coco_segm, self._voids = self._load_gt(self.ann_file)

    # ------------------------------------------------------------------ GT
    def _load_gt(self, ann_file: str):
        """COCO api for boxes, a void-free copy for masks, and the void RLEs."""
        data = load_coco_json(ann_file)
        data.setdefault('annotations', [])
        try:
            coco = _build_coco(data)
        except (KeyError, TypeError) as e:
            raise DataError(f'{ann_file}: malformed COCO annotations ({e!r})') from None

        voids: Dict[int, dict] = {}
        for img in data['images']:
            if img.get('void') is None:
                continue
            h, w = int(img['height']), int(img['width'])
            rle = to_rle(img['void'], h, w)
            if [int(s) for s in rle['size']] != [h, w]:
                raise DataError(f'{ann_file}: image {img["id"]}: void size {rle["size"]} '
                                f'!= image size {[h, w]}')
            if mask_util.area(rle) > 0:
                voids[img['id']] = rle

        coco_segm = coco
        if self.ignore_void and voids:
            anns = []
            for ann in data['annotations']:
                void = voids.get(ann['image_id'])
                if void is not None and 'segmentation' in ann:
                    rle = coco.annToRLE(ann)
                    if mask_util.area(mask_util.merge([rle, void], intersect=True)) > 0:
                        m = mask_util.decode(rle)
                        m[mask_util.decode(void).astype(bool)] = 0
                        new = str_counts(mask_util.encode(np.asfortranarray(m)))
                        ann = dict(ann, segmentation=new, area=float(mask_util.area(new)))
                anns.append(ann)
            coco_segm = _build_coco(dict(data, annotations=anns))
        return coco, coco_segm, voids

    def _cat_ids(self) -> List[int]:
        """Category id of each dataset label, matched by class name."""
        classes = (self.dataset_meta or {}).get('classes')
        if not classes:
            raise ValueError(f'{type(self).__name__} needs dataset_meta["classes"] '
                             '(set by the runner from the dataset)')
        ids, missing = [], []
        for name in classes:
            found = self._coco_api.get_cat_ids(cat_names=[name])
            if len(found) != 1:
                missing.append(name)
            else:
                ids.append(int(found[0]))
        if missing:
            raise DataError(f'{self.ann_file}: classes {missing} are missing from (or '
                            'repeated in) its categories')
        return ids

    # -------------------------------------------------------------- process
    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Keep each image's confident predictions, masks as RLE."""
        for sample in data_samples:
            pred = sample['pred_instances']
            scores = to_numpy(pred['scores']).astype(np.float32).reshape(-1)
            keep = scores >= self.score_thr
            result = dict(
                img_id=int(sample['img_id']),
                scores=scores[keep],
                labels=to_numpy(pred['labels']).astype(np.int64).reshape(-1)[keep])
            if 'bboxes' in pred:
                bboxes = to_numpy(pred['bboxes']).astype(np.float32).reshape(-1, 4)
                result['bboxes'] = bboxes[keep]
            if 'masks' in pred:
                masks = pred['masks']
                if isinstance(masks, torch.Tensor):
                    masks = masks[torch.from_numpy(keep).to(masks.device)]
                    result['masks'] = encode_masks(to_numpy(masks))
                elif isinstance(masks, np.ndarray):
                    result['masks'] = encode_masks(masks[keep])
                else:  # already RLE-encoded
                    result['masks'] = [str_counts(m) for m, k in zip(masks, keep) if k]
            if 'mask_scores' in pred:
                mask_scores = to_numpy(pred['mask_scores']).astype(np.float32).reshape(-1)
                result['mask_scores'] = mask_scores[keep]
            self.results.append(result)

    # -------------------------------------------------------------- compute
    def _check(self, preds: Dict[int, dict], num_classes: int) -> None:
        imgs = self._coco_api.imgs
        for img_id, r in preds.items():
            if img_id not in imgs:
                raise DataError(f'{self.ann_file}: has no image with id {img_id}')
            if len(r['labels']) and (r['labels'].min() < 0 or r['labels'].max() >= num_classes):
                raise ValueError(f'image {img_id}: predicted labels outside [0, {num_classes})')
            hw = [int(imgs[img_id]['height']), int(imgs[img_id]['width'])]
            for m in r.get('masks', ())[:1]:
                if [int(s) for s in m['size']] != hw:
                    raise ValueError(f'image {img_id}: predicted masks are {m["size"]}, '
                                     f'the image is {hw} (masks must be at original scale)')

    def _det_anns(self, iou_type: str, preds: Dict[int, dict],
                  cat_ids: List[int]) -> tuple[list, Dict[tuple, List[dict]]]:
        """COCO result annotations, and the (void-free) masks per (image, cat)."""
        anns: list = []
        masks_by: Dict[tuple, List[dict]] = defaultdict(list)
        for img_id, r in preds.items():
            if iou_type == 'bbox':
                if 'bboxes' not in r:
                    raise ValueError("metric 'bbox' needs pred_instances.bboxes")
                for box, score, label in zip(r['bboxes'].tolist(), r['scores'], r['labels']):
                    anns.append(dict(image_id=img_id, category_id=cat_ids[label],
                                     bbox=[box[0], box[1], box[2] - box[0], box[3] - box[1]],
                                     score=float(score)))
                continue
            if 'masks' not in r:
                raise ValueError("metric 'segm' needs pred_instances.masks")
            rles = r['masks']
            if self.ignore_void and img_id in self._voids:
                rles = _remove_void(rles, mask_util.decode(self._voids[img_id]).astype(bool))
            scores = r.get('mask_scores', r['scores'])
            for rle, score, label in zip(rles, scores, r['labels']):
                # no 'bbox': loadRes then takes the mask's own area and box
                anns.append(dict(image_id=img_id, category_id=cat_ids[label],
                                 segmentation=rle, score=float(score)))
                masks_by[(img_id, cat_ids[label])].append(rle)
        return anns, masks_by

    @staticmethod
    def _load_res(coco_gt: COCO, anns: list) -> COCO:
        if anns:
            with _quiet():
                return coco_gt.loadRes(anns)
        # pycocotools' loadRes cannot take an empty list
        return _build_coco(dict(images=list(coco_gt.dataset['images']),
                                categories=list(coco_gt.dataset['categories']),
                                annotations=[]))

    def _abo(self, img_ids: List[int], cat_ids: List[int],
             masks_by: Dict[tuple, List[dict]]) -> Dict[int, List[float]]:
        """Best IoU of each non-crowd GT instance with a same-class prediction."""
        coco = self._coco_segm
        best: Dict[int, List[float]] = {c: [] for c in cat_ids}
        for img_id in img_ids:
            gts = defaultdict(list)
            for ann in coco.imgToAnns.get(img_id, []):
                if not ann.get('iscrowd', 0) and ann['category_id'] in best:
                    gts[ann['category_id']].append(coco.annToRLE(ann))
            for cat_id, g in gts.items():
                d = masks_by.get((img_id, cat_id))
                if not d:
                    best[cat_id].extend([0.0] * len(g))
                    continue
                ious = np.asarray(mask_util.iou(d, g, [0] * len(g))).reshape(len(d), len(g))
                best[cat_id].extend(ious.max(axis=0).tolist())
        return best

    def _evaluate(self, iou_type: str, preds: Dict[int, dict], img_ids: List[int],
                  cat_ids: List[int], classes: Sequence[str],
                  logger: MMLogger) -> tuple[dict, dict]:
        """Unrounded summary (percent) and per-class results for one type."""
        coco_gt = self._coco_segm if iou_type == 'segm' else self._coco_api
        anns, masks_by = self._det_anns(iou_type, preds, cat_ids)
        coco_dt = self._load_res(coco_gt, anns)

        coco_eval = COCOeval(coco_gt, coco_dt, iou_type)
        p = coco_eval.params
        p.catIds = list(cat_ids)
        p.imgIds = list(img_ids)
        p.iouThrs = np.array(self.iou_thrs, dtype=np.float64)
        p.maxDets = [1, 10, self.max_dets]
        with _quiet():
            coco_eval.evaluate()
            coco_eval.accumulate()
        precision = coco_eval.eval['precision']  # [T, R, K, A, M]
        # evaluate() sorts params.catIds: find each class's slot by id
        k_of = {int(c): k for k, c in enumerate(coco_eval.params.catIds)}
        a_all = coco_eval.params.areaRngLbl.index('all')

        num_gts = {c: 0 for c in cat_ids}
        # (getAnnIds treats an empty imgIds as "all images")
        gt_ids = coco_gt.getAnnIds(imgIds=img_ids, catIds=cat_ids) if img_ids else []
        for ann in coco_gt.loadAnns(gt_ids):
            if not ann.get('iscrowd', 0):
                num_gts[ann['category_id']] += 1

        per_class: Dict[str, dict] = OrderedDict()
        for name, cat_id in zip(classes, cat_ids):
            row: Dict[str, Any] = {'num_gts': num_gts[cat_id]}
            for t, key in enumerate(self.thr_names):
                pr = precision[t, :, k_of[cat_id], a_all, -1]
                pr = pr[pr > -1]
                row[key.replace('mAP', 'AP')] = float(np.mean(pr)) * 100 if pr.size else math.nan
            aps = [row[k.replace('mAP', 'AP')] for k in self.thr_names]
            row['AP'] = math.nan if any(math.isnan(a) for a in aps) else float(np.mean(aps))
            per_class[name] = row

        summary: Dict[str, float] = OrderedDict()
        for key in self.thr_names:
            vals = [r[key.replace('mAP', 'AP')] for r in per_class.values()]
            vals = [v for v in vals if not math.isnan(v)]
            if not vals:
                logger.warning(f'{iou_type}: no class has ground truth in the {len(img_ids)} '
                               f'evaluated images; {key} reported as 0')
            summary[f'{iou_type}_{key}'] = float(np.mean(vals)) if vals else 0.0
        summary[f'{iou_type}_mAP'] = float(np.mean(
            [summary[f'{iou_type}_{k}'] for k in self.thr_names]))

        if iou_type == 'segm':
            best = self._abo(img_ids, cat_ids, masks_by)
            for name, cat_id in zip(classes, cat_ids):
                per_class[name]['ABO'] = (float(np.mean(best[cat_id])) * 100
                                          if best[cat_id] else math.nan)
            all_best = list(itertools.chain.from_iterable(best.values()))
            summary['segm_ABO'] = float(np.mean(all_best)) * 100 if all_best else 0.0
        return summary, per_class

    def _log_table(self, iou_type: str, summary: dict, per_class: dict,
                   logger: MMLogger) -> None:
        ap_cols = [k.replace('mAP', 'AP') for k in self.thr_names]
        cols = ap_cols + ['AP'] + (['ABO'] if iou_type == 'segm' else [])
        table = [['category', '#gt'] + cols]
        for name, row in per_class.items():
            table.append([name, str(row['num_gts'])] + [_fmt(row[c]) for c in cols])
        mean_row = ['mean', str(sum(r['num_gts'] for r in per_class.values()))]
        mean_row += [_fmt(summary[f'{iou_type}_{k}']) for k in self.thr_names]
        mean_row += [_fmt(summary[f'{iou_type}_mAP'])]
        if iou_type == 'segm':
            mean_row.append(_fmt(summary['segm_ABO']))
        table.append(mean_row)
        ascii_table = AsciiTable(table)
        ascii_table.inner_footing_row_border = True
        logger.info(f'{iou_type} per-class results (%):\n' + ascii_table.table)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        logger: MMLogger = MMLogger.get_current_instance()
        classes = tuple((self.dataset_meta or {}).get('classes') or ())
        cat_ids = self._cat_ids()

        preds: Dict[int, dict] = OrderedDict()
        for r in results:
            preds.setdefault(int(r['img_id']), r)
        if len(preds) != len(results):
            logger.warning(f'{len(results) - len(preds)} duplicate image results ignored')
        if not preds:
            logger.warning(f'{type(self).__name__}: no images were evaluated')
        self._check(preds, len(cat_ids))
        img_ids = sorted(preds)

        raw: Dict[str, float] = OrderedDict()
        per_class_all: Dict[str, dict] = OrderedDict()
        for iou_type in self.metrics:
            summary, per_class = self._evaluate(iou_type, preds, img_ids, cat_ids, classes,
                                                logger)
            raw.update(summary)
            per_class_all[iou_type] = per_class
            if self.classwise:
                self._log_table(iou_type, summary, per_class, logger)
            logger.info(f'{iou_type}: ' + ' '.join(
                f'{k[len(iou_type) + 1:]} {v:.2f}' for k, v in summary.items()))

        metrics = OrderedDict((k, round(v, 2)) for k, v in raw.items())
        self.last_results = dict(
            metrics=dict(metrics), raw=dict(raw), per_class=per_class_all,
            iou_thrs=list(self.iou_thrs), score_thr=self.score_thr,
            ignore_void=self.ignore_void, max_dets=self.max_dets,
            num_images=len(img_ids),
            num_predictions=int(sum(len(r['scores']) for r in preds.values())),
            ann_file=self.ann_file)
        if self.outfile_prefix is not None:
            path = f'{self.outfile_prefix}.metrics.json'
            dump_json(_nan_to_none(self.last_results), path, indent=2)
            logger.info(f'{type(self).__name__}: results saved to {path}')
        return dict(metrics)
