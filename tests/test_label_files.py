"""Image-level labels as people keep them (a csv list, a COCO json) to the labels json:
category ids in the class order, image sizes as the loaders see them, and one line
naming the file and row for every bad row, with nothing written."""
from __future__ import annotations

import json
from pathlib import Path

import mmcv
import numpy as np
import pytest
from PIL import Image

from projects.wise.datasets.label_files import (class_list, has_instances, instances_json,
                                                labels_json)
from projects.wise.errors import DataError
from projects.wise.utils.io import read_image

from conftest import run_tool

TOOL = 'tools/dataset_converters/labels_to_coco.py'


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Three 40x30 JPEGs; c.jpg is stored sideways with EXIF orientation 6 (a phone's)."""
    folder = tmp_path / 'photos'
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ('a.jpg', 'b.jpg'):
        Image.fromarray(rng.integers(0, 255, (30, 40, 3), np.uint8)).save(folder / name)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rng.integers(0, 255, (30, 40, 3), np.uint8)).save(folder / 'c.jpg',
                                                                      exif=exif)
    return folder


def test_a_phone_photo_reads_turned_as_mmcv_loads_it(photos: Path) -> None:
    # would catch: proposals made on the stored (sideways) picture while mmdet trains on
    # the turned one: their sizes disagree and every mask lands in the wrong place
    turned = mmcv.imfrombytes((photos / 'c.jpg').read_bytes(), channel_order='rgb')
    assert turned.shape == (40, 30, 3)
    np.testing.assert_array_equal(read_image(photos / 'c.jpg'), turned)


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / 'labels.csv'
    path.write_text(text)
    return path


def test_csv_rows_to_labels_json(tmp_path: Path, photos: Path) -> None:
    # would catch: the header read as an image, ';' or extra columns dropped, ids not in
    # the class order, a sideways phone photo's size unrotated (proposals then mismatch)
    path = _csv(tmp_path, 'image,labels\n# a comment\na.jpg,dog;cat\n\nb.jpg,car\n'
                          'c.jpg, cat ,car\n')
    data = labels_json(path, photos)
    assert [c['name'] for c in data['categories']] == ['car', 'cat', 'dog']
    assert [(im['file_name'], im['labels']) for im in data['images']] == [
        ('a.jpg', [2, 3]), ('b.jpg', [1]), ('c.jpg', [1, 2])]
    assert [(im['height'], im['width']) for im in data['images']] == [(30, 40), (30, 40),
                                                                       (40, 30)]
    assert data['annotations'] == [] and [im['id'] for im in data['images']] == [1, 2, 3]
    given = labels_json(path, photos, classes=('dog', 'cat', 'car', 'bus'))
    assert given['images'][0]['labels'] == [1, 2] and len(given['categories']) == 4


def test_csv_counts(tmp_path: Path, photos: Path) -> None:
    # would catch: counts misaligned with the sorted labels, a file with counts on some
    # rows only, a zero count or a class counted twice accepted
    path = tmp_path / 'labels.csv'
    path.write_text('a.jpg,dog:2;cat:1\nb.jpg,car:7\n')
    data = labels_json(path, photos)
    assert [(im['labels'], im['label_counts']) for im in data['images']] == [([2, 3], [1, 2]),
                                                                       ([1], [7])]
    for text, msg in [('a.jpg,dog:2;cat\n', 'every label a count'),
                      ('a.jpg,dog:2\nb.jpg,car\n', 'no counts'),
                      ('a.jpg,dog:0\n', '1 or more'),
                      ('a.jpg,dog:1;dog:2\n', 'counted twice')]:
        path.write_text(text)
        with pytest.raises(DataError, match=msg) as e:
            labels_json(path, photos)
        assert str(path) in str(e.value)
    path.write_text('a.jpg,dog;cat\n')
    assert 'label_counts' not in labels_json(path, photos)['images'][0]


def test_coco_json_labels_from_annotations_or_image_labels(tmp_path: Path,
                                                           photos: Path) -> None:
    # would catch: labels taken from image_labels where annotations exist, category ids
    # given in image_labels read as names, categories reordered
    coco = dict(categories=[dict(id=7, name='dog'), dict(id=3, name='cat')],
                images=[dict(id=10, file_name='a.jpg'), dict(id=11, file_name='b.jpg',
                                                            image_labels=['dog', 3])],
                annotations=[dict(id=1, image_id=10, category_id=7),
                             dict(id=2, image_id=10, category_id=7)])
    path = tmp_path / 'coco.json'
    path.write_text(json.dumps(coco))
    data = labels_json(path, photos)
    assert [c['name'] for c in data['categories']] == ['cat', 'dog']  # category id order
    assert [im['labels'] for im in data['images']] == [[2], [1, 2]]


