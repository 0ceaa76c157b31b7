"""Convert PASCAL VOC 2012 (optionally with SBD) to COCO json for WISE.

WISE learns instance segmentation from image-level labels, so every split is
written twice, with the same image ids:

* ``<split>_labels.json``: images with their image-level ``labels`` (category
  ids, from the VOC XML), their ``label_counts`` (objects per label, difficult ones not
  counted, as ILC counts) and no annotations: all that training may see;
* ``<split>_instances.json``: the ground-truth instance masks as COCO RLE, for
  evaluation (and the fully supervised baseline); loads in mmdet's CocoDataset
  as is. Each image also carries its VOC void region (label 255) as ``void``.

Splits are ``ImageSets/Segmentation/<split>.txt`` plus ``train_aug``, the usual
10,582 images: (SBD train + SBD val + VOC train) - VOC val, whose instances come
from SBD's ``inst/<id>.mat`` where VOC has no label PNGs.

    python tools/dataset_converters/voc_to_coco.py data/VOCdevkit/VOC2012 \\
        --sbd-root data/SBD/dataset --splits train_aug val
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io
from PIL import Image, UnidentifiedImageError
from scipy.io.matlab import MatReadError

from projects.wise.datasets.label_files import class_list
from projects.wise.datasets.voc_layout import (VOC_CLASSES, VOID, parse_voc_xml_counts,
                                               read_label_png)
from projects.wise.errors import DataError
from projects.wise.utils.cli import run_tool
from projects.wise.utils.io import dump_json, read_lines
from projects.wise.utils.masks import encode_masks, rle_fields

TRAIN_AUG = 'train_aug'
MAX_CLASSES = VOID - 1  # label values 1..254 name classes; 0 is background
PROGRESS_EVERY = 500

Json = dict[str, Any]


# ---------------------------------------------------------------- inputs ---
def load_classes(classes: str | None = None,
                 classes_file: str | Path | None = None) -> tuple[str, ...]:
    """Class names from ``a,b,c`` or a file with one name a line; VOC's by default.

    Order matters: the i-th name (1-based) is both category id i and the value
    i in the label PNGs.
    """
    names = class_list(classes, classes_file)
    if names is None:
        return VOC_CLASSES
    if len(names) > MAX_CLASSES:
        source = '--classes' if classes is not None else str(classes_file)
        raise DataError(f'{source}: {len(names)} classes, label PNGs hold at most '
                        f'{MAX_CLASSES}')
    return names


def split_ids(data_root: str | Path, split: str,
              sbd_root: str | Path | None = None) -> list[str]:
    """The image ids of a split, in file order (``train_aug``: sorted).

    ``train_aug`` is (SBD train | SBD val | VOC train) - VOC val, the standard
    10,582-image set that keeps every VOC val image out of training.
    """
    seg_sets = Path(data_root) / 'ImageSets' / 'Segmentation'
    if split != TRAIN_AUG:
        if not split or Path(split).name != split:
            raise DataError(f'{split!r}: not a split name')
        return list(dict.fromkeys(read_lines(seg_sets / f'{split}.txt')))
    if sbd_root is None:
        raise DataError(f'split {TRAIN_AUG} needs --sbd-root (the SBD folder with '
                        'train.txt, val.txt and inst/)')
    sbd_root = Path(sbd_root)
    ids = set(read_lines(sbd_root / 'train.txt')) | set(read_lines(sbd_root / 'val.txt'))
    ids |= set(read_lines(seg_sets / 'train.txt'))
    ids -= set(read_lines(seg_sets / 'val.txt'))
    return sorted(ids)


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) of an image that decodes in full: a truncated file is refused
    here, at conversion, rather than hours into training (about 5 ms per VOC image)."""
    if not path.is_file():
        raise DataError(f'{path}: image not found')
    try:
        with Image.open(path) as im:
            im.load()
            width, height = im.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f'{path}: cannot read image ({e})') from None
    return height, width


def image_labels(xml_path: Path, classes: Sequence[str]) -> dict[int, int] | None:
    """Object count of each category id (1-based) in a VOC XML, in id order (difficult
    objects labelled, not counted); None if there is no XML."""
    if not xml_path.is_file():
        return None
    return {c + 1: n for c, n in sorted(parse_voc_xml_counts(xml_path, classes).items())}


def _mat_field(struct: Any, name: str, path: Path) -> np.ndarray:
    try:
        return np.asarray(getattr(struct, name))
    except AttributeError:
        raise DataError(f'{path}: no field {name!r} in the struct') from None


