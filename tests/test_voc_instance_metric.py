"""VOCInstanceMetric: COCO equivalence, hand-computed AP/ABO, void, score
threshold, the mmengine Evaluator/registry/config path, and bad ann files."""
from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mmdet.structures import DetDataSample
from projects.wise.errors import DataError
from projects.wise.evaluation import VOCInstanceMetric


# ---------------------------------------------------------------- helpers
def rle(mask: np.ndarray) -> dict:
    r = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': [int(s) for s in r['size']], 'counts': r['counts'].decode()}


def mask_box(mask: np.ndarray) -> list[float]:
    """xywh of the mask's tight box (pixel-edge convention, like toBbox)."""
    return [float(v) for v in mask_util.toBbox(rle(mask))]


def write_gt(path: Path, images: list[dict], anns: list[dict],
             categories: list[dict]) -> Path:
    """images: dicts(id, h, w, void=None|bool mask); anns: dicts(image_id,
    category_id, mask, iscrowd=0)."""
    data = dict(images=[], annotations=[], categories=categories)
    for img in images:
        entry = dict(id=img['id'], file_name=f'{img["id"]}.jpg', height=img['h'],
                     width=img['w'])
        if img.get('void') is not None:
            entry['void'] = rle(img['void'])
        data['images'].append(entry)
    for i, a in enumerate(anns, 1):
        data['annotations'].append(dict(
            id=i, image_id=a['image_id'], category_id=a['category_id'],
            segmentation=rle(a['mask']), bbox=mask_box(a['mask']),
            area=float(a['mask'].sum()), iscrowd=int(a.get('iscrowd', 0))))
    path.write_text(json.dumps(data))
    return path


def sample(img_id: int, masks: np.ndarray, scores, labels, bboxes=None) -> dict:
    """A DetDataSample as mmdet hands it to metrics (``to_dict()``)."""
    masks = np.asarray(masks, dtype=bool)
    if bboxes is None:
        bboxes = [[x, y, x + w, y + h] for x, y, w, h in map(mask_box, masks)]
    ds = DetDataSample(metainfo=dict(img_id=img_id, ori_shape=masks.shape[1:]))
    ds.pred_instances = InstanceData(
        bboxes=torch.as_tensor(np.asarray(bboxes, np.float32).reshape(-1, 4)),
        scores=torch.as_tensor(np.asarray(scores, np.float32)),
        labels=torch.as_tensor(np.asarray(labels, np.int64)),
        masks=torch.from_numpy(masks))
    return ds.to_dict()


def run_metric(ann_file: Path, classes, samples: list[dict], **kwargs) -> tuple[dict, dict]:
    metric = VOCInstanceMetric(ann_file=str(ann_file), **kwargs)
    metric.dataset_meta = dict(classes=tuple(classes))
    metric.process({}, samples)
    res = metric.compute_metrics(metric.results)
    return res, metric.last_results