@pytest.mark.parametrize('text, message', [
    ('a.jpg,cat\nz.jpg,dog\n', r'labels.csv:2: image z.jpg not found in .*photos'),
    ('a.jpg,cat\nb.jpg,\n', r'labels.csv:2: image b.jpg has no labels'),
    ('a.jpg,cat\nb.jpg,cow\n', r"labels.csv:2: class 'cow' is not among the classes "
                               r'\(cat, dog\)'),
    ('a.jpg,cat\n\na.jpg,dog\n', r'labels.csv:3: image a.jpg is listed twice \(also at '
                                 r'.*labels.csv:1\)'),
    ('image,labels\n', r'labels.csv: no images listed'),
    ('../outside.jpg,cat\n', r'labels.csv'),
])
def test_bad_rows_name_the_file_and_row(tmp_path: Path, photos: Path, text: str,
                                        message: str) -> None:
    # would catch: a typo'd image name or class silently dropped, a duplicate kept twice
    with pytest.raises(DataError, match=message):
        labels_json(_csv(tmp_path, text), photos, classes=('cat', 'dog'))


def test_bad_files(tmp_path: Path, photos: Path) -> None:
    # would catch: a traceback instead of a line naming the file
    with pytest.raises(DataError, match='nope.csv: label file not found'):
        labels_json(tmp_path / 'nope.csv', photos)
    truncated = tmp_path / 'cut.json'
    truncated.write_text('{"images": [')
    with pytest.raises(DataError, match='cut.json: not valid JSON'):
        labels_json(truncated, photos)
    (photos / 'bad.jpg').write_bytes(b'not a jpeg')
    with pytest.raises(DataError, match='bad.jpg: cannot read image'):
        labels_json(_csv(tmp_path, 'bad.jpg,cat\n'), photos)
    coco = tmp_path / 'coco.json'
    coco.write_text(json.dumps(dict(images=[dict(id=1, file_name='a.jpg')], categories=[],
                                    annotations=[dict(id=5, image_id=1, category_id=2)])))
    with pytest.raises(DataError, match='coco.json: annotation 5 has category 2'):
        labels_json(coco, photos)
    with pytest.raises(DataError, match='duplicate class names'):
        class_list('cat,dog,cat')


def test_tool_writes_the_json_or_one_line_and_nothing(tmp_path: Path, photos: Path) -> None:
    # would catch: a half-written or clobbered output on a bad row, a traceback
    out = tmp_path / 'annotations/train_labels.json'
    good = _csv(tmp_path, 'a.jpg,cat\nb.jpg,dog\n')
    proc = run_tool(TOOL, good, '--images', photos, '--out', out, '--classes', 'dog,cat')
    assert '2 images, classes dog, cat' in proc.stdout
    first = out.read_text()
    assert [im['labels'] for im in json.loads(first)['images']] == [[2], [1]]
    bad = tmp_path / 'bad.csv'
    bad.write_text('a.jpg,cat\nb.jpg,cow\n')
    proc = run_tool(TOOL, bad, '--images', photos, '--out', out, '--classes', 'dog,cat',
                    check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"labels_to_coco.py: error: {bad}:2: class 'cow' is not among the classes (dog, cat)"]
    assert out.read_text() == first


def test_val_masks_land_on_the_labels_images_and_ids(tmp_path: Path, photos: Path) -> None:
    # would catch: masks kept on the COCO json's own image / category ids while the labels
    # json numbers images 1..N and classes in --classes order (every mask would score
    # against another image or class)
    rle = dict(size=[30, 40], counts='0`0')
    coco = dict(categories=[dict(id=7, name='dog'), dict(id=3, name='cat')],
                images=[dict(id=70, file_name='b.jpg'), dict(id=40, file_name='a.jpg')],
                annotations=[dict(id=9, image_id=40, category_id=7, segmentation=rle),
                             dict(id=8, image_id=70, category_id=3, segmentation=rle)])
    path = tmp_path / 'val.json'
    path.write_text(json.dumps(coco))
    assert has_instances(path) and not has_instances(_csv(tmp_path, 'a.jpg,cat\n'))
    labels = labels_json(path, photos, classes=('cat', 'dog'))
    inst = instances_json(path, labels)
    ids = {im['file_name']: im['id'] for im in labels['images']}
    assert inst['images'] == labels['images'] and inst['categories'] == labels['categories']
    assert [(a['id'], a['image_id'], a['category_id']) for a in inst['annotations']] == [
        (1, ids['a.jpg'], 2), (2, ids['b.jpg'], 1)]
