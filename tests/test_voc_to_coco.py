"""voc_to_coco on a hand-made VOC 2012 + SBD tree: exact masks, boxes, labels and
split composition, outputs that mmdet loads as is, and one-line errors that
leave earlier outputs untouched."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils
import pytest

from projects.wise.datasets.voc_layout import VOC_CLASSES, VOID, write_label_png
from tools.dataset_converters import voc_to_coco

from conftest import run_tool
from voc_tree import CAT, write_jpeg, write_lines, write_sbd_inst, write_voc_image, write_xml

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / 'tools' / 'dataset_converters' / 'voc_to_coco.py'


# VOC train: A (crafted, also in SBD train), C (no XML). VOC val: B (also in SBD val).
# SBD only: D (SBD train), E (SBD val, a single instance).
A, B, C, D, E = '2007_000032', '2007_000033', '2007_000039', '2008_000002', '2008_000010'


def crafted_maps() -> tuple[np.ndarray, np.ndarray]:
    """8x12 maps: two touching cats (objects 1, 2), a dog (3), 255 borders, and a
    stray dog pixel inside cat 1 that the majority vote must outvote."""
    cls_map = np.zeros((8, 12), np.uint8)
    obj_map = np.zeros((8, 12), np.uint8)
    obj_map[1:5, 1:4] = 1
    obj_map[1:5, 4:7] = 2
    cls_map[1:5, 1:7] = CAT['cat']
    cls_map[2, 2] = CAT['dog']
    obj_map[5:7, 8:11] = 3
    cls_map[5:7, 8:11] = CAT['dog']
    for m in (cls_map, obj_map):
        m[0, :8] = VOID
        m[1:5, 7] = VOID
        m[7, 7:] = VOID
    return cls_map, obj_map


def sbd_d_seg() -> np.ndarray:
    seg = np.zeros((6, 7), np.uint8)
    seg[0:3, 0:3] = 1
    seg[3:6, 2:7] = 2
    return seg


@pytest.fixture
def voc(tmp_path: Path) -> tuple[Path, Path]:
    """(VOC2012 root, SBD root) of the tree described at the top of this file."""
    root, sbd = tmp_path / 'VOC2012', tmp_path / 'SBD'
    cls_map, obj_map = crafted_maps()
    write_voc_image(root, A, cls_map, obj_map,
                    [('cat', 0), ('cat', 0), ('dog', 0), ('person', 1)])
    b = np.zeros((5, 6), np.uint8)
    b[1:4, 1:5] = 1
    write_voc_image(root, B, b * CAT['aeroplane'], b, [('aeroplane', 0)])
    c = np.zeros((4, 5), np.uint8)
    c[1:3, 2:4] = 1
    write_voc_image(root, C, c * CAT['bus'], c, None)
    write_jpeg(root / 'JPEGImages' / f'{D}.jpg', 6, 7)
    write_xml(root / 'Annotations' / f'{D}.xml', [('bird', 0), ('boat', 0)])
    write_sbd_inst(sbd, D, sbd_d_seg(), [CAT['bird'], CAT['boat']])
    write_jpeg(root / 'JPEGImages' / f'{E}.jpg', 3, 4)
    write_xml(root / 'Annotations' / f'{E}.xml', [('horse', 0)])
    write_sbd_inst(sbd, E, np.pad(np.ones((1, 2), np.uint8), 1), [CAT['horse']])
    write_sbd_inst(sbd, B, b, [CAT['aeroplane']])

    write_lines(root / 'ImageSets' / 'Segmentation' / 'train.txt', [A, C])
    write_lines(root / 'ImageSets' / 'Segmentation' / 'val.txt', [B])
    (root / 'ImageSets' / 'Main').mkdir(parents=True)
    write_lines(sbd / 'train.txt', [D, A])
    write_lines(sbd / 'val.txt', [E, B])
    return root, sbd


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def anns_of(coco: dict, image_id: int) -> list[dict]:
    return [a for a in coco['annotations'] if a['image_id'] == image_id]


def decode(rle: dict) -> np.ndarray:
    return mask_utils.decode(rle).astype(bool)


# ------------------------------------------------------------- conversion ---
def test_crafted_image_exact(voc: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    root, _ = voc
    assert voc_to_coco.main([str(root), '--splits', 'train', 'val']) == 0
    out = capsys.readouterr().out
    assert '[voc_to_coco] train: 2 images, 4 instances' in out
    assert '[voc_to_coco] val: 1 images, 1 instances' in out

    coco = load(root / 'annotations' / 'train_instances.json')
    assert coco['categories'] == [{'id': i, 'name': n} for i, n in enumerate(VOC_CLASSES, 1)]
    img_a, img_c = coco['images']
    assert {k: img_a[k] for k in ('id', 'file_name', 'height', 'width', 'labels')} == {
        'id': 1, 'file_name': f'{A}.jpg', 'height': 8, 'width': 12,
        'labels': [CAT['cat'], CAT['dog'], CAT['person']]}  # the difficult person counts

    cls_map, obj_map = crafted_maps()
    anns = anns_of(coco, 1)
    assert [a['category_id'] for a in anns] == [CAT['cat'], CAT['cat'], CAT['dog']]
    assert [a['bbox'] for a in anns] == [[1, 1, 3, 4], [4, 1, 3, 4], [8, 5, 3, 2]]
    assert [a['area'] for a in anns] == [12.0, 12.0, 6.0]
    assert all(isinstance(a['area'], float) and a['iscrowd'] == 0 for a in anns)
    for obj_id, ann in enumerate(anns, 1):
        assert isinstance(ann['segmentation']['counts'], str)
        assert ann['segmentation']['size'] == [8, 12]
        np.testing.assert_array_equal(decode(ann['segmentation']), obj_map == obj_id)
    void = decode(img_a['void'])
    np.testing.assert_array_equal(void, cls_map == VOID)
    assert void.sum() == 17

    # C has no XML: labels fall back to the segmentation's classes; no void key.
    assert img_c['id'] == 2 and img_c['labels'] == [CAT['bus']] and 'void' not in img_c
    assert [a['category_id'] for a in anns_of(coco, 2)] == [CAT['bus']]
    assert [a['id'] for a in coco['annotations']] == [1, 2, 3, 4]


def test_labels_file_has_image_labels_only(voc: tuple[Path, Path]) -> None:
    root, _ = voc
    assert voc_to_coco.main([str(root), '--splits', 'train']) == 0
    labels = load(root / 'annotations' / 'train_labels.json')
    instances = load(root / 'annotations' / 'train_instances.json')
    assert labels['annotations'] == []
    assert labels['categories'] == instances['categories']

    def keys(node: Any) -> set[str]:
        if isinstance(node, dict):
            return set(node).union(*map(keys, node.values()))
        if isinstance(node, list):
            return set().union(*map(keys, node))
        return set()

    assert not keys(labels) & {'bbox', 'segmentation', 'area', 'void', 'counts'}
    assert [(i['id'], i['file_name'], i['labels']) for i in labels['images']] == [
        (i['id'], i['file_name'], i['labels']) for i in instances['images']]
    assert CAT['person'] in labels['images'][0]['labels']


def test_sbd_mat_loader(voc: tuple[Path, Path]) -> None:
    _, sbd = voc
    seg, cats = voc_to_coco.load_sbd_instances(sbd / 'inst' / f'{D}.mat')
    np.testing.assert_array_equal(seg, sbd_d_seg())
    assert seg.dtype == np.uint8 and cats.tolist() == [CAT['bird'], CAT['boat']]
    seg, cats = voc_to_coco.load_sbd_instances(sbd / 'inst' / f'{E}.mat')  # 1x1 squeezed
    assert cats.tolist() == [CAT['horse']] and seg.shape == (3, 4)


def test_train_aug(voc: tuple[Path, Path]) -> None:
    root, sbd = voc
    ids = voc_to_coco.split_ids(root, 'train_aug', sbd)
    assert ids == sorted([A, C, D, E])  # B is VOC val: out, even though SBD has it
    assert voc_to_coco.main([str(root), '--sbd-root', str(sbd), '--splits', 'train_aug']) == 0
    coco = load(root / 'annotations' / 'train_aug_instances.json')
    assert [i['file_name'] for i in coco['images']] == [f'{i}.jpg' for i in ids]

    img_d = coco['images'][ids.index(D)]
    assert (img_d['height'], img_d['width']) == (6, 7) and 'void' not in img_d
    assert img_d['labels'] == [CAT['bird'], CAT['boat']]
    anns = anns_of(coco, img_d['id'])
    assert [a['category_id'] for a in anns] == [CAT['bird'], CAT['boat']]
    assert [a['bbox'] for a in anns] == [[0, 0, 3, 3], [2, 3, 5, 3]]
    assert [a['area'] for a in anns] == [9.0, 15.0]
    for obj_id, ann in enumerate(anns, 1):
        np.testing.assert_array_equal(decode(ann['segmentation']), sbd_d_seg() == obj_id)
    img_e = coco['images'][ids.index(E)]
    assert [a['category_id'] for a in anns_of(coco, img_e['id'])] == [CAT['horse']]
    # A comes from VOC's PNGs although SBD lists it too.
    assert len(anns_of(coco, coco['images'][ids.index(A)]['id'])) == 3
    assert len(coco['annotations']) == 3 + 1 + 2 + 1


def test_loads_in_pycocotools_and_mmdet(voc: tuple[Path, Path]) -> None:
    from pycocotools.coco import COCO

    from mmdet.datasets import CocoDataset

    root, sbd = voc
    assert voc_to_coco.main([str(root), '--sbd-root', str(sbd), '--splits', 'train_aug']) == 0
    ann_file = root / 'annotations' / 'train_aug_instances.json'
    coco = COCO(str(ann_file))
    assert len(coco.getImgIds()) == 4 and len(coco.getAnnIds()) == 7
    assert coco.annToMask(coco.loadAnns(1)[0]).sum() == 12

    for name in ('train_aug_instances.json', 'train_aug_labels.json'):
        ds = CocoDataset(ann_file=str(root / 'annotations' / name), data_root=str(root),
                         data_prefix=dict(img='JPEGImages/'),
                         metainfo=dict(classes=VOC_CLASSES), pipeline=[])
        infos = [ds.get_data_info(i) for i in range(len(ds))]
        assert len(ds) == 4
        assert infos[0]['img_path'] == str(root / 'JPEGImages' / f'{A}.jpg')
        n = sum(len(info['instances']) for info in infos)
        assert n == (7 if name.endswith('instances.json') else 0)
        if name.endswith('instances.json'):
            first = infos[0]['instances'][0]
            assert first['bbox'] == [1, 1, 4, 5] and first['bbox_label'] == CAT['cat'] - 1
            assert first['mask']['size'] == [8, 12]


def make_shapes_tree(root: Path, values: int = 2) -> None:
    """One 4x6 image whose label PNG values 1..``values`` are custom classes."""
    cls_map = np.zeros((4, 6), np.uint8)
    obj_map = np.zeros((4, 6), np.uint8)
    for v in range(1, values + 1):
        cls_map[1:3, 2 * v - 2:2 * v - 1] = v
        obj_map[1:3, 2 * v - 2:2 * v - 1] = v
    names = ['circle', 'square', 'star'][:values]
    write_voc_image(root, 'shape_0', cls_map, obj_map, [(n, 0) for n in names])
    write_lines(root / 'ImageSets' / 'Segmentation' / 'train.txt', ['shape_0'])


@pytest.mark.parametrize('how', ['--classes', '--classes-file'])
def test_custom_classes(tmp_path: Path, how: str) -> None:
    from mmdet.datasets import CocoDataset

    root = tmp_path / 'shapes'
    make_shapes_tree(root)
    classes = ('circle', 'square')
    if how == '--classes':
        arg = ','.join(classes)
    else:
        arg = str(tmp_path / 'classes.txt')
        write_lines(Path(arg), list(classes))
    assert voc_to_coco.main([str(root), '--splits', 'train', how, arg]) == 0
    coco = load(root / 'annotations' / 'train_instances.json')
    assert coco['categories'] == [{'id': 1, 'name': 'circle'}, {'id': 2, 'name': 'square'}]
    assert [a['category_id'] for a in coco['annotations']] == [1, 2]
    assert coco['images'][0]['labels'] == [1, 2]
    ds = CocoDataset(ann_file=str(root / 'annotations' / 'train_instances.json'),
                     data_root=str(root), data_prefix=dict(img='JPEGImages/'),
                     metainfo=dict(classes=classes), pipeline=[])
    assert [i['bbox_label'] for i in ds.get_data_info(0)['instances']] == [0, 1]


# ----------------------------------------------------------------- errors ---
def run_cli(args: list[str], subprocess_: bool,
            capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """(exit status, stderr) of the tool, as a user runs it or through main()."""
    if not subprocess_:
        capsys.readouterr()
        rc = voc_to_coco.main(args)
        return rc, capsys.readouterr().err
    proc = run_tool(TOOL, *args, check=False, timeout=120)
    return proc.returncode, proc.stderr


def _missing_root(root: Path, sbd: Path) -> tuple[list[str], list[Path]]:
    missing = root.parent / 'no_such_VOC2012'
    return [str(missing), '--out-dir', str(root / 'annotations')], [missing]


def _empty_split(root: Path, sbd: Path) -> tuple[list[str], list[Path]]:
    split = root / 'ImageSets' / 'Segmentation' / 'val.txt'
    split.write_text('\n')
    return [], [split]


def _corrupt_jpeg(root: Path, sbd: Path) -> tuple[list[str], list[Path]]:
    jpg = root / 'JPEGImages' / f'{B}.jpg'  # in val: train's outputs must survive too
    jpg.write_bytes(b'\xff\xd8\xff\xe0 this is not a JPEG')
    return [], [jpg]


def _missing_jpeg(root: Path, sbd: Path) -> tuple[list[str], list[Path | str]]:
    jpg = root / 'JPEGImages' / f'{C}.jpg'
    jpg.unlink()
    return [], [jpg, 'image not found']


def _unknown_xml_class(root: Path, sbd: Path) -> tuple[list[str], list[Path | str]]:
    xml = root / 'Annotations' / f'{A}.xml'
    write_xml(xml, [('cat', 0), ('unicorn', 0)])
    return [], [xml, 'unicorn']


def _png_value_over_classes(root: Path, sbd: Path) -> tuple[list[str], list[Path]]:
    png = root / 'SegmentationClass' / f'{C}.png'
    c = np.zeros((4, 5), np.uint8)
    c[1:3, 2:4] = len(VOC_CLASSES) + 1
    write_label_png(c, png)
    return [], [png]


def _missing_gt(root: Path, sbd: Path) -> tuple[list[str], list[Path]]:
    png = root / 'SegmentationObject' / f'{A}.png'
    png.unlink()
    return ['--sbd-root', str(sbd)], [png, sbd / 'inst' / f'{A}.mat']


def _label_size_mismatch(root: Path, sbd: Path) -> tuple[list[str], list[Path]]:
    write_jpeg(root / 'JPEGImages' / f'{C}.jpg', 5, 5)
    return [], [root / 'SegmentationObject' / f'{C}.png']


def _train_aug_without_sbd(root: Path, sbd: Path) -> tuple[list[str], list[str]]:
    return ['--splits', 'train', 'train_aug'], ['--sbd-root']


@pytest.mark.parametrize('break_input,subprocess_', [
    (_missing_root, True),
    (_corrupt_jpeg, True),
    (_missing_jpeg, False),
    (_empty_split, False),
    (_unknown_xml_class, False),
    (_png_value_over_classes, False),
    (_missing_gt, False),
    (_label_size_mismatch, False),
    (_train_aug_without_sbd, False),
])
def test_bad_input_exits_2_and_keeps_outputs(
        voc: tuple[Path, Path], capsys: pytest.CaptureFixture,
        break_input: Callable[[Path, Path], tuple[list[str], list[Any]]],
        subprocess_: bool) -> None:
    root, sbd = voc
    out_dir = root / 'annotations'
    assert voc_to_coco.main([str(root), '--splits', 'train', 'val']) == 0
    before = {p.name: p.read_bytes() for p in out_dir.iterdir()}
    assert len(before) == 4

    extra_args, culprits = break_input(root, sbd)
    args = extra_args if extra_args and not extra_args[0].startswith('-') else [
        str(root), '--splits', 'train', 'val', *extra_args]
    rc, err = run_cli(args, subprocess_, capsys)
    assert rc == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('voc_to_coco.py: error: '), err
    for culprit in culprits:
        assert str(culprit) in lines[0]
    assert {p.name: p.read_bytes() for p in out_dir.iterdir()} == before  # no temp files
