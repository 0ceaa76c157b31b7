"""The released codes' training recipes one config value (or file) away from the
paper's: resolved and built, they do what the released code did (docs/fidelity.md)."""
from __future__ import annotations

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from torch import nn

import projects.wise  # noqa: F401
from mmdet.registry import MODELS, TRANSFORMS
from mmdet.structures.mask import BitmapMasks

from conftest import ROOT


@pytest.mark.parametrize('keys, affine, statistics', [
    ({}, True, False),                                             # the project's default
    (dict(norm_cfg=dict(type='BN', requires_grad=False)), False, False),  # wise_ils
    (dict(norm_eval=False), True, True),                           # PRM's released trainer
])
def test_prm_batchnorm_keys(keys: dict, affine: bool, statistics: bool) -> None:
    """The VOC PRM's BatchNorm: ``backbone.norm_cfg.requires_grad`` trains its affine
    weights (False: frozen, as wise_ils), ``backbone.norm_eval`` keeps its ImageNet
    statistics (False: updated in training, as PRM's). Catches a key the backbone
    ignores and the base config's default changed unnoticed."""
    init_default_scope('mmdet')
    cfg = Config.fromfile(ROOT / 'configs/wise/prm_r50_voc.py').model
    cfg.backbone.update(keys, init_cfg=None)
    model = MODELS.build(cfg).train()
    bns = [m for m in model.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(p.requires_grad == affine for m in bns for p in m.parameters())
    assert all(m.training == statistics for m in bns)


def test_wise_ils_mask_rcnn_recipe() -> None:
    """mask-rcnn_r50_voc_pseudo_wise-ils.py, wise_ils's Mask R-CNN training: images at
    their own size, no flip or colour jitter, 10 epochs, refinement among proposals
    above objectness 0.75; beside the paper's 800/1333, flips, jitter, 50K iterations.
    Catches the released recipe drifting back into the paper's (a resize left in)."""
    paper = Config.fromfile(ROOT / 'configs/wise/mask-rcnn_r50_voc_pseudo.py')
    cfg = Config.fromfile(ROOT / 'configs/wise/mask-rcnn_r50_voc_pseudo_wise-ils.py')
    types = [t.type for t in cfg.train_dataloader.dataset.pipeline]
    assert types == ['LoadImageChecked', 'LoadAnnotations', 'Resize', 'PackDetInputs']
    assert {'RandomFlip', 'PhotoMetricDistortion'} <= {
        t.type for t in paper.train_dataloader.dataset.pipeline}
    assert (cfg.train_cfg.type, cfg.train_cfg.max_epochs) == ('EpochBasedTrainLoop', 10)
    assert paper.train_cfg.max_iters == 50000
    assert cfg.train_dataloader.batch_size == 1 and cfg.optim_wrapper.optimizer.lr == 0.00125
    [hook] = cfg.custom_hooks
    assert (hook.type, hook.enabled, hook.min_objectness) == ('ProposalRefineHook', False, 0.75)
    # every Resize of its pipelines keeps a 500 x 375 image (and its masks) at its size
    init_default_scope('mmdet')
    for pipeline in (cfg.train_dataloader.dataset.pipeline, cfg.test_dataloader.dataset.pipeline):
        [resize] = [TRANSFORMS.build(t) for t in pipeline if t.type == 'Resize']
        masks = np.zeros((1, 375, 500), np.uint8)
        out = resize(dict(img=np.zeros((375, 500, 3), np.uint8), img_shape=(375, 500),
                          gt_masks=BitmapMasks(masks, 375, 500)))
        assert out['img'].shape[:2] == (375, 500) and out['gt_masks'].masks.shape == masks.shape
        assert tuple(out['scale_factor']) == (1.0, 1.0)
