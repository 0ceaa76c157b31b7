"""PRM data and metrics: image-level-label datasets that leak no boxes or masks,
PackImageLabels in real mmdet pipelines, bad files that fail naming themselves,
and MultiLabelMAP / PeakLocalisationMetric against hand-computed values."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from mmengine.dataset import Compose
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from PIL import Image

import projects.wise  # noqa: F401  (registers datasets, transforms, metrics)
import projects.wise.datasets.image_label_dataset as image_label_dataset
from mmdet.registry import DATASETS
from mmdet.structures import DetDataSample
from projects.wise.datasets import PackImageLabels
from projects.wise.datasets.voc_layout import VOC_CLASSES, parse_voc_xml_labels
from projects.wise.errors import DataError
from projects.wise.evaluation import MultiLabelMAP, PeakLocalisationMetric
from projects.wise.evaluation.prm_metrics import average_precision
from projects.wise.utils.io import read_lines

from conftest import SHAPES_CLASSES

META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
             'flip_direction')
GT_GEOMETRY = ('bbox', 'mask', 'instance', 'seg', 'polygon', 'gt_', 'ignore')


@pytest.fixture(autouse=True)
def _mmdet_scope() -> None:
    init_default_scope('mmdet')


def build(root: Path, ann: str, pipeline: list | None = None, classes=SHAPES_CLASSES,
          **kwargs):
    """An ImageLabelDataset; ``classes=None``: the default (VOC's)."""
    if classes is not None:
        kwargs['metainfo'] = dict(classes=classes)
    return DATASETS.build(dict(type='ImageLabelDataset', data_root=str(root), ann_file=ann,
                               data_prefix=dict(img='JPEGImages/'), pipeline=pipeline or [],
                               **kwargs))


def gt_classes(instances_json: Path) -> dict[str, list[str]]:
    """File name -> sorted class names of its GT instances."""
    data = json.loads(instances_json.read_text())
    names = {c['id']: c['name'] for c in data['categories']}
    files = {img['id']: img['file_name'] for img in data['images']}
    out: dict[str, set] = {f: set() for f in files.values()}
    for ann in data['annotations']:
        out[files[ann['image_id']]].add(names[ann['category_id']])
    return {f: sorted(v) for f, v in out.items()}


def write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


def tiny_labels_json(path: Path, labels: list[list[int]], names=('a', 'b', 'c')) -> Path:
    images = [dict(id=i, file_name=f'{i}.jpg', height=20, width=30, labels=lab)
              for i, lab in enumerate(labels, 1)]
    return write_json(path, dict(images=images, annotations=[],
                                 categories=[dict(id=i, name=n)
                                             for i, n in enumerate(names, 1)]))


# ------------------------------------------------------- a. dataset + pipeline
def test_pipeline_packs_image_labels_only(shapes_root: Path) -> None:
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='Resize', scale=(64, 64), keep_ratio=False),
                dict(type='RandomFlip', prob=0.5),
                dict(type='PackImageLabels')]
    ds = build(shapes_root, 'annotations/train_instances.json', pipeline)
    expected = gt_classes(shapes_root / 'annotations/train_instances.json')
    assert len(ds) == len(expected) == 12
    before_pack = Compose(pipeline[:-1])
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        assert set(info) == {'img_path', 'img_id', 'height', 'width', 'image_labels',
                             'sample_idx'}
        results = before_pack(ds.get_data_info(i))
        assert not [k for k in results if any(g in k for g in GT_GEOMETRY)], sorted(results)

        packed = ds[i]
        sample = packed['data_samples']
        assert set(sample.all_keys()) == set(META_KEYS) | {'gt_image_labels'}
        assert sample.gt_image_labels.dtype == torch.int64
        names = [SHAPES_CLASSES[c] for c in sample.gt_image_labels.tolist()]
        assert sorted(names) == expected[Path(sample.img_path).name] and names
        assert sample.img_shape == (64, 64) and sample.ori_shape == (96, 96)
        inputs = packed['inputs']
        assert inputs.shape == (3, 64, 64) and inputs.dtype == torch.uint8
        assert inputs.is_contiguous()

    # the labels json gives the same, and so does a reordered class list (by name)
    plain = build(shapes_root, 'annotations/train_labels.json')
    rev = build(shapes_root, 'annotations/train_labels.json', classes=SHAPES_CLASSES[::-1])
    for i in range(len(ds)):
        labels = ds.get_data_info(i)['image_labels']
        assert plain.get_data_info(i)['image_labels'] == labels == ds.get_cat_ids(i)
        assert sorted(SHAPES_CLASSES[::-1][c] for c in rev.get_data_info(i)['image_labels']) \
            == sorted(SHAPES_CLASSES[c] for c in labels)


