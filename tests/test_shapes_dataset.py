"""The built-in data generator: the demo's images stay fixed, the hard variant's
distractors stay out of the labels."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from projects.wise.datasets.shapes import SHAPES, VARIANTS, render_image

from conftest import run_tool


def test_demo_images_are_unchanged_by_the_variants() -> None:
    """Bug caught: a change to the generator that shifts the demo's random draws (every
    demo table, checkpoint and freshness check was measured on these images)."""
    expected = ['53f5a4535d6dbdde465869ec570bec0c', '8f28ba602f73307c85875483f3846120',
                '5350cb08d8f1512e23ae3104f6e7679b']
    for i, digest in enumerate(expected):
        img, _, _, obj_png, _ = render_image(np.random.default_rng([0, i]), 128,
                                             list(SHAPES)[:5], 4, 1.0, 20.0, 15.0)
        assert hashlib.md5(img.tobytes() + obj_png.tobytes()).hexdigest() == digest


def test_distractors_change_the_image_never_the_labels() -> None:
    """Bug caught: a distractor blob written into the class / object label maps (it
    would become an object to find), or a variant without any visible distractor."""
    hard = VARIANTS['hard']
    calm = dataclasses.replace(hard, max_distractors=0)
    classes = list(hard.classes)
    changed = 0
    for i in range(6):
        a = render_image(np.random.default_rng([3, i]), 96, classes, 6, 1.0, 20.0, 15.0, hard)
        b = render_image(np.random.default_rng([3, i]), 96, classes, 6, 1.0, 20.0, 15.0, calm)
        for x, y in zip(a[1:], b[1:]):  # instance map, class PNG, object PNG, labels
            assert np.array_equal(np.asarray(x), np.asarray(y))
        background = a[1] == 0
        changed += np.abs(a[0].astype(int) - b[0].astype(int))[background].max() > 0
    assert changed >= 3  # 0-3 distractors per image: most images have some


def test_hard_variant_writes_its_own_classes_in_voc_layout(tmp_path: Path) -> None:
    """Bug caught: --variant hard writing the demo's classes (configs and converters
    would then mislabel every instance) or more instances than it allows."""
    run_tool('tools/make_shapes_dataset.py', tmp_path, '--variant', 'hard', '--num-train', '8',
             '--num-val', '2', '--num-test', '0', '--image-size', '96', '--seed', '2')
    assert (tmp_path / 'classes.txt').read_text().split() == list(VARIANTS['hard'].classes)
    run_tool('tools/dataset_converters/voc_to_coco.py', tmp_path, '--classes-file',
             tmp_path / 'classes.txt', '--splits', 'train')
    coco = json.loads((tmp_path / 'annotations/train_instances.json').read_text())
    per_image = np.bincount([a['image_id'] for a in coco['annotations']])
    assert len(coco['images']) == 8 and per_image.max() <= VARIANTS['hard'].max_instances
    assert [c['name'] for c in coco['categories']] == list(VARIANTS['hard'].classes)


def test_a_test_split_follows_val_and_leaves_train_and_val_as_they_were(tmp_path: Path):
    """Bug caught: a test split drawn from the train or val images (reported figures on
    images that chose the options), or one that shifts the train / val images (every
    earlier measurement was made on them)."""
    from projects.wise.datasets.shapes import make_dataset
    sets = {}
    for n in (0, 3):
        out = tmp_path / str(n)
        make_dataset(out, 4, 2, 5, 64, None, 7, num_test=n)
        sets[n] = {s: (out / f'ImageSets/Segmentation/{s}.txt').read_text().split()
                   for s in ('train', 'val', 'test', 'trainval')
                   if (out / f'ImageSets/Segmentation/{s}.txt').is_file()}
        sets[n]['bytes'] = [(out / f'JPEGImages/{i}.jpg').read_bytes()
                            for i in sets[n]['train'] + sets[n]['val']]
    assert 'test' not in sets[0] and len(sets[3]['test']) == 3
    assert sets[3]['train'] == sets[0]['train'] and sets[3]['val'] == sets[0]['val']
    assert sets[3]['bytes'] == sets[0]['bytes']
    assert not set(sets[3]['test']) & set(sets[3]['trainval'])


def test_shapes_dataset_configs_read_every_split_of_the_shapes_at_their_size() -> None:
    """Bug caught: one of the two shapes dataset configs (image labels, instances) left
    on VOC's folder, classes or image size in a loader or a metric, or reporting on val
    instead of the held-out test split."""
    from mmengine.config import Config

    from projects.wise.datasets.shapes import SHAPES
    for name, labels in (('image_labels', 'labels'), ('instance', 'instances')):
        cfg = Config.fromfile(f'configs/wise/_base_/datasets/shapes_{name}.py')
        assert cfg.metainfo.classes == tuple(SHAPES)[:5]
        for split in ('train', 'val', 'test'):
            dataset = cfg[f'{split}_dataloader'].dataset
            assert dataset.data_root == 'data/shapes/' and dataset.metainfo == cfg.metainfo
            assert dataset.ann_file == f'annotations/{split}_{labels}.json'
            assert [t.scale for t in dataset.pipeline if t.type == 'Resize'] == [(128, 128)]
        for split in ('val', 'test'):
            metrics = cfg[f'{split}_evaluator']
            files = [m.ann_file for m in (metrics if isinstance(metrics, list) else [metrics])]
            assert files and all(f.startswith(f'data/shapes/annotations/{split}_')
                                 for f in files)
