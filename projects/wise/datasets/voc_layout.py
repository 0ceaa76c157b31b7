"""PASCAL VOC 2012 on-disk layout: class names, the label palette, label PNGs."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..utils.io import DataError, read_image

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