def block(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


ONE_CLASS = [dict(id=1, name='thing')]


# ------------------------------------------------- 1. equivalence with COCOeval
def _shape(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    cy, cx = rng.integers(8, h - 8), rng.integers(8, w - 8)
    ry, rx = rng.integers(4, 16), rng.integers(4, 16)
    if rng.random() < 0.5:
        m = (abs(yy - cy) <= ry) & (abs(xx - cx) <= rx)
    else:
        m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    return m


def _shift(m: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(m)
    h, w = m.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        m[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


@pytest.fixture(scope='module')
def synthetic(tmp_path_factory):
    """8 images, GT of 3 classes (one class absent from the GT: 'cow'), noisy
    predictions; the json lists categories in another order than ``classes``."""
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp('synthetic')
    h = w = 64
    categories = [dict(id=1, name='cat'), dict(id=2, name='dog'), dict(id=3, name='bird'),
                  dict(id=4, name='cow')]
    classes = ('bird', 'cow', 'cat', 'dog')
    label_of = {c['id']: classes.index(c['name']) for c in categories}
    images, anns, samples, segm_dets, bbox_dets = [], [], [], [], []
    for i in range(8):
        img_id = 1000 + 7 * i
        images.append(dict(id=img_id, h=h, w=w))
        present = [c for c in (1, 2, 3) if rng.random() < 0.6]
        gts = [(c, _shape(rng, h, w)) for c in present for _ in range(rng.integers(1, 4))]
        for j, (c, m) in enumerate(gts):
            anns.append(dict(image_id=img_id, category_id=c, mask=m,
                             iscrowd=int(i == 3 and j == 0)))
        preds = []
        for c, m in gts:
            if rng.random() < 0.85:
                preds.append((c, _shift(m, *rng.integers(-5, 6, size=2))))
            if rng.random() < 0.25:  # duplicate
                preds.append((c, _shift(m, *rng.integers(-3, 4, size=2))))
        for _ in range(rng.integers(0, 4)):  # false positives, some of class 'cow'
            preds.append((int(rng.integers(1, 5)), _shape(rng, h, w)))
        preds = [(c, m) for c, m in preds if m.any()]
        scores = rng.uniform(0.01, 1.0, len(preds)).astype(np.float32)
        masks = np.stack([m for _, m in preds]) if preds else np.zeros((0, h, w), bool)
        xyxy = []
        for (c, m), s in zip(preds, scores):
            x, y, bw, bh = mask_box(m)
            jit = rng.integers(-4, 5, size=4) * 0.5
            box = [x + jit[0], y + jit[1], x + bw + jit[2], y + bh + jit[3]]
            xyxy.append(box)
            segm_dets.append(dict(image_id=img_id, category_id=c, segmentation=rle(m),
                                  score=float(s)))
            bbox_dets.append(dict(image_id=img_id, category_id=c,
                                  bbox=[box[0], box[1], box[2] - box[0], box[3] - box[1]],
                                  score=float(s)))
        samples.append(sample(img_id, masks, scores, [label_of[c] for c, _ in preds],
                              np.asarray(xyxy, np.float32).reshape(-1, 4)))
    gt = write_gt(root / 'gt.json', images, anns, categories)
    (root / 'segm.json').write_text(json.dumps(segm_dets))
    (root / 'bbox.json').write_text(json.dumps(bbox_dets))
    return dict(root=root, gt=gt, classes=classes, samples=samples, anns=anns,
                segm_dets=segm_dets)


def _coco_reference(gt_file: Path, det_file: Path, iou_type: str) -> COCOeval:
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        e = COCOeval(gt, gt.loadRes(str(det_file)), iou_type)
        e.evaluate()
        e.accumulate()
        e.summarize()
    return e


@pytest.mark.parametrize('iou_type', ['segm', 'bbox'])
def test_equivalent_to_cocoeval(synthetic, iou_type):
    res, full = run_metric(synthetic['gt'], synthetic['classes'], synthetic['samples'],
                           metric=iou_type, iou_thrs=(0.5, 0.75), score_thr=0.0)
    ref = _coco_reference(synthetic['gt'], synthetic['root'] / f'{iou_type}.json', iou_type)
    raw = full['raw']
    assert raw[f'{iou_type}_mAP50'] == pytest.approx(100 * ref.stats[1], abs=1e-6)
    assert raw[f'{iou_type}_mAP75'] == pytest.approx(100 * ref.stats[2], abs=1e-6)
    assert 0 < ref.stats[2] < ref.stats[1] < 1  # a non-trivial case
    assert res[f'{iou_type}_mAP50'] == round(100 * ref.stats[1], 2)
    assert res[f'{iou_type}_mAP'] == pytest.approx(
        (res[f'{iou_type}_mAP50'] + res[f'{iou_type}_mAP75']) / 2, abs=0.011)

    # per class, matched by category id (COCOeval sorts catIds)
    prec = ref.eval['precision']
    per_class = full['per_class'][iou_type]
    cats = {c['name']: c['id'] for c in json.loads(synthetic['gt'].read_text())['categories']}
    for name in synthetic['classes']:
        k = list(ref.params.catIds).index(cats[name])
        for t, key in ((0, 'AP50'), (5, 'AP75')):
            p = prec[t, :, k, 0, 2]
            if name == 'cow':  # no GT -> excluded, not 0
                assert (p == -1).all() and math.isnan(per_class[name][key])
            else:
                assert per_class[name][key] == pytest.approx(100 * p.mean(), abs=1e-6)


def test_abo_matches_bruteforce(synthetic):
    _, full = run_metric(synthetic['gt'], synthetic['classes'], synthetic['samples'],
                         metric='segm', score_thr=0.0)
    dets = [(d['image_id'], d['category_id'], mask_util.decode(d['segmentation']).astype(bool))
            for d in synthetic['segm_dets']]
    best = []
    for a in synthetic['anns']:
        if a['iscrowd']:
            continue
        ious = [(m & a['mask']).sum() / (m | a['mask']).sum()
                for i, c, m in dets if i == a['image_id'] and c == a['category_id']]
        best.append(max(ious, default=0.0))
    assert full['raw']['segm_ABO'] == pytest.approx(100 * np.mean(best), abs=1e-6)


# ------------------------------------------------------ 2. hand-computed cases
def test_perfect_prediction(tmp_path):
    gt_mask = block(32, 32, 5, 15, 5, 15)
    gt = write_gt(tmp_path / 'gt.json', [dict(id=1, h=32, w=32)],
                  [dict(image_id=1, category_id=1, mask=gt_mask)], ONE_CLASS)
    res, full = run_metric(gt, ['thing'], [sample(1, gt_mask[None], [0.9], [0])],
                           outfile_prefix=str(tmp_path / 'out' / 'val'))
    assert res == {'segm_mAP25': 100.0, 'segm_mAP50': 100.0, 'segm_mAP75': 100.0,
                   'segm_mAP': 100.0, 'segm_ABO': 100.0, 'bbox_mAP25': 100.0,
                   'bbox_mAP50': 100.0, 'bbox_mAP75': 100.0, 'bbox_mAP': 100.0}
    saved = json.loads((tmp_path / 'out' / 'val.metrics.json').read_text())
    assert saved['metrics'] == res
    assert saved['per_class']['segm']['thing'] == pytest.approx(
        dict(num_gts=1, AP25=100.0, AP50=100.0, AP75=100.0, AP=100.0, ABO=100.0))


def test_iou_04_prediction(tmp_path):
    gt_mask = block(32, 32, 5, 15, 5, 15)  # 100 px
    pred = block(32, 32, 5, 9, 5, 15)      # 40 px inside it: IoU exactly 0.4
    gt = write_gt(tmp_path / 'gt.json', [dict(id=1, h=32, w=32)],
                  [dict(image_id=1, category_id=1, mask=gt_mask)], ONE_CLASS)
    res, _ = run_metric(gt, ['thing'], [sample(1, pred[None], [0.9], [0])])
    for t in ('segm', 'bbox'):
        assert (res[f'{t}_mAP25'], res[f'{t}_mAP50'], res[f'{t}_mAP75']) == (100, 0, 0)
        assert res[f'{t}_mAP'] == 33.33
    assert res['segm_ABO'] == 40.0


def test_wrong_class_gives_zero_abo(tmp_path):
    gt_mask = block(32, 32, 5, 15, 5, 15)
    gt = write_gt(tmp_path / 'gt.json', [dict(id=1, h=32, w=32)],
                  [dict(image_id=1, category_id=1, mask=gt_mask)],
                  ONE_CLASS + [dict(id=2, name='other')])
    res, full = run_metric(gt, ['thing', 'other'], [sample(1, gt_mask[None], [0.9], [1])],
                           metric='segm')
    assert res['segm_ABO'] == 0.0 and res['segm_mAP50'] == 0.0
    assert math.isnan(full['per_class']['segm']['other']['AP50'])  # no GT: excluded


# --------------------------------------------------------------------- 3. void
def test_void_is_ignored(tmp_path):
    h = w = 32
    gt_a = block(h, w, 10, 20, 10, 20)                 # 100 px
    void_a = block(h, w, 8, 22, 8, 22) & ~gt_a         # 96 px ring around it
    pred_a = gt_a | void_a                             # IoU 100/196 with void kept
    gt_b = block(h, w, 4, 14, 4, 14)                   # GT itself covers void pixels
    void_b = block(h, w, 4, 14, 4, 6)                  # 20 px of it
    pred_b = gt_b & ~void_b                            # IoU 80/100 with void kept
    gt = write_gt(tmp_path / 'gt.json',
                  [dict(id=1, h=h, w=w, void=void_a), dict(id=2, h=h, w=w, void=void_b)],
                  [dict(image_id=1, category_id=1, mask=gt_a),
                   dict(image_id=2, category_id=1, mask=gt_b)], ONE_CLASS)
    samples = [sample(1, pred_a[None], [0.8], [0]), sample(2, pred_b[None], [0.9], [0])]
    res, _ = run_metric(gt, ['thing'], samples, metric='segm')
    assert res['segm_ABO'] == 100.0 and res['segm_mAP75'] == 100.0
    res, _ = run_metric(gt, ['thing'], samples, metric='segm', ignore_void=False)
    assert res['segm_ABO'] == round(100 * (100 / 196 + 0.8) / 2, 2)
    # AP75: only image 2's (higher-scored) prediction matches: precision 1 up to
    # recall 0.5, i.e. 51 of the 101 recall points
    assert res['segm_mAP50'] == 100.0 and res['segm_mAP75'] == round(100 * 51 / 101, 2)


# ----------------------------------------------------------- 4. score threshold
def test_score_thr(tmp_path):
    gt_mask = block(32, 32, 5, 15, 5, 15)
    fp = block(32, 32, 20, 30, 20, 30)
    gt = write_gt(tmp_path / 'gt.json', [dict(id=1, h=32, w=32)],
                  [dict(image_id=1, category_id=1, mask=gt_mask)], ONE_CLASS)

    def go(tp_score, **kw):
        s = sample(1, np.stack([fp, gt_mask]), [0.9, tp_score], [0, 0])
        return run_metric(gt, ['thing'], [s], **kw)

    res, full = go(0.3, score_thr=0.0)   # FP ranked first: precision 1/2 at recall 1
    assert res['segm_mAP50'] == 50.0 and res['segm_ABO'] == 100.0
    assert full['num_predictions'] == 2
    res, full = go(0.3)                  # default 0.5: the true positive is dropped
    assert res['segm_mAP50'] == 0.0 and res['bbox_mAP50'] == 0.0 and res['segm_ABO'] == 0.0
    assert full['num_predictions'] == 1
    res, _ = go(0.5)                     # score == thr is kept
    assert res['segm_mAP50'] == 50.0


def test_no_predictions_gives_zero(tmp_path):
    gt_mask = block(32, 32, 5, 15, 5, 15)
    gt = write_gt(tmp_path / 'gt.json', [dict(id=1, h=32, w=32), dict(id=2, h=32, w=32)],
                  [dict(image_id=1, category_id=1, mask=gt_mask)], ONE_CLASS)
    empty = [sample(i, np.zeros((0, 32, 32), bool), [], []) for i in (1, 2)]
    res, _ = run_metric(gt, ['thing'], empty)
    assert len(res) == 9 and all(v == 0.0 for v in res.values())
    # everything below the score threshold is the same as nothing
    res, _ = run_metric(gt, ['thing'], [sample(1, gt_mask[None], [0.1], [0])])
    assert all(v == 0.0 for v in res.values())
    res, _ = run_metric(gt, ['thing'], [])  # no image at all: zeros, no crash
    assert len(res) == 9 and all(v == 0.0 for v in res.values())


# --------------------------------------------- 5. evaluator, registry and config
def test_through_evaluator_and_config(tmp_path):
    import projects.wise.evaluation  # noqa: F401  (registers the metric)
    from mmdet.registry import METRICS
    assert METRICS.get('VOCInstanceMetric') is VOCInstanceMetric
    init_default_scope('mmdet')

    h = w = 32
    classes = ('a', 'b', 'c')
    cats = [dict(id=i + 1, name=n) for i, n in enumerate(classes)]
    m1, m2 = block(h, w, 2, 12, 2, 12), block(h, w, 16, 30, 10, 20)
    gt = write_gt(tmp_path / 'gt.json', [dict(id=5, h=h, w=w), dict(id=9, h=h, w=w)],
                  [dict(image_id=5, category_id=1, mask=m1),
                   dict(image_id=9, category_id=3, mask=m2)], cats)
    evaluator = Evaluator([dict(type='VOCInstanceMetric', ann_file=str(gt),
                                iou_thrs=(0.25, 0.5, 0.75), classwise=True)])
    evaluator.dataset_meta = dict(classes=classes)
    evaluator.process([sample(5, m1[None], [0.95], [0]),
                       sample(9, np.stack([m2, m1]), [0.9, 0.7], [2, 1])])
    res = evaluator.evaluate(2)
    keys = [f'wise/{t}_mAP{s}' for t in ('segm', 'bbox') for s in ('25', '50', '75', '')]
    assert sorted(res) == sorted(keys + ['wise/segm_ABO'])
    assert res['wise/segm_mAP50'] == 100.0 and res['wise/segm_ABO'] == 100.0

    cfg = Config(dict(val_evaluator=dict(type='VOCInstanceMetric', ann_file=str(gt),
                                         iou_thrs=(0.25, 0.5, 0.75))))
    text = cfg.pretty_text
    assert 'VOCInstanceMetric' in text
    cfg2 = Config.fromstring(text, '.py')
    metric = METRICS.build(cfg2.val_evaluator)
    assert metric.iou_thrs == (0.25, 0.5, 0.75)


# ------------------------------------------------------------ 6. bad ann files
def test_bad_ann_file(tmp_path):
    missing = tmp_path / 'nope.json'
    with pytest.raises(DataError, match=str(missing)):
        VOCInstanceMetric(ann_file=str(missing))
    truncated = tmp_path / 'trunc.json'
    truncated.write_text('{"images": [{"id": 1, "file_na')
    with pytest.raises(DataError, match=str(truncated)):
        VOCInstanceMetric(ann_file=str(truncated))
    wrong = tmp_path / 'wrong.json'
    wrong.write_text('[1, 2]')
    with pytest.raises(DataError, match=str(wrong)):
        VOCInstanceMetric(ann_file=str(wrong))


def test_class_missing_from_categories(tmp_path):
    gt = write_gt(tmp_path / 'gt.json', [dict(id=1, h=8, w=8)], [], ONE_CLASS)
    metric = VOCInstanceMetric(ann_file=str(gt))
    metric.dataset_meta = dict(classes=('thing', 'ghost'))
    with pytest.raises(DataError, match='ghost'):
        metric.compute_metrics([])


def test_bad_args(tmp_path):
    gt = write_gt(tmp_path / 'gt.json', [dict(id=1, h=8, w=8)], [], ONE_CLASS)
    with pytest.raises(KeyError):
        VOCInstanceMetric(ann_file=str(gt), metric='proposal')
    with pytest.raises(ValueError):
        VOCInstanceMetric(ann_file=str(gt), iou_thrs=(0.5, 0.501))
