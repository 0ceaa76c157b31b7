"""DeepMask's training patches, drawn from a COCO instance file (Pinheiro et al., NeurIPS
2015, as facebookresearch/deepmask samples them; ../shared/deepmask-reference.md §4).

A sample is a ``window + 2 * context`` square patch and what it teaches:

- **mask** (``mask_prob``): an object centred within ``shift`` patch pixels, its longest
  side ``canonical`` x 2^U(-1/4, 1/4); the label is the object's mask over the central
  ``window``, at ``label_size``, +1 / -1;
- **score**, half positive (an object exactly centred at the canonical size) and half
  negative: a random view, refused while an object lies within 2 ``shift`` of its centre
  at a scale within one octave of it (NeurIPS'15's definition).

With ``supervision='box'`` each object's mask is its filled box ("DeepMask, bounding
box" of the WISE table). Patches are mixed in a batch; the released code draws a whole
batch of one kind, which only changes the loss weights' bookkeeping
(:class:`~projects.wise.models.DeepMask`).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from pycocotools import mask as mask_util
from torch.utils.data import Dataset

from mmdet.registry import DATASETS

from ..errors import DataError
from ..utils.io import load_coco_json, read_image

#: what lies outside the image: the released code's 0.5 grey
FILL = 127.5


@dataclass
class View:
    """One sample: the patch centred at ``centre`` (image pixels) of image ``image_id``,
    2^``s`` image pixels a patch pixel; ``obj`` the object it is positive for, if any."""

    kind: str  # 'mask' or 'score'
    image_id: int
    centre: np.ndarray
    s: float
    flip: bool
    obj: dict | None = None


class DeepMaskPatches(Dataset):
    """Patches for DeepMask from ``ann_file`` (COCO instances) over ``data_root``.

    Args:
        window: side of the region a mask covers (the released code's 160).
        context: pixels of context on each side (16): patches are window + 2 context.
        label_size: side of the mask label (112; SharpMask 160).
        canonical: an object's longest side in the patch (default window * 128 / 224, 92).
        shift: the largest centre jitter of a mask sample (default window / 10, 16).
        mask_prob: the share of mask samples (the released code's coin, 0.5).
        supervision: 'mask', or 'box' (every object's mask is its filled box).
        exclude_classes: category names never sampled (COCO without VOC's 20).
        length: samples an epoch (default: the usable objects).
    """

    def __init__(self, ann_file: str, data_root: str = '', data_prefix: dict | None = None,
                 window: int = 160, context: int = 16, label_size: int = 112,
                 canonical: float | None = None, shift: float | None = None,
                 mask_prob: float = 0.5, supervision: str = 'mask',
                 exclude_classes: Sequence[str] = (), min_area: float = 100,
                 min_side: float = 5, length: int | None = None, **_: Any) -> None:
        if supervision not in ('mask', 'box'):
            raise ValueError(f"supervision must be 'mask' or 'box', not {supervision!r}")
        self.window, self.context, self.label_size = window, context, label_size
        self.patch = window + 2 * context
        self.canonical = canonical or math.ceil(window * 128 / 224)
        self.shift = shift if shift is not None else window / 10
        self.mask_prob, self.supervision = mask_prob, supervision
        ann_path = Path(data_root) / ann_file
        coco = load_coco_json(ann_path)
        unknown = set(exclude_classes) - {c['name'] for c in coco['categories']}
        if unknown:
            raise DataError(f'{ann_path}: exclude_classes names no category: {sorted(unknown)}')
        excluded = {c['id'] for c in coco['categories'] if c['name'] in exclude_classes}
        image_dir = Path(data_root) / (data_prefix or {}).get('img', '')
        self.classes = tuple(c['name'] for c in coco['categories'] if c['id'] not in excluded)
        self.images = {im['id']: dict(im, path=image_dir / im['file_name'])
                       for im in coco['images']}
        self.objects = [a for a in coco['annotations']
                        if not a.get('iscrowd') and a['category_id'] not in excluded
                        and a['area'] >= min_area and min(a['bbox'][2:]) >= min_side]
        if not self.objects:
            raise DataError(f'{ann_path}: no object to sample (crowd, excluded, or under '
                            f'{min_area} px / {min_side} px a side)')
        self.by_class: dict[int, list[int]] = {}
        for i, a in enumerate(self.objects):
            self.by_class.setdefault(a['category_id'], []).append(i)
        self.on_image: dict[int, list[dict]] = {}
        for a in self.objects:
            self.on_image.setdefault(a['image_id'], []).append(a)
        self.length = length or len(self.objects)

    def __len__(self) -> int:
        return self.length

    @property
    def metainfo(self) -> dict[str, Any]:
        return dict(classes=self.classes)

    def full_init(self) -> None:
        """Loaded when built (mmengine's ConcatDataset calls this: several sources mix)."""

    # ---- geometry -----------------------------------------------------------------------

    def log_scale(self, obj: dict) -> float:
        """log2 of how many image pixels a patch pixel spans when ``obj`` is canonical."""
        return math.log2(max(obj['bbox'][2:]) / self.canonical)

    @staticmethod
    def centre(obj: dict) -> np.ndarray:
        x, y, w, h = obj['bbox']
        return np.array([x + w / 2, y + h / 2])

    def _affine(self, centre: np.ndarray, s: float) -> np.ndarray:
        """Image -> patch pixels: the patch's centre at ``centre``, 2^s image px a pixel."""
        k = 2.0 ** -s
        return np.array([[k, 0, self.patch / 2 - k * centre[0]],
                         [0, k, self.patch / 2 - k * centre[1]]])

    def crop(self, img: np.ndarray, centre: np.ndarray, s: float) -> np.ndarray:
        return cv2.warpAffine(img, self._affine(centre, s), (self.patch, self.patch),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=(FILL, FILL, FILL))

    def label(self, mask: np.ndarray, centre: np.ndarray, s: float) -> np.ndarray:
        """+1 / -1 over the central window, ``label_size`` square."""
        full = cv2.warpAffine(mask.astype(np.float32), self._affine(centre, s),
                              (self.patch, self.patch), flags=cv2.INTER_LINEAR)
        c = self.context
        inner = cv2.resize(full[c:c + self.window, c:c + self.window],
                           (self.label_size, self.label_size), interpolation=cv2.INTER_LINEAR)
        return np.where(inner > 0.5, 1.0, -1.0).astype(np.float32)

    def object_mask(self, obj: dict) -> np.ndarray:
        image = self.images[obj['image_id']]
        h, w = image['height'], image['width']
        if self.supervision == 'box':
            x, y, bw, bh = obj['bbox']
            mask = np.zeros((h, w), np.uint8)
            mask[int(round(y)):int(round(y + bh)), int(round(x)):int(round(x + bw))] = 1
            return mask
        segm = obj['segmentation']
        rle = mask_util.frPyObjects(segm, h, w) if isinstance(segm, list) or \
            isinstance(segm.get('counts'), list) else segm
        rle = mask_util.merge(rle) if isinstance(rle, list) else rle
        return mask_util.decode(rle)

    # ---- sampling -----------------------------------------------------------------------

    def _object(self, rng: np.random.RandomState) -> dict:
        """A class uniformly, then one of its objects (the released code's draw)."""
        members = self.by_class[list(self.by_class)[rng.randint(len(self.by_class))]]
        return self.objects[members[rng.randint(len(members))]]

    def _negative(self, rng: np.random.RandomState) -> tuple[int, np.ndarray, float]:
        """A view with no object near its centre at a scale near its own (100 tries)."""
        ids = list(self.images)
        for _ in range(100):
            image = self.images[ids[rng.randint(len(ids))]]
            s = -rng.choice(np.arange(-3, 2.25, 0.25))  # the image seen at 2^k, k in -3..2
            centre = rng.uniform(0, 1, 2) * [image['width'], image['height']]
            near = [o for o in self.on_image.get(image['id'], [])
                    if abs(self.log_scale(o) - s) <= 1
                    and np.linalg.norm(self.centre(o) - centre) / 2 ** s < 2 * self.shift]
            if not near:
                break
        return image['id'], centre, s

    def draw(self, rng: np.random.RandomState) -> View:
        """What the next sample shows."""
        kind = 'mask' if rng.uniform() < self.mask_prob else 'score'
        if kind == 'mask' or rng.uniform() < 0.5:
            obj = self._object(rng)
            centre, s = self.centre(obj), self.log_scale(obj)
            if kind == 'mask':
                s += rng.uniform(-0.25, 0.25)
                centre = centre + rng.uniform(-self.shift, self.shift, 2) * 2 ** s
            return View(kind, obj['image_id'], centre, s, rng.uniform() < 0.5, obj)
        image_id, centre, s = self._negative(rng)
        return View(kind, image_id, centre, s, rng.uniform() < 0.5)

    def render(self, view: View) -> dict[str, Any]:
        """The patch (C x H x W uint8, RGB) and its labels."""
        image = self.images[view.image_id]
        patch = self.crop(read_image(image['path']), view.centre, view.s)
        label = self.label(self.object_mask(view.obj), view.centre, view.s) \
            if view.kind == 'mask' else np.zeros((self.label_size,) * 2, np.float32)
        if view.flip:
            patch, label = patch[:, ::-1], label[:, ::-1]
        return dict(inputs=torch.from_numpy(np.ascontiguousarray(patch.transpose(2, 0, 1))),
                    data_samples=dict(kind=view.kind, score=1.0 if view.obj else -1.0,
                                      mask=torch.from_numpy(np.ascontiguousarray(label))))

    def __getitem__(self, index: int) -> dict[str, Any]:
        # np.random: seeded by the runner (randomness.seed), reseeded in each worker
        return self.render(self.draw(np.random))


DATASETS.register_module(module=DeepMaskPatches)
