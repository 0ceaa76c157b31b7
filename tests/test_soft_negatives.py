"""Soft negatives: the sampler's weights reach the right rows of the box head's targets."""
from __future__ import annotations

import torch
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from conftest import ROOT


def _parts():
    """The hard demo's WISE config with the --cfg-options the pipeline trains it with,
    read as tools/train.py reads them."""
    import projects.wise  # noqa: F401
    from mmdet.registry import MODELS, TASK_UTILS
    from projects.wise.pipeline.custom_configs import DETECTORS
    from projects.wise.utils.launch import load_tool_config
    from tools import train
    args = train.parse_args([str(ROOT / 'configs/wise/demo/mask-rcnn_r18_shapes-hard_pseudo.py'),
                             '--cfg-options', *DETECTORS['mask-rcnn'].soft_negatives])
    init_default_scope('mmdet')
    cfg = load_tool_config(args)
    rcnn = cfg.model.train_cfg.rcnn
    return (MODELS.build(cfg.model.roi_head.bbox_head), TASK_UTILS.build(rcnn.assigner),
            TASK_UTILS.build(rcnn.sampler), rcnn)


def test_far_negatives_weigh_less_and_nothing_else_moves() -> None:
    """Bug caught: the negatives' weights landing on the positives' rows (each image's
    targets are its positives first), lost when the images' targets are concatenated,
    or applied to the background RoIs next to a labelled object."""
    head, assigner, sampler, rcnn = _parts()
    gt = InstanceData(bboxes=torch.tensor([[10., 10., 50., 50.]]), labels=torch.tensor([2]))
    boxes = torch.tensor([[12., 12., 50., 50.],     # on the object: positive
                          [30., 30., 70., 70.],     # next to it (IoU ~0.14): near negative
                          [80., 80., 120., 120.],   # far from it: far negative
                          [60., 0., 100., 40.]])    # far
    results = []
    for _ in range(2):  # two images: the concatenated targets keep each image's rows
        proposals = InstanceData(priors=boxes.clone())
        assign = assigner.assign(proposals, gt)
        results.append(sampler.sample(assign, proposals, gt))
    labels, weights, _, _ = head.get_targets(results, ConfigDict(rcnn))
    per_image = []
    for r in results:
        assert sorted(round(float(w), 3) for w in r.neg_weights) == [0.3, 0.3, 1.0]
        per_image.append(torch.cat([torch.ones(len(r.pos_inds)), r.neg_weights]))
    assert torch.equal(weights, torch.cat(per_image))
    assert (labels[weights == 0.3] == head.num_classes).all()  # only background is softened
    # without the sampler's weights the head is mmdet's
    for r in results:
        del r.neg_weights
    assert torch.equal(head.get_targets(results, ConfigDict(rcnn))[1], torch.ones_like(weights))
