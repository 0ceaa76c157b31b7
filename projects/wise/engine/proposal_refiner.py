"""WISE's test-time refinement: each predicted mask becomes the object proposal
that overlaps it best.

Laradji et al. (BMVC 2019) replace every mask the Mask R-CNN predicts by the
class-agnostic proposal (MCG) of highest IoU with it, keeping the prediction's
label and score. The IoU of all predictions against all proposals comes from
pycocotools' C routine on RLEs, and only the proposals that are picked are ever
decoded.
"""
from __future__ import annotations

import numpy as np
import torch
from mmengine.structures import InstanceData
from pycocotools import mask as mask_util

from ..proposals import Proposals
from ..utils.masks import encode_masks, to_numpy


def best_proposals(rles: list[dict], proposals: Proposals) -> tuple[np.ndarray, np.ndarray]:
    """For each RLE, the index of its highest-IoU proposal and that IoU (ties: lowest index)."""
    iou = proposals.iou(rles)  # K x N, no decoding
    if not iou.size:
        return np.zeros(len(rles), np.int64), np.zeros(len(rles))
    idx = iou.argmax(axis=1)
    return idx, iou[np.arange(len(rles)), idx]


def refine(pred_instances: InstanceData, proposals: Proposals, min_iou: float = 0.0,
           return_refined: bool = False):
    """Replace each predicted mask by the proposal of highest IoU with it.

    ``pred_instances`` holds mmdet predictions at the original image size
    (``masks`` K x H x W, ``bboxes`` K x 4 xyxy, ``scores``, ``labels``). A
    prediction whose best IoU is below ``min_iou``, or that overlaps no
    proposal at all, is kept as it is; the others take the proposal's mask and
    its tight box, and keep their label and score. Returns a new InstanceData
    (and, with ``return_refined``, the K-long bool array of replaced ones).
    """
    masks = pred_instances.masks
    if tuple(masks.shape[-2:]) != tuple(proposals.hw):
        raise ValueError(f'{proposals.source or "proposals"}: proposals are '
                         f'{proposals.hw[0]}x{proposals.hw[1]} but the predicted masks are '
                         f'{masks.shape[-2]}x{masks.shape[-1]}; both must be at the original '
                         'image size')
    refined = np.zeros(len(masks), bool)
    out = pred_instances.clone()
    if not len(masks) or not len(proposals):
        return (out, refined) if return_refined else out

    idx, iou = best_proposals(encode_masks(to_numpy(masks)), proposals)
    refined = (iou >= min_iou) & (iou > 0)
    if refined.any():
        chosen = proposals[idx[refined]]
        new_masks = torch.from_numpy(chosen.decode())
        rows = torch.from_numpy(np.flatnonzero(refined)).to(masks.device)
        out_masks = masks.clone()
        out_masks[rows] = new_masks.to(device=masks.device, dtype=masks.dtype)
        out.masks = out_masks
        if 'bboxes' in pred_instances:
            xywh = np.asarray(mask_util.toBbox(chosen.rles), np.float64).reshape(-1, 4)
            xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
            bboxes = pred_instances.bboxes.clone()
            bboxes[rows] = torch.as_tensor(xyxy, dtype=bboxes.dtype, device=bboxes.device)
            out.bboxes = bboxes
    return (out, refined) if return_refined else out
