"""DeepMask: class-agnostic segment proposals from a patch's mask and objectness.

Pinheiro, Collobert, Dollar, "Learning to Segment Object Candidates" (NeurIPS 2015), in
the form of the released facebookresearch/deepmask ("DeepMask-ours" of the SharpMask
paper; ../shared/deepmask-reference.md §2, §5): a ResNet trunk up to its stride-16
stage with frozen BatchNorm, a 1x1 reduction, a shared 512-d embedding of the central
``window`` (a Linear over the cropped map), a mask head (56 x 56 logits) and a score
head (dropout, 1024, dropout, 1). The Linears are convolutions here, so the model that
trains on patches slides over whole images unchanged (:meth:`dense`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import Tensor, nn

from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig

#: the trunk's output stride (ResNet's third stage)
STRIDE = 16


@MODELS.register_module()
class DeepMask(BaseModel):
    """Args:
        backbone: an mmdet backbone config whose last output has stride 16.
        in_channels: that output's channels (ResNet-50: 1024).
        window: the patch region a mask covers (divisible by 16); patches add
            ``context`` on each side, which the embedding crops away.
        mask_size: the mask head's side (its logits are upsampled to the label's).
        score_weight: the score loss's weight against the per-sample mean of the mask
            loss (the released code's 1/32: masks are summed over a batch of 32).
        test_cfg: the proposals' defaults (:class:`~projects.wise.proposals.
            DeepMaskProposals`): ``scales``, ``max_per_image``, ``mask_thr``, ``nms_iou``.
    """

    def __init__(self, backbone: ConfigType, in_channels: int = 1024, window: int = 160,
                 context: int = 16, reduced: int = 128, embedding: int = 512,
                 mask_size: int = 56, score_hidden: int = 1024, score_weight: float = 1 / 32,
                 test_cfg: OptConfigType = None, data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if window % STRIDE or context % STRIDE:
            raise ValueError(f'window ({window}) and context ({context}) must be multiples '
                             f'of the trunk stride {STRIDE}')
        self.backbone = MODELS.build(backbone)
        self.window, self.context, self.mask_size = window, context, mask_size
        self.score_weight = score_weight
        self.test_cfg = dict(test_cfg or {})
        cells = window // STRIDE
        self.reduce = nn.Sequential(nn.Conv2d(in_channels, reduced, 1), nn.ReLU(inplace=True))
        self.embed = nn.Conv2d(reduced, embedding, cells)  # Linear(reduced*cells^2, 512)
        self.mask_head = nn.Conv2d(embedding, mask_size ** 2, 1)
        self.score_head = nn.Sequential(
            nn.Dropout(0.5), nn.Conv2d(embedding, score_hidden, 1), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Conv2d(score_hidden, 1, 1))

    def dense(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        """(N x R x C objectness logits, N x m^2 x R x C mask logits) of every window of
        ``inputs``: output cell (r, c) is the window whose top-left pixel is (16 r, 16 c)."""
        embedding = self.embed(self.reduce(self.backbone(inputs)[-1]))
        return self.score_head(embedding)[:, 0], self.mask_head(embedding)

    def forward(self, inputs: Tensor, data_samples: dict | None = None, mode: str = 'tensor'):
        """On patches: 'tensor' gives (N objectness logits, N x m x m mask logits) of
        their central windows; 'loss' the two losses, ``data_samples`` holding each
        patch's ``kind``, ``score`` and ``mask`` label as lists (pseudo_collate's batch
        of :class:`~projects.wise.datasets.DeepMaskPatches` samples)."""
        c = self.context // STRIDE
        features = self.reduce(self.backbone(inputs)[-1])
        embedding = self.embed(features[:, :, c:features.shape[2] - c, c:features.shape[3] - c])
        scores = self.score_head(embedding).flatten()
        masks = self.mask_head(embedding).view(-1, self.mask_size, self.mask_size)
        if mode == 'tensor':
            return scores, masks
        if mode == 'loss':
            return self.loss(scores, masks, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}"; DeepMask supports loss and tensor '
                           '(proposals: projects.wise.proposals.DeepMaskProposals)')

    def loss(self, scores: Tensor, masks: Tensor, samples: dict) -> dict[str, Tensor]:
        """Soft-margin losses: per pixel on the mask samples (positives only), per patch
        on the score samples."""
        is_mask = torch.tensor([k == 'mask' for k in samples['kind']], device=scores.device)
        targets = torch.tensor(samples['score'], dtype=scores.dtype, device=scores.device)
        zero = scores.sum() * 0 + masks.sum() * 0  # every parameter in the graph (DDP)
        loss_score = zero
        if (~is_mask).any():
            loss_score = loss_score + self.score_weight * F.soft_margin_loss(
                scores[~is_mask], targets[~is_mask])
        loss_mask = zero
        if is_mask.any():
            labels = torch.stack(samples['mask']).to(masks.device)[is_mask]
            logits = F.interpolate(masks[is_mask, None], size=labels.shape[-2:],
                                   mode='bilinear', align_corners=False)[:, 0]
            loss_mask = loss_mask + F.soft_margin_loss(logits, labels)
        return dict(loss_mask=loss_mask, loss_score=loss_score)