def test_random_resize_and_crop_without_boxes(shapes_root: Path) -> None:
    ds = build(shapes_root, 'annotations/val_labels.json')
    pipeline = Compose([dict(type='LoadImageFromFile'),
                        dict(type='RandomResize', scale=(80, 80), ratio_range=(0.8, 1.2),
                             keep_ratio=True),
                        dict(type='RandomCrop', crop_size=(48, 40)),  # (w, h)
                        dict(type='RandomFlip', prob=1.0),
                        dict(type='PackImageLabels', meta_keys=('img_id', 'flip'))])
    for i in range(len(ds)):
        packed = pipeline(ds.get_data_info(i))
        sample = packed['data_samples']
        assert packed['inputs'].shape == (3, 40, 48)
        assert sample.metainfo == dict(img_id=ds.get_data_info(i)['img_id'], flip=True)
        assert sample.gt_image_labels.tolist() == ds.get_data_info(i)['image_labels']


def test_pack_image_labels_non_contiguous_gray_and_unlabelled() -> None:
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)[:, ::-1]  # not contiguous
    packed = PackImageLabels()(dict(img=img, img_id=7, image_labels=[2, 0]))
    assert torch.equal(packed['inputs'], torch.from_numpy(img.copy()).permute(2, 0, 1))
    assert packed['inputs'].is_contiguous()
    assert packed['data_samples'].gt_image_labels.tolist() == [2, 0]
    gray = PackImageLabels()(dict(img=np.zeros((4, 5), np.uint8)))  # inference: no labels
    assert gray['inputs'].shape == (1, 4, 5)
    assert set(gray['data_samples'].all_keys()) == set()


def test_filter_empty_gt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tiny_labels_json(tmp_path / 'labels.json', [[2], [], [1, 3, 1], []])
    logged: list[str] = []
    monkeypatch.setattr(image_label_dataset, 'print_log', lambda msg, **_: logged.append(msg))
    kept = build(tmp_path, 'labels.json', classes=('a', 'b', 'c'),
                 filter_cfg=dict(filter_empty_gt=True))
    assert [kept.get_data_info(i)['image_labels'] for i in range(len(kept))] == [[1], [0, 2]]
    assert len(logged) == 1 and 'skipped 2 of 4 images' in logged[0]
    assert kept.get_data_info(1)['img_path'] == str(tmp_path / 'JPEGImages' / '3.jpg')
    for kwargs in (dict(), dict(filter_cfg=dict(filter_empty_gt=True), test_mode=True)):
        all_ = build(tmp_path, 'labels.json', classes=('a', 'b', 'c'), **kwargs)
        assert [all_.get_data_info(i)['img_id'] for i in range(len(all_))] == [1, 2, 3, 4]
    assert len(logged) == 1


# ------------------------------------------------------ b. VOC XML labels
def test_labels_match_the_voc_xmls_and_images(shapes_root: Path) -> None:
    """Catches converted labels, image paths or sizes that drift from the VOC files."""
    ds = build(shapes_root, 'annotations/train_labels.json')
    ids = read_lines(shapes_root / 'ImageSets' / 'Segmentation' / 'train.txt')
    assert len(ds) == len(ids) == 12
    for i, image_id in enumerate(ids):
        info = ds.get_data_info(i)
        assert Path(info['img_path']) == shapes_root / 'JPEGImages' / f'{image_id}.jpg'
        xml = shapes_root / 'Annotations' / f'{image_id}.xml'
        assert info['image_labels'] == parse_voc_xml_labels(xml, SHAPES_CLASSES)
        with Image.open(info['img_path']) as im:
            assert (info['width'], info['height']) == im.size


