"""Class-agnostic object proposals: the container and the source interface.

Proposals of arbitrary masks (SAM, imported SharpMask / deepmask files) stay COCO
RLEs: 1000 masks of a 500x375 image take ~190 MB decoded but a few hundred KB as
RLE, and pycocotools' C routines answer what WISE asks of them (which proposals
cover a point, IoU against predictions) without decoding. The built-in ones are
unions of superpixels and answer faster as such (segments.SegmentProposals, a
subclass with the same methods).
"""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pycocotools import mask as mask_util

from ..errors import ProposalError
from ..utils.io import dump_json
from ..utils.masks import bytes_counts, disc_window, encode_masks, pixel_indices, str_counts, to_rle


def _as_rle(segm: Any, hw: tuple[int, int], where: str) -> dict:
    """A COCO RLE (compressed, ``counts`` as bytes) of the given size, or ProposalError."""
    size = [int(hw[0]), int(hw[1])]
    if type(segm) is dict and type(segm.get('counts')) is str and segm.get('size') == size:
        # the common case without conversions: 1000 per image at test time
        return {'size': size, 'counts': segm['counts'].encode('ascii')}
    if isinstance(segm, dict) and 'counts' in segm and 'size' in segm:
        if tuple(int(v) for v in segm['size']) != tuple(hw):
            raise ProposalError(f'{where}: proposal mask size {list(segm["size"])} != '
                                f'image size {list(hw)}')
        return bytes_counts(to_rle(segm, *hw))
    raise ProposalError(f'{where}: a proposal segmentation must be a COCO RLE dict, '
                        f'got {type(segm).__name__}')


@dataclass
class Proposals:
    """N class-agnostic masks of one H x W image with an objectness score each."""

    FILE_SUFFIX: ClassVar[str] = '.json'  # what ``save`` writes

    rles: list[dict]
    scores: np.ndarray
    hw: tuple[int, int]
    source: str = ''  # the file they came from, for messages

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        if len(self.scores) != len(self.rles):
            raise ProposalError(f'{self.source or "proposals"}: {len(self.rles)} masks but '
                                f'{len(self.scores)} scores')

    @classmethod
    def from_masks(cls, masks: np.ndarray, scores: np.ndarray, source: str = '') -> Proposals:
        """From an N x H x W boolean array."""
        masks = np.asarray(masks, dtype=np.uint8)
        hw = tuple(int(v) for v in masks.shape[1:3])
        rles = mask_util.encode(np.asfortranarray(masks.transpose(1, 2, 0))) if len(masks) else []
        return cls(list(rles), scores, hw, source)

    @classmethod
    def from_coco(cls, segms: list, scores: list, hw: tuple[int, int],
                  source: str = '') -> Proposals:
        """From COCO segmentations (RLE dicts, ``counts`` compressed or not)."""
        return cls([_as_rle(s, hw, source) for s in segms], np.asarray(scores, float), hw, source)

    def __len__(self) -> int:
        return len(self.rles)

    def __getitem__(self, idx: Any) -> Proposals:
        idx = np.arange(len(self))[idx]
        return Proposals([self.rles[i] for i in np.atleast_1d(idx)], self.scores[idx], self.hw,
                         self.source)

    def top(self, k: int) -> Proposals:
        """The k highest-objectness proposals (stable order on ties)."""
        return self[np.argsort(-self.scores, kind='stable')[:k]]

    def decode(self) -> np.ndarray:
        """N x H x W bool."""
        if not len(self):
            return np.zeros((0, *self.hw), bool)
        return mask_util.decode(self.rles).transpose(2, 0, 1).astype(bool)

    def covering(self, points: np.ndarray, radius: float = 0) -> np.ndarray:
        """K x N bool: proposal n contains point k ((x, y) pixels, rounded), or with
        ``radius`` > 0 any pixel of the disc of that radius around it."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if not len(points) or not len(self):
            return np.zeros((len(points), len(self)), bool)
        return self._covering(*pixel_indices(points, self.hw), radius)

    def _covering(self, xs: np.ndarray, ys: np.ndarray, radius: float) -> np.ndarray:
        """:meth:`covering` of points already in pixels and inside the image."""
        h, w = self.hw
        if radius > 0:
            discs = np.zeros((h, w, len(xs)), np.uint8, order='F')
            for k, (x, y) in enumerate(zip(xs, ys)):
                rows, cols, disc = disc_window(x, y, radius, self.hw)
                discs[rows, cols, k] = disc
            dots = mask_util.encode(discs)
        else:  # a one-pixel RLE per point, without building masks
            starts = xs * h + ys  # column-major pixel index
            dots = mask_util.frPyObjects(
                [dict(size=[h, w], counts=[int(s), 1, int(h * w - s - 1)]) for s in starts], h, w)
        # Against "crowd" masks pycocotools' IoU is |dot & proposal| / |dot|: above 0
        # exactly when they share a pixel.
        inside = mask_util.iou(dots, self.rles, [1] * len(self.rles))
        return np.asarray(inside).reshape(len(xs), len(self)) > 0

    def iou(self, rles: list[dict]) -> np.ndarray:
        """M x N IoU of the given RLE masks against these proposals."""
        if not len(rles) or not len(self):
            return np.zeros((len(rles), len(self)))
        return np.asarray(mask_util.iou(list(rles), self.rles, [0] * len(self))).reshape(
            len(rles), len(self))

    def boxes(self) -> np.ndarray:
        """N x 4 float64 tight boxes x0, y0, x1, y1 (exclusive; zeros for an empty mask)."""
        if not len(self):
            return np.zeros((0, 4))
        xywh = np.asarray(mask_util.toBbox(self.rles), np.float64).reshape(-1, 4)
        return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1)

    def mask_iou(self, masks: np.ndarray) -> np.ndarray:
        """K x N IoU of K x H x W bool masks against these proposals."""
        return self.iou(encode_masks(np.asarray(masks, bool)))

    def save(self, path: str | Path) -> None:
        """A per-image COCO-results JSON list, best first (DeepMask / SharpMask's form)."""
        ranked = self.top(len(self))
        dump_json([dict(segmentation=str_counts(r), score=float(s))
                   for r, s in zip(ranked.rles, ranked.scores)], path)


class ProposalSource(metaclass=ABCMeta):
    """Gives the proposals of one image.

    ``image`` is a dict with at least ``img_path``, ``height`` and ``width``
    (and ``img_id`` where known). Implementations raise ProposalError, naming
    the file, when the proposals are missing or do not fit the image.
    """

    @abstractmethod
    def __call__(self, image: dict) -> Proposals:
        ...
