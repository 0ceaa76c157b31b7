"""Soft sampling of negatives (Wu et al., BMVC 2019) for Mask R-CNN on pseudo masks.

Pseudo masks miss objects (on the hard built-in variant 16 % of the train objects have
none), and Mask R-CNN learns the missed ones as background, so at test time it scores
such objects under the protocol's 0.5 cut. A background RoI overlapping no pseudo
instance (IoU under ``iou_thr`` with all) may be one of them: its classification loss is
weighted ``far_weight``. Background RoIs around a labelled object (badly placed boxes,
surely background) keep weight 1. Opt-in: a config names both parts (the four options of
``RCNN_SOFT_NEGATIVES`` in pipeline/custom_configs.py; the pipeline's ``--soft-negatives``,
on for the built-in demos; docs/over_firing.md).
"""
from __future__ import annotations

import torch
from mmengine.structures import InstanceData

from mmdet.models.roi_heads.bbox_heads import Shared2FCBBoxHead
from mmdet.models.task_modules.assigners import AssignResult
from mmdet.models.task_modules.samplers import RandomSampler, SamplingResult
from mmdet.registry import MODELS, TASK_UTILS


@TASK_UTILS.register_module()
class FarNegativeSampler(RandomSampler):
    """mmdet's RandomSampler that also weighs each sampled negative (``neg_weights``):
    ``far_weight`` when its best IoU with a ground-truth box is under ``iou_thr``."""

    def __init__(self, *args, iou_thr: float = 0.1, far_weight: float = 0.3,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not 0 <= far_weight <= 1:
            raise ValueError(f'far_weight must be in [0, 1], got {far_weight}')
        self.iou_thr, self.far_weight = iou_thr, far_weight

    def sample(self, assign_result: AssignResult, pred_instances: InstanceData,
               gt_instances: InstanceData, **kwargs) -> SamplingResult:
        result = super().sample(assign_result, pred_instances, gt_instances, **kwargs)
        best_iou = assign_result.max_overlaps[result.neg_inds]
        result.neg_weights = torch.where(best_iou < self.iou_thr,
                                         best_iou.new_tensor(self.far_weight),
                                         best_iou.new_tensor(1.0))
        return result


@MODELS.register_module()
class SoftNegativeBBoxHead(Shared2FCBBoxHead):
    """mmdet's Shared2FCBBoxHead whose classification targets carry the sampler's
    ``neg_weights`` (from :class:`FarNegativeSampler`; without them, unchanged)."""

    def get_targets(self, sampling_results: list[SamplingResult], rcnn_train_cfg,
                    concat: bool = True) -> tuple:
        labels, label_weights, bbox_targets, bbox_weights = super().get_targets(
            sampling_results, rcnn_train_cfg, concat=False)
        for weights, result in zip(label_weights, sampling_results):
            neg = getattr(result, 'neg_weights', None)
            if neg is not None:
                # an image's targets are its positives, then its negatives
                weights[len(result.pos_inds):] *= neg.to(weights)
        if concat:
            labels, label_weights = torch.cat(labels), torch.cat(label_weights)
            bbox_targets, bbox_weights = torch.cat(bbox_targets), torch.cat(bbox_weights)
        return labels, label_weights, bbox_targets, bbox_weights