# ------------------------------------------------------------ c. bad input
def test_bad_inputs_name_the_file(shapes_root: Path, tmp_path: Path) -> None:
    # unknown class name: the shapes json read with VOC's classes (the default)
    ann = shapes_root / 'annotations' / 'train_labels.json'
    with pytest.raises(DataError, match=rf"{ann}: category 'circle'"):
        build(shapes_root, str(ann), classes=None)
    assert DATASETS.get('ImageLabelDataset').METAINFO['classes'][0] == 'aeroplane'
    with pytest.raises(DataError, match=rf"{ann}: category 'star'"):
        build(shapes_root, str(ann), classes=('circle', 'square', 'triangle', 'cross'))
    # truncated json, for the dataset and both metrics
    truncated = tmp_path / 'truncated.json'
    truncated.write_text(ann.read_text()[:200])
    with pytest.raises(DataError, match=f'{truncated}: not valid JSON'):
        build(tmp_path, 'truncated.json')
    for metric in (MultiLabelMAP, PeakLocalisationMetric):
        with pytest.raises(DataError, match=f'{truncated}: not valid JSON'):
            metric(ann_file=str(truncated))
    # images without image-level labels (a plain COCO json)
    no_labels = write_json(tmp_path / 'plain.json', dict(
        images=[dict(id=1, file_name='1.jpg', height=2, width=2)], annotations=[],
        categories=[dict(id=1, name='circle')]))
    with pytest.raises(DataError, match=rf"{no_labels}: image 1 lacks \['labels'\]"):
        build(tmp_path, 'plain.json')
    # empty split file
    split = tmp_path / 'empty.txt'
    split.write_text('\n \n')
    with pytest.raises(DataError, match=f'{split}: split file is empty'):
        read_lines(split)


def test_voc_xml_labels_and_errors(tmp_path: Path) -> None:
    """Catches difficult objects dropped, repeated classes listed twice, and an unknown
    class or a missing XML passing silently instead of naming the file."""
    xml = tmp_path / 'x1.xml'

    def write(*objects: tuple[str, int]) -> None:
        body = ''.join(f'<object><name>{n}</name><difficult>{d}</difficult></object>'
                       for n, d in objects)
        xml.write_text(f'<annotation><filename>x1.jpg</filename>{body}</annotation>')

    write(('dog', 1), ('cat', 0), ('dog', 0))  # VOC classes; difficult objects count
    assert parse_voc_xml_labels(xml, VOC_CLASSES) == [7, 11]
    write()
    assert parse_voc_xml_labels(xml, VOC_CLASSES) == []
    write(('cat', 0), ('unicorn', 0))
    with pytest.raises(DataError, match=rf"{xml}: object class 'unicorn'"):
        parse_voc_xml_labels(xml, VOC_CLASSES)
    xml.unlink()
    with pytest.raises(DataError, match=f'{xml}: annotation XML not found'):
        parse_voc_xml_labels(xml, VOC_CLASSES)


# ---------------------------------------------------------- d. MultiLabelMAP
def test_average_precision_by_hand() -> None:
    # ranks: + - + -  -> (1/1 + 2/3) / 2
    assert average_precision([0.9, 0.8, 0.7, 0.1], [1, 0, 1, 0]) == pytest.approx(5 / 6)
    # ties form one step, whatever the order: (1/3 + 2/4) / 2
    assert average_precision([0.9, 0.5, 0.5, 0.1], [0, 1, 0, 1]) == pytest.approx(5 / 12)
    assert average_precision([0.9, 0.5, 0.5, 0.1], [0, 0, 1, 1]) == pytest.approx(5 / 12)
    assert np.isnan(average_precision([0.3, 0.2], [0, 0]))


def cls_sample(img_id: int, scores, bogus_gt=None) -> DetDataSample:
    sample = DetDataSample(metainfo=dict(img_id=img_id))
    sample.pred_scores = torch.tensor(scores, dtype=torch.float32)
    if bogus_gt is not None:  # a model passing GT through must change nothing
        sample.gt_image_labels = torch.tensor(bogus_gt)
    return sample


