"""Mask format helpers shared by metrics, pseudo-mask generation and refinement."""
from __future__ import annotations

from typing import Any, List

import numpy as np
import torch
from pycocotools import mask as mask_util


def to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def str_counts(rle: dict) -> dict:
    """A compressed RLE whose counts are str (json-able, small to pickle)."""
    counts = rle['counts']
    if isinstance(counts, bytes):
        counts = counts.decode('ascii')
    return {'size': [int(rle['size'][0]), int(rle['size'][1])], 'counts': counts}


def bytes_counts(rle: dict) -> dict:
    """A compressed RLE whose counts are bytes (what pycocotools returns)."""
    counts = rle['counts']
    if isinstance(counts, str):
        counts = counts.encode('ascii')
    return {'size': [int(rle['size'][0]), int(rle['size'][1])], 'counts': counts}


def rle_fields(rle: dict) -> dict:
    """The mask fields of a COCO annotation from a compressed RLE: ``segmentation``
    (str counts), ``area`` and ``bbox`` [x, y, w, h], as floats."""
    return dict(segmentation=str_counts(rle), area=float(mask_util.area(rle)),
                bbox=[float(v) for v in mask_util.toBbox(rle)])


def pixel_indices(points: np.ndarray, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) points -> the int column and row of the pixel each falls in, clipped."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    xs = np.clip(np.floor(points[:, 0] + 0.5), 0, hw[1] - 1).astype(np.int64)
    ys = np.clip(np.floor(points[:, 1] + 0.5), 0, hw[0] - 1).astype(np.int64)
    return xs, ys


def disc_window(x: int, y: int, radius: float,
                hw: tuple[int, int]) -> tuple[slice, slice, np.ndarray]:
    """The rows and columns of the box around pixel (x, y) clipped to the image, and the
    bool mask of its pixels within ``radius`` of it."""
    r = int(np.floor(radius))
    rows = slice(max(y - r, 0), min(y + r + 1, hw[0]))
    cols = slice(max(x - r, 0), min(x + r + 1, hw[1]))
    yy, xx = np.ogrid[rows, cols]
    return rows, cols, (xx - x) ** 2 + (yy - y) ** 2 <= radius ** 2


def to_rle(segm: Any, height: int, width: int) -> dict:
    """Polygons, uncompressed RLE or compressed RLE -> compressed RLE."""
    if isinstance(segm, list):
        return mask_util.merge(mask_util.frPyObjects(segm, height, width))
    if isinstance(segm, dict) and isinstance(segm.get('counts'), list):
        return mask_util.frPyObjects(segm, height, width)
    return segm


def binary_masks(masks: np.ndarray) -> np.ndarray:
    """Masks as bool: probabilities above 0.5, other numbers non-zero."""
    if masks.dtype == bool:
        return masks
    return masks > 0.5 if np.issubdtype(masks.dtype, np.floating) else masks != 0


def encode_masks(masks: np.ndarray) -> List[dict]:
    """N x H x W masks -> N compressed RLEs with str counts."""
    if masks.shape[0] == 0:
        return []
    masks = binary_masks(masks)
    rles = mask_util.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    return [str_counts(r) for r in rles]

