"""The oracle's peaks: ground-truth instance centres instead of PRM peaks.

Labelling from them bounds what a selection strategy can reach with perfect peaks
(``tools/gen_pseudo.py --oracle``).
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from pycocotools import mask as mask_util

from ..errors import DataError
from ..utils.io import load_json
from ..utils.masks import to_rle
from .peak_set import PeakSet


class GTPoints:
    """Each ground-truth instance's most interior pixel, by image id.

    Categories map to labels by name, as everywhere else: a json whose categories
    come in another order than ``classes`` labels the same.
    """

    def __init__(self, ann_file: str, classes: Sequence[str]) -> None:
        data = load_json(ann_file)
        self.ann_file = ann_file
        self.classes = tuple(classes)
        label = {name: i for i, name in enumerate(self.classes)}
        self.cat2label = {c['id']: label.get(c['name']) for c in data['categories']}
        self.anns: dict[int, list[dict]] = {}
        for a in data.get('annotations', []):
            if not a.get('iscrowd', 0):
                self.anns.setdefault(a['image_id'], []).append(a)

    def __call__(self, img_id: int, hw: tuple[int, int]) -> PeakSet:
        labels, points = [], []
        for rle, a in zip(self.rles(img_id, hw), self.anns.get(img_id, [])):
            m = mask_util.decode(rle)
            depth = cv2.distanceTransform(np.pad(m, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
            y, x = np.unravel_index(depth.argmax(), depth.shape)
            labels.append(self._label(a['category_id']))
            points.append((x, y))
        return PeakSet(np.array(labels, np.int64), np.array(points, np.float64).reshape(-1, 2),
                       np.ones(len(labels)))

    def _label(self, cat_id: int) -> int:
        label = self.cat2label.get(cat_id)
        if label is None:
            raise DataError(f'{self.ann_file}: category id {cat_id} is not one of the classes '
                            f'{list(self.classes)}')
        return label

    def objects(self, img_id: int, hw: tuple[int, int]) -> tuple[list[dict], list[int]]:
        """The image's ground-truth masks (:meth:`rles`) and their 0-based labels."""
        return (self.rles(img_id, hw),
                [self._label(a['category_id']) for a in self.anns.get(img_id, [])])

    def rles(self, img_id: int, hw: tuple[int, int]) -> list[dict]:
        """The image's ground-truth masks as compressed RLEs."""
        return [to_rle(a['segmentation'], *hw) for a in self.anns.get(img_id, [])]