def test_multilabel_map_by_hand(tmp_path: Path) -> None:
    # classes a, b, c; a in images 1 and 3, b in 2 and 4, c nowhere (no AP)
    ann = tiny_labels_json(tmp_path / 'labels.json', [[1], [2], [1], [2]])
    evaluator = Evaluator(dict(type='MultiLabelMAP', ann_file=str(ann)))
    evaluator.dataset_meta = dict(classes=('a', 'b', 'c'))
    scores = {1: [0.9, 0.6, 0.0], 2: [0.8, 0.5, 1.0], 3: [0.7, 0.4, -1.0], 4: [0.1, 0.3, 0.5]}
    # a: + - + - -> 5/6; b: - + - + -> (1/2 + 2/4) / 2
    evaluator.process([cls_sample(i, s, bogus_gt=[2]) for i, s in scores.items()])
    assert evaluator.evaluate(4) == {'prm/mAP': round((5 / 6 + 1 / 2) / 2 * 100, 2)} \
        == {'prm/mAP': 66.67}
    per_class = evaluator.metrics[0].last_results['per_class']
    assert per_class['a'] == dict(num_images=2, AP=pytest.approx(500 / 6))
    assert per_class['b']['AP'] == pytest.approx(50.0)
    assert per_class['c']['num_images'] == 0 and np.isnan(per_class['c']['AP'])

    metric = MultiLabelMAP(ann_file=str(ann), classwise=False, prefix='cls')
    metric.dataset_meta = dict(classes=('a', 'b', 'c'))
    perfect = [cls_sample(i, [float(i % 2), float(1 - i % 2), 0.0]).to_dict()
               for i in (1, 2, 3, 4)]
    metric.process({}, perfect)
    assert metric.evaluate(4) == {'cls/mAP': 100.0}

    metric.process({}, [cls_sample(99, [0.0, 0.0, 0.0]).to_dict()])
    with pytest.raises(DataError, match=f'{ann}: has no image with id 99'):
        metric.evaluate(1)


def test_multilabel_map_perfect_on_shapes(shapes_root: Path) -> None:
    ds = build(shapes_root, 'annotations/val_labels.json')
    samples = []
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        scores = np.full(len(SHAPES_CLASSES), -3.0)
        scores[info['image_labels']] = 2.0
        samples.append(cls_sample(info['img_id'], scores.tolist()).to_dict())
    for name in ('val_labels.json', 'val_instances.json'):
        metric = MultiLabelMAP(ann_file=str(shapes_root / 'annotations' / name))
        metric.dataset_meta = dict(classes=SHAPES_CLASSES)
        metric.process({}, samples)
        assert metric.evaluate(len(samples)) == {'prm/mAP': 100.0}


# ------------------------------------------------- e. PeakLocalisationMetric
def rle(mask: np.ndarray) -> dict:
    r = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': [int(s) for s in r['size']], 'counts': r['counts'].decode()}


def block(h: int, w: int, rows: slice, cols: slice) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[rows, cols] = True
    return m


@pytest.fixture
def peaks_gt(tmp_path: Path) -> Path:
    """Classes a, b, c. Image 1 (20x20): A (a), B (b), C (a), crowd E (b).
    Image 2 (10x12): D (c) in the bottom-right corner. Image 3: F (a)."""
    anns = [(1, 1, block(20, 20, slice(2, 8), slice(2, 8)), 0),        # A
            (1, 2, block(20, 20, slice(10, 16), slice(10, 16)), 0),    # B
            (1, 1, block(20, 20, slice(14, 20), slice(0, 6)), 0),      # C
            (1, 2, block(20, 20, slice(0, 4), slice(14, 20)), 1),      # E, crowd
            (2, 3, block(10, 12, slice(6, 10), slice(8, 12)), 0),      # D
            (3, 1, block(8, 8, slice(0, 4), slice(0, 4)), 0)]          # F
    return write_json(tmp_path / 'instances.json', dict(
        images=[dict(id=1, file_name='1.jpg', height=20, width=20, labels=[1, 2]),
                dict(id=2, file_name='2.jpg', height=10, width=12, labels=[3]),
                dict(id=3, file_name='3.jpg', height=8, width=8, labels=[1])],
        annotations=[dict(id=i, image_id=img, category_id=cat, segmentation=rle(m),
                          area=float(m.sum()), bbox=[0, 0, 1, 1], iscrowd=crowd)
                     for i, (img, cat, m, crowd) in enumerate(anns, 1)],
        categories=[dict(id=1, name='a'), dict(id=2, name='b'), dict(id=3, name='c')]))


