"""PASCAL VOC 2012 on-disk layout: class names, the label palette, label PNGs, XMLs."""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DataError
from ..utils.io import read_image

VOC_CLASSES: tuple[str, ...] = (
    'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat',
    'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person',
    'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor')

VOID = 255  # VOC's "don't care" label, drawn on object borders.


def voc_palette() -> np.ndarray:
    """The 256x3 colour map VOC uses for its indexed label PNGs (bit-interleaved)."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette[i] = (r, g, b)
    return palette


def write_label_png(label: np.ndarray, path: str | os.PathLike) -> None:
    """Save an HxW uint8 index map as a palette PNG, as VOC ships them."""
    im = Image.fromarray(label.astype(np.uint8), mode='P')
    im.putpalette(voc_palette().flatten().tolist())
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    im.save(path)


def read_label_png(path: str | os.PathLike) -> np.ndarray:
    """Read a VOC label PNG as its raw palette indices (not RGB colours)."""
    label = read_image(path, mode='P')
    if label.ndim != 2:
        raise DataError(f'{path}: expected an indexed (palette) label PNG, got shape {label.shape}')
    return label


def voc_xml_objects(path: str | os.PathLike, classes: Sequence[str]) -> list[tuple[int, bool]]:
    """(0-based class index, difficult) of every object in a VOC XML.

    An object of a class not in ``classes`` is an error rather than skipped,
    since dropping it would silently mislabel.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f'{path}: annotation XML not found')
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        raise DataError(f'{path}: cannot parse XML ({e})') from None
    label_of = {name: i for i, name in enumerate(classes)}
    objects = []
    for obj in root.iter('object'):
        name = (obj.findtext('name') or '').strip()
        if name not in label_of:
            raise DataError(f'{path}: object class {name!r} is not one of the '
                            f'{len(classes)} classes')
        objects.append((label_of[name], (obj.findtext('difficult') or '0').strip() == '1'))
    return objects


def parse_voc_xml_labels(path: str | os.PathLike, classes: Sequence[str]) -> list[int]:
    """Sorted 0-based indices into ``classes`` of the objects in a VOC XML.

    Difficult objects count: the class is in the image, which is all an
    image-level label claims.
    """
    return sorted({c for c, _ in voc_xml_objects(path, classes)})


def parse_voc_xml_counts(path: str | os.PathLike, classes: Sequence[str]) -> dict[int, int]:
    """Objects per class of a VOC XML (0-based class index -> count), as ILC counts them:
    difficult objects are not counted, truncated ones are. A class with difficult
    objects only is labelled but counts 0: its count is unknown."""
    objects = voc_xml_objects(path, classes)
    counts = {c: 0 for c, _ in objects}
    for c, difficult in objects:
        counts[c] += not difficult
    return counts
