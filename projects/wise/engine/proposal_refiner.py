"""WISE's test-time refinement: each predicted mask becomes the object proposal
that overlaps it best.

Laradji et al. (BMVC 2019) replace every mask the Mask R-CNN predicts by the
class-agnostic proposal (MCG) of highest IoU with it, keeping the prediction's
label and score. The IoU of all predictions against all proposals is the
proposals' own (counting over superpixels for the built-in ones, pycocotools' C
routine on RLEs for others), and only the proposals that are picked are ever
decoded.
"""
from __future__ import annotations

import numpy as np
import torch
from mmengine.structures import InstanceData

from ..proposals import Proposals
from ..utils.masks import binary_masks, to_numpy


def best_proposals(masks: np.ndarray, proposals: Proposals) -> tuple[np.ndarray, np.ndarray]:
    """For each of K x H x W bool masks, the index of its highest-IoU proposal and that
    IoU (ties: lowest index)."""
    iou = proposals.mask_iou(masks)  # K x N
    if not iou.size:
        return np.zeros(len(masks), np.int64), np.zeros(len(masks))
    idx = iou.argmax(axis=1)
    return idx, iou[np.arange(len(masks)), idx]


def refine(pred_instances: InstanceData, proposals: Proposals, min_iou: float = 0.0,
           return_refined: bool = False, min_objectness: float | None = None):
    """Replace each predicted mask by the proposal of highest IoU with it.

    ``pred_instances`` holds mmdet predictions at the original image size
    (``masks`` K x H x W, ``bboxes`` K x 4 xyxy, ``scores``, ``labels``). A
    prediction whose best IoU is below ``min_iou``, or that overlaps no
    proposal at all, is kept as it is; the others take the proposal's mask and
    its tight box, and keep their label and score. With ``min_objectness``, only
    the proposals of objectness above it are candidates (WISE's released code: 0.75).
    Returns a new InstanceData (and, with ``return_refined``, the K-long bool array of
    replaced ones).
    """
    masks = pred_instances.masks
    if tuple(masks.shape[-2:]) != tuple(proposals.hw):
        raise ValueError(f'{proposals.source or "proposals"}: proposals are '
                         f'{proposals.hw[0]}x{proposals.hw[1]} but the predicted masks are '
                         f'{masks.shape[-2]}x{masks.shape[-1]}; both must be at the original '
                         'image size')
    if min_objectness is not None:
        proposals = proposals[np.flatnonzero(proposals.scores > min_objectness)]
    refined = np.zeros(len(masks), bool)
    out = pred_instances.clone()
    if not len(masks) or not len(proposals):
        return (out, refined) if return_refined else out

    idx, iou = best_proposals(binary_masks(to_numpy(masks)), proposals)
    refined = (iou >= min_iou) & (iou > 0)
    if refined.any():
        chosen = proposals[idx[refined]]
        decoded = chosen.decode()
        rows = torch.from_numpy(np.flatnonzero(refined)).to(masks.device)
        out.masks = masks.clone()  # InstanceData.clone() shares the tensors
        out.masks[rows] = torch.from_numpy(decoded).to(device=masks.device, dtype=masks.dtype)
        if 'bboxes' in pred_instances:
            out.bboxes = pred_instances.bboxes.clone()
            out.bboxes[rows] = torch.as_tensor(chosen.boxes(), dtype=out.bboxes.dtype,
                                               device=out.bboxes.device)
    return (out, refined) if return_refined else out