def peak_sample(img_id: int, class_scores, peaks) -> DetDataSample:
    """peaks: (x, y, label, peak score)."""
    sample = DetDataSample(metainfo=dict(img_id=img_id))
    sample.pred_scores = torch.tensor(class_scores)
    p = np.asarray(peaks, np.float32).reshape(-1, 4)
    sample.pred_peaks = InstanceData(points=torch.from_numpy(p[:, :2]),
                                     labels=torch.from_numpy(p[:, 2]).long(),
                                     scores=torch.from_numpy(p[:, 3]))
    return sample


PEAK_SAMPLES = [
    peak_sample(1, [2.0, 1.0, -1.0], [
        (4, 4, 0, 0.9),      # in A, own class: hit
        (5.4, 3.6, 0, 0.8),  # -> (5, 4): in A again: hit, A still found once
        (4, 5, 1, 0.7),      # in A, another class's instance: miss
        (12, 2, 0, 0.6),     # background: miss
        (12, 12, 1, 0.5),    # in B: hit
        (16, 1, 1, 0.4),     # in crowd E of its class: hit (E is not in recall)
        (3, 3, 2, 0.9)]),    # class c scores -1 < score_thr: not counted
    peak_sample(2, [-0.2, -0.3, 0.5], [
        (11.7, 9.6, 2, 0.3),  # -> (12, 10), clipped to (11, 9): in D: hit
        (1, 1, 0, 0.9),       # class a scores -0.2: not counted
        (9, 7, 2, 0.05)]),    # in D: hit (a low peak)
    peak_sample(3, [-0.1, -1.0, -1.0], []),  # F not found
]


def test_peak_metric_by_hand(peaks_gt: Path) -> None:
    evaluator = Evaluator([dict(type='PeakLocalisationMetric', ann_file=str(peaks_gt)),
                           dict(type='MultiLabelMAP', ann_file=str(peaks_gt))])
    evaluator.dataset_meta = dict(classes=('a', 'b', 'c'))
    evaluator.process(PEAK_SAMPLES)
    res = evaluator.evaluate(3)
    # 8 counted peaks, 6 hits; instances A B C D F, found A B D
    assert res == {'prm/peak_precision': 75.0, 'prm/instance_recall': 60.0,
                   'prm/num_peaks_per_image': 2.67, 'prm/mAP': 100.0}

    def run(**kwargs) -> dict:
        metric = PeakLocalisationMetric(ann_file=str(peaks_gt), **kwargs)
        metric.dataset_meta = dict(classes=('a', 'b', 'c'))
        metric.process({}, [s.to_dict() for s in PEAK_SAMPLES])
        return metric.evaluate(3)

    # peak_thr drops the 0.05 peak: 5 / 7, D still found
    assert run(peak_thr=0.1) == {'prm/peak_precision': 71.43, 'prm/instance_recall': 60.0,
                                 'prm/num_peaks_per_image': 2.33}
    # score_thr drops class c (0.5): 4 / 6, found A B
    assert run(score_thr=0.6) == {'prm/peak_precision': 66.67, 'prm/instance_recall': 40.0,
                                  'prm/num_peaks_per_image': 2.0}
    assert run(score_thr=5.0) == {'prm/peak_precision': 0.0, 'prm/instance_recall': 0.0,
                                  'prm/num_peaks_per_image': 0.0}


def test_peak_metric_rejects_bad_predictions(peaks_gt: Path) -> None:
    metric = PeakLocalisationMetric(ann_file=str(peaks_gt))
    with pytest.raises(ValueError, match='peak labels outside'):
        metric.process({}, [peak_sample(1, [1.0, 1.0, 1.0], [(1, 1, 3, 1.0)]).to_dict()])
    metric.dataset_meta = dict(classes=('a', 'b'))  # GT category 'c' is unknown
    metric.process({}, [peak_sample(2, [1.0, 1.0], []).to_dict()])
    with pytest.raises(DataError, match=f"{peaks_gt}: category 'c'"):
        metric.evaluate(1)