def load_sbd_instances(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """SBD's ``GTinst`` as (HxW uint8 instance ids, 0 = background; class of each id).

    ``classes[k]`` is the 1-based class of instance id k + 1 (SBD ``Categories``).
    """
    try:
        mat = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
    except (MatReadError, OSError, ValueError, TypeError) as e:
        raise DataError(f'{path}: cannot read .mat file ({e})') from None
    if 'GTinst' not in mat:
        raise DataError(f'{path}: no GTinst struct')
    seg = _mat_field(mat['GTinst'], 'Segmentation', path)
    cats = np.atleast_1d(_mat_field(mat['GTinst'], 'Categories', path)).astype(np.int64)
    if seg.ndim != 2 or seg.size == 0 or seg.min() < 0 or seg.max() > VOID - 1:
        raise DataError(f'{path}: GTinst.Segmentation must be an HxW map of ids 0..254')
    if cats.ndim != 1 or len(cats) < seg.max():
        raise DataError(f'{path}: GTinst.Categories has {cats.size} entries for '
                        f'instance ids up to {seg.max()}')
    return seg.astype(np.uint8), cats


def load_gt(data_root: Path, image_id: str, classes: Sequence[str],
            sbd_root: Path | None = None) -> tuple[np.ndarray, np.ndarray, Path]:
    """The (class map, object map, source file) of one image, as VOC label PNGs hold them.

    VOC's PNGs win; SBD's instance .mat fills in for images VOC never labelled.
    SBD maps are turned into VOC's form (class map = class of each instance), so
    a single code path makes the instances.
    """
    cls_png = data_root / 'SegmentationClass' / f'{image_id}.png'
    obj_png = data_root / 'SegmentationObject' / f'{image_id}.png'
    if cls_png.is_file() and obj_png.is_file():
        cls_map, obj_map = read_label_png(cls_png), read_label_png(obj_png)
        for path, label in ((cls_png, cls_map), (obj_png, obj_map)):
            if label.dtype != np.uint8:
                raise DataError(f'{path}: expected 8-bit label values, got {label.dtype}')
        if cls_map.shape != obj_map.shape:
            raise DataError(f'{obj_png}: size {obj_map.shape} differs from {cls_png} '
                            f'{cls_map.shape}')
        _check_class_values(cls_map, len(classes), cls_png)
        return cls_map, obj_map, obj_png
    candidates = [cls_png, obj_png]
    if sbd_root is not None:
        inst_mat = sbd_root / 'inst' / f'{image_id}.mat'
        if inst_mat.is_file():
            obj_map, cats = load_sbd_instances(inst_mat)
            if cats.size and (cats.min() < 1 or cats.max() > len(classes)):
                raise DataError(f'{inst_mat}: GTinst.Categories {cats.tolist()} outside '
                                f'1..{len(classes)}')
            lut = np.zeros(256, np.uint8)
            n = min(len(cats), VOID - 1)
            lut[1:n + 1] = cats[:n]
            lut[VOID] = VOID
            return lut[obj_map], obj_map, inst_mat
        candidates.append(inst_mat)
    missing = ', '.join(str(p) for p in candidates if not p.is_file())
    raise DataError(f'{image_id}: no segmentation ground truth (missing {missing})')


def _check_class_values(cls_map: np.ndarray, num_classes: int, path: Path) -> None:
    counts = np.bincount(cls_map.ravel(), minlength=256)
    bad = np.flatnonzero(counts[num_classes + 1:VOID]) + num_classes + 1
    if bad.size:
        raise DataError(f'{path}: label values {bad.tolist()} exceed the '
                        f'{num_classes} classes')


# --------------------------------------------------------------- outputs ---
def instances_from_maps(cls_map: np.ndarray, obj_map: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(category id, HxW bool mask) for each object index 1..254 of ``obj_map``.

    An object's class is the most frequent non-background, non-void class
    value under it (VOC's maps agree, so this only guards against stray
    pixels); objects with no class pixel at all are dropped.
    """
    obj = obj_map.astype(np.int64).ravel()
    votes = np.bincount(obj * 256 + cls_map.ravel(), minlength=256 * 256).reshape(256, 256)
    votes[:, [0, VOID]] = 0
    obj_ids = np.flatnonzero(np.bincount(obj, minlength=256)[1:VOID]) + 1
    cat_ids = votes[obj_ids].argmax(1)
    keep = votes[obj_ids, cat_ids] > 0
    if not keep.any():
        return []
    obj_ids, cat_ids = obj_ids[keep], cat_ids[keep]
    masks = obj_map[..., None] == obj_ids.astype(np.uint8)[None, None]
    return [(int(c), masks[..., k]) for k, c in enumerate(cat_ids)]


def convert_image(data_root: Path, image_id: str, classes: Sequence[str],
                  sbd_root: Path | None = None) -> tuple[Json, list[Json]]:
    """One image's COCO record (with ``labels`` and maybe ``void``) and its instances.

    Annotation ``id`` and ``image_id`` are left for the caller to number.
    """
    jpg = data_root / 'JPEGImages' / f'{image_id}.jpg'
    height, width = image_size(jpg)
    cls_map, obj_map, gt_path = load_gt(data_root, image_id, classes, sbd_root)
    if cls_map.shape != (height, width):
        raise DataError(f'{gt_path}: label size {cls_map.shape[1]}x{cls_map.shape[0]} '
                        f'differs from image {jpg} {width}x{height}')
    instances = instances_from_maps(cls_map, obj_map)

    counts = image_labels(data_root / 'Annotations' / f'{image_id}.xml', classes)
    if counts is None:  # no XML: the classes and objects the segmentation shows
        shown = np.flatnonzero(np.bincount(cls_map.ravel(), minlength=256)[1:VOID]) + 1
        objects = np.bincount([c for c, _ in instances], minlength=VOID)
        counts = {int(c): int(objects[c]) for c in shown}
    image: Json = dict(file_name=jpg.name, height=height, width=width,
                       labels=list(counts), label_counts=list(counts.values()))

    void = (cls_map == VOID) | (obj_map == VOID)
    if void.any():
        image['void'] = encode_masks(void[None])[0]
    anns: list[Json] = []
    if instances:
        rles = encode_masks(np.stack([m for _, m in instances]))
        anns = [dict(category_id=cat_id, **rle_fields(rle), iscrowd=0)
                for (cat_id, _), rle in zip(instances, rles)]
    return image, anns


def convert_split(data_root: str | Path, ids: Sequence[str],
                  classes: Sequence[str] = VOC_CLASSES, sbd_root: str | Path | None = None,
                  log: Callable[[str], None] | None = None,
                  name: str = '') -> tuple[Json, Json]:
    """Build the (labels, instances) COCO dicts of one split.

    Image ids are 1-based in ``ids`` order and shared by both dicts, so a
    prediction made from one is scored against the other directly.
    """
    data_root = Path(data_root)
    sbd_root = Path(sbd_root) if sbd_root is not None else None
    categories = [dict(id=i, name=n) for i, n in enumerate(classes, 1)]
    label_images: list[Json] = []
    inst_images: list[Json] = []
    annotations: list[Json] = []
    for img_id, image_id in enumerate(ids, 1):
        image, anns = convert_image(data_root, image_id, classes, sbd_root)
        image = dict(id=img_id, **image)
        inst_images.append(image)
        label_images.append({k: v for k, v in image.items() if k != 'void'})
        for ann in anns:
            annotations.append(dict(id=len(annotations) + 1, image_id=img_id, **ann))
        if log is not None and (img_id % PROGRESS_EVERY == 0 or img_id == len(ids)):
            log(f'[voc_to_coco] {name}: {img_id}/{len(ids)} images, '
                f'{len(annotations)} instances')
    # pycocotools >= 2.0.9 needs ``info`` in the ground truth to evaluate.
    info = dict(description=f'{data_root.name} {name}'.strip() + ', converted by voc_to_coco')
    labels_json = dict(info=info, images=label_images, annotations=[],
                       categories=categories)
    instances_json = dict(info=info, images=inst_images, annotations=annotations,
                          categories=categories)
    return labels_json, instances_json


# ------------------------------------------------------------------- CLI ---
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('data_root', type=Path, help='the VOC2012 folder (JPEGImages/, '
                   'Annotations/, SegmentationClass/, SegmentationObject/, ImageSets/)')
    p.add_argument('--out-dir', type=Path,
                   help='where <split>_labels.json and <split>_instances.json go '
                   '(default: DATA_ROOT/annotations)')
    p.add_argument('--sbd-root', type=Path,
                   help='SBD "dataset" folder (train.txt, val.txt, inst/); needed by train_aug')
    p.add_argument('--splits', nargs='+', default=['train', 'val'],
                   help=f'ImageSets/Segmentation/<split>.txt names, or {TRAIN_AUG} '
                   '(default: train val)')
    group = p.add_mutually_exclusive_group()
    group.add_argument('--classes', help='comma-separated class names, in label-PNG '
                       'order (default: the 20 VOC classes)')
    group.add_argument('--classes-file', type=Path, help='file with one class name a line')
    return p.parse_args(argv)


def convert(data_root: Path, out_dir: Path, splits: Sequence[str], classes: Sequence[str],
            sbd_root: Path | None = None) -> None:
    """Convert every split, then write them all: a failure anywhere writes nothing."""
    if not data_root.is_dir():
        raise DataError(f'{data_root}: data root not found')
    if sbd_root is not None and not sbd_root.is_dir():
        raise DataError(f'{sbd_root}: SBD root not found')
    splits = list(dict.fromkeys(splits))
    all_ids = {s: split_ids(data_root, s, sbd_root) for s in splits}  # fail fast
    results = {s: convert_split(data_root, ids, classes, sbd_root, log=_print, name=s)
               for s, ids in all_ids.items()}
    for split, (labels_json, instances_json) in results.items():
        dump_json(labels_json, out_dir / f'{split}_labels.json')
        dump_json(instances_json, out_dir / f'{split}_instances.json')
        _print(f'[voc_to_coco] {split}: {len(instances_json["images"])} images, '
               f'{len(instances_json["annotations"])} instances -> '
               f'{out_dir / split}_{{labels,instances}}.json')


def _print(msg: str) -> None:
    print(msg, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry; bad data gives one ``voc_to_coco.py: error: ...`` line and exit status 1."""
    args = parse_args(argv)

    def run() -> None:
        classes = load_classes(args.classes, args.classes_file)
        convert(args.data_root, args.out_dir or args.data_root / 'annotations',
                args.splits, classes, args.sbd_root)

    return run_tool('voc_to_coco.py', run)


if __name__ == '__main__':
    sys.exit(main())
