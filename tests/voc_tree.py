"""Writers of a PASCAL VOC 2012 + SBD tree, as the real ones are laid out, for tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from projects.wise.datasets.voc_layout import VOC_CLASSES, VOID, write_label_png

CAT = {name: i for i, name in enumerate(VOC_CLASSES, 1)}  # category ids, 1-based


def write_jpeg(path: Path, h: int, w: int, pixels: np.ndarray | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if pixels is None:
        pixels = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)


def write_xml(path: Path, objects: list[tuple[str, int]]) -> None:
    """A VOC annotation with (class name, difficult) objects."""
    objs = ''.join(
        f'<object><name>{name}</name><pose>Left</pose><truncated>0</truncated>'
        f'<difficult>{difficult}</difficult><bndbox><xmin>1</xmin><ymin>1</ymin>'
        f'<xmax>2</xmax><ymax>2</ymax></bndbox></object>\n' for name, difficult in objects)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'<annotation><folder>VOC2012</folder><filename>{path.stem}.jpg</filename>'
                    f'\n{objs}</annotation>\n')


def write_voc_image(root: Path, image_id: str, cls_map: np.ndarray, obj_map: np.ndarray,
                    objects: list[tuple[str, int]] | None,
                    pixels: np.ndarray | None = None) -> None:
    write_jpeg(root / 'JPEGImages' / f'{image_id}.jpg', *cls_map.shape, pixels)
    write_label_png(cls_map, root / 'SegmentationClass' / f'{image_id}.png')
    write_label_png(obj_map, root / 'SegmentationObject' / f'{image_id}.png')
    if objects is not None:
        write_xml(root / 'Annotations' / f'{image_id}.xml', objects)


def write_sbd_inst(sbd: Path, image_id: str, seg: np.ndarray, cats: list[int]) -> None:
    path = sbd / 'inst' / f'{image_id}.mat'
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {'GTinst': {'Segmentation': seg.astype(np.uint8),
                                       'Categories': np.array(cats, np.uint8)[:, None]}})


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(f'{line}\n' for line in lines))


def _random_image(rng: np.random.Generator, hw: tuple[int, int], max_objects: int):
    """A VOC-sized picture of 1..max_objects filled ellipses of random VOC classes on a
    noisy background, with its class map, object map (void borders) and objects."""
    h, w = hw
    pixels = rng.integers(60, 120, (h, w, 3), dtype=np.uint8)
    cls_map = np.zeros(hw, np.uint8)
    obj_map = np.zeros(hw, np.uint8)
    yy, xx = np.mgrid[:h, :w]
    objects = []
    for k in range(1, rng.integers(1, max_objects + 1) + 1):
        name = VOC_CLASSES[rng.integers(len(VOC_CLASSES))]
        cy, cx = rng.integers(h // 5, 4 * h // 5), rng.integers(w // 5, 4 * w // 5)
        ry, rx = rng.integers(h // 10, h // 4), rng.integers(w // 10, w // 4)
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        ring = (((yy - cy) / (ry + 2)) ** 2 + ((xx - cx) / (rx + 2)) ** 2 <= 1) & ~inside
        pixels[inside] = rng.integers(0, 256, 3)
        cls_map[inside], obj_map[inside] = CAT[name], k
        cls_map[ring & (cls_map == 0)] = VOID
        obj_map[ring & (obj_map == 0)] = VOID
        objects.append((name, 0))
    return pixels, cls_map, obj_map, objects


def make_voc_tree(tmp: Path, num_train: int = 3, num_val: int = 2, num_sbd: int = 2,
                  hw: tuple[int, int] = (375, 500), max_objects: int = 2,
                  seed: int = 0) -> tuple[Path, Path]:
    """(VOC2012 root, SBD root): VOC train and val images with label PNGs, and SBD-only
    images (instance .mat files, in SBD's train list) that VOC never labelled; SBD's val
    list holds a VOC val image, so train_aug = SBD train + SBD val + VOC train - VOC
    val has ``num_train + num_sbd`` images."""
    rng = np.random.default_rng(seed)
    root, sbd = tmp / 'VOC2012', tmp / 'SBD'
    ids = {split: [f'2010_{split[:2]}{i:04d}' for i in range(n)]
           for split, n in (('train', num_train), ('val', num_val), ('sbd', num_sbd))}
    for split in ('train', 'val'):
        for image_id in ids[split]:
            pixels, cls_map, obj_map, objects = _random_image(rng, hw, max_objects)
            write_voc_image(root, image_id, cls_map, obj_map, objects, pixels)
        write_lines(root / 'ImageSets' / 'Segmentation' / f'{split}.txt', ids[split])
    for image_id in ids['sbd']:
        pixels, cls_map, obj_map, objects = _random_image(rng, hw, max_objects)
        obj_map[obj_map == VOID] = 0  # SBD has no void borders
        cats = [CAT[name] for name, _ in objects]
        write_jpeg(root / 'JPEGImages' / f'{image_id}.jpg', *hw, pixels)
        write_xml(root / 'Annotations' / f'{image_id}.xml', objects)
        write_sbd_inst(sbd, image_id, obj_map, cats)
    write_lines(sbd / 'train.txt', ids['sbd'])
    write_lines(sbd / 'val.txt', ids['val'][:1])  # as in SBD: train_aug leaves it out
    return root, sbd
