"""Learned proposals: a trained DeepMask slid over an image at several scales.

As the released deepmask's InferDeepMask (../shared/deepmask-reference.md §6): the image
resized by 2^s for each scale s, padded by half a window of 0.5 grey, every window
scored at once; the top ``max_per_image`` windows of all scales, each mask pasted back
at its window (bilinear, probability > ``mask_thr``) and clipped to the image. The
released code stops there; ``nms_iou`` adds a greedy mask NMS.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
from pycocotools import mask as mask_util

from ..errors import ProposalError
from ..registry import PROPOSAL_SOURCES
from ..utils.io import read_image
from .base import Proposals, ProposalSource

#: the released code's inference: 7 scales (objects of ~0.4 to ~3.3 windows), the top
#: 1000 windows, masks cut at 0.2, no NMS
RELEASED = dict(scales=(-2.5, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5), max_per_image=1000,
                mask_thr=0.2, nms_iou=None)


def load_deepmask(config: str, checkpoint: str) -> torch.nn.Module:
    """The model of a DeepMask training config with its trained weights."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    model = MODELS.build(Config.fromfile(config).model)
    load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    return model


@PROPOSAL_SOURCES.register_module('deepmask')
class DeepMaskProposals(ProposalSource):
    """Proposals of a DeepMask trained with ``config`` (tools/train.py) from ``checkpoint``.

    Each setting left None is the model's ``test_cfg``'s, else the released code's.

    Args:
        scales: log2 of each resize of the image (released: :data:`RELEASED`).
        max_per_image: windows kept, by objectness over all scales (released: 1000).
        mask_thr: the mask probability that is foreground (COCO 0.2, VOC'07 0.1).
        nms_iou: drop a mask overlapping a better one above this IoU (released: no NMS).
        model: a built DeepMask instead of ``config`` + ``checkpoint`` (tests).
    """

    def __init__(self, config: str | None = None, checkpoint: str | None = None,
                 scales: tuple[float, ...] | None = None, max_per_image: int | None = None,
                 mask_thr: float | None = None, nms_iou: float | None = None,
                 device: str = 'cpu', model: torch.nn.Module | None = None) -> None:
        if model is None:
            if config is None or checkpoint is None:
                raise ValueError('DeepMaskProposals needs config= and checkpoint= (a '
                                 'DeepMask trained with tools/train.py), or model=')
            model = load_deepmask(config, checkpoint)
        self.model = model.to(device).eval()
        self.device = device
        cfg = {**RELEASED, **self.model.test_cfg}
        self.scales = tuple(scales if scales is not None else cfg['scales'])
        self.max_per_image = max_per_image or cfg['max_per_image']
        self.mask_thr = mask_thr if mask_thr is not None else cfg['mask_thr']
        self.nms_iou = nms_iou if nms_iou is not None else cfg['nms_iou']
        pre = self.model.data_preprocessor
        self.mean, self.std = pre.mean.to(device), pre.std.to(device)

    @torch.no_grad()
    def windows(self, img: np.ndarray) -> list[tuple[float, float, float, float, np.ndarray]]:
        """(objectness, x0, y0, side, mask probabilities) of the best windows, in image
        pixels, best first."""
        win, h, w = self.model.window, img.shape[0], img.shape[1]
        found = []
        for s in self.scales:
            k = 2.0 ** s
            size = (max(1, round(w * k)), max(1, round(h * k)))
            scaled = cv2.resize(img, size, interpolation=cv2.INTER_LINEAR) if k != 1 else img
            pad = win // 2
            padded = cv2.copyMakeBorder(scaled, pad, pad, pad, pad, cv2.BORDER_CONSTANT,
                                        value=(127.5, 127.5, 127.5))
            x = torch.from_numpy(padded).to(self.device).permute(2, 0, 1)[None].float()
            scores, masks = self.model.dense((x - self.mean) / self.std)
            scores = scores[0].sigmoid().flatten()
            top = scores.topk(min(self.max_per_image, len(scores))).indices
            for i in top.tolist():
                r, c = divmod(i, masks.shape[3])
                found.append((float(scores[i]), (16 * c - pad) / k, (16 * r - pad) / k,
                              win / k, masks[0, :, r, c]))
        found.sort(key=lambda f: -f[0])
        return [(*f[:4], f[4].sigmoid().view(self.model.mask_size, -1).cpu().numpy())
                for f in found[:self.max_per_image]]

    def __call__(self, image: dict) -> Proposals:
        path = image['img_path']
        img = read_image(path)
        hw = (int(image['height']), int(image['width']))
        if img.shape[:2] != hw:
            raise ProposalError(f'{path}: image is {list(img.shape[:2])} but its record '
                                f'says {list(hw)}')
        rles, scores = [], []
        for score, x0, y0, side, prob in self.windows(img):
            canvas = np.zeros(hw, np.uint8)
            n = max(1, round(side))
            pasted = cv2.resize(prob, (n, n), interpolation=cv2.INTER_LINEAR) > self.mask_thr
            x, y = round(x0), round(y0)
            xs, ys = slice(max(x, 0), min(x + n, hw[1])), slice(max(y, 0), min(y + n, hw[0]))
            if xs.start >= xs.stop or ys.start >= ys.stop:
                continue
            canvas[ys, xs] = pasted[ys.start - y:ys.stop - y, xs.start - x:xs.stop - x]
            if not canvas.any():
                continue
            rle = mask_util.encode(np.asfortranarray(canvas))
            if self.nms_iou is not None and rles and \
                    np.max(mask_util.iou([rle], rles, [0] * len(rles))) > self.nms_iou:
                continue
            rles.append(rle)
            scores.append(score)
        return Proposals(rles, np.asarray(scores), hw, str(path))
