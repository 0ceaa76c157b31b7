"""Pseudo masks drawn over their image, for a look at what gen_pseudo chose."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_util


def draw_pseudo_masks(image: np.ndarray, anns: Sequence[dict],
                      classes: Sequence[str]) -> np.ndarray:
    """Each pseudo instance of ``anns`` (COCO, with ``point``) filled in its own colour,
    outlined, with its peak and class name, over the RGB ``image``."""
    out = image.astype(np.float32)
    rng = np.random.default_rng(0)
    for a in anns:
        m = mask_util.decode(a['segmentation']).astype(bool)
        colour = rng.integers(60, 256, 3)
        out[m] = 0.45 * out[m] + 0.55 * colour
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, (255, 255, 255), 1)
        x, y = (int(round(v)) for v in a['point'])
        cv2.drawMarker(out, (x, y), (0, 0, 0), cv2.MARKER_CROSS, 7, 2)
        cv2.putText(out, classes[a['category_id'] - 1][:4], (x + 3, y - 3),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 0), 1, cv2.LINE_AA)
    return np.clip(out, 0, 255).astype(np.uint8)


def save_pseudo_masks(path: Path, image: np.ndarray, anns: Sequence[dict],
                      classes: Sequence[str]) -> None:
    """:func:`draw_pseudo_masks` written as a PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), draw_pseudo_masks(image, anns, classes)[..., ::-1])
