"""PRM + Density (ILC): a PRM classifier with a density branch trained from object counts.

After Cholakkal et al., "Object Counting and Instance Segmentation with Image-level
Supervision" (CVPR 2019), as its released code (GuoleiSun/CountSeg) builds and trains it;
docs/counts.md has the details and ../shared/ilc-reference.md the sources.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import ConfigType

from .precision import full_precision
from .prm_classifier import PRMClassifier

#: a count no image-level count states: a labelled class counted 0 (VOC's difficult-only)
UNKNOWN = -1


def _branch(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` where ``mask``; a graph-connected 0 where it is empty (the
    released MSE gives NaN on a batch without such counts)."""
    return (values * mask).sum() / mask.sum().clamp_min(1)


@MODELS.register_module()
class PRMDensity(PRMClassifier):
    """Class response maps M (peak stimulation, as PRM) and density maps D from one
    shared 1x1 conv; the count of class c is the spatial mean of D_c.

    backbone -> 1x1 conv (``hidden_channels``, ILC: 3C) -> two halves, each BN -> ReLU
    -> 1x1 conv to C maps: M (``classifier``) and D (``density``). Losses, from the
    samples' ``gt_image_labels`` and ``gt_image_counts`` (counts as in
    ``ImageLabelDataset(with_counts=True)``):

    - ``loss_cls``: multi-label soft margin on the peak-stimulated class scores;
    - ``loss_count``: MSE of the count for counts 1..``max_exact`` (with
      ``spatial_loss`` also 0 for the classes absent);
    - ``loss_rank``: ``rank_weight`` x hinge ``max(0, max_exact + 1 - count)`` for
      counts above ``max_exact`` (known only as "that many or more");
    - with ``spatial_loss`` (ILC's second stage, switched on by
      :class:`~projects.wise.engine.SpatialCountLossHook`): ``loss_spatial_pos``, BCE
      of D_c towards 1 at the top-t peaks of M_c (t the count, 1..``max_exact``), and
      ``loss_spatial_neg``, BCE of all of D_c towards 0 for the absent classes.

    A labelled class counted 0 (its objects all difficult) gets no count loss.
    ``predict`` adds ``pred_counts`` (the rounded count, 0 where the class score is
    not above 0, and at least 0 unless ``test_cfg.clamp_count`` is False: ILC's released
    count is not clamped) and ``pred_count_values`` (the raw counts); ``test_cfg.with_density``
    adds ``pred_density``, C x H x W on the original image, whose sum over a region
    divided by H x W is the count there.
    """

    def __init__(self, backbone: ConfigType, num_classes: int, in_channels: int = 2048,
                 hidden_channels: int | None = None, max_exact: int = 4,
                 rank_weight: float = 0.1, spatial_loss: bool = False, **kwargs) -> None:
        super().__init__(backbone, num_classes, in_channels, **kwargs)
        hidden = hidden_channels or 3 * num_classes
        if hidden % 2:
            raise ValueError(f'hidden_channels must be even (two halves), got {hidden}')
        self.shared = nn.Conv2d(in_channels, hidden, kernel_size=1)
        self.class_branch = _branch(hidden // 2)
        self.classifier = nn.Conv2d(hidden // 2, num_classes, kernel_size=1)
        self.density_branch = _branch(hidden // 2)
        self.density = nn.Conv2d(hidden // 2, num_classes, kernel_size=1)
        self.max_exact = max_exact
        self.rank_weight = rank_weight
        self.spatial_loss = spatial_loss
        self.test_cfg.setdefault('with_density', False)
        self.test_cfg.setdefault('clamp_count', True)

    def maps(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        """(M, D) at the backbone's resolution, N x C x h x w each; the head runs in
        float32 also under autocast, as PRMClassifier's (``class_response_maps``)."""
        features = self.backbone(inputs)[-1]
        with full_precision(features):
            m, d = self.shared(features.float()).chunk(2, dim=1)
            return (self.classifier(self.class_branch(m)),
                    self.density(self.density_branch(d)))

    def class_response_maps(self, inputs: Tensor) -> Tensor:
        return self.upsample(self.maps(inputs)[0])

    def count_targets(self, data_samples: list[DetDataSample], like: Tensor) -> Tensor:
        """N x C counts: 0 for absent classes, :data:`UNKNOWN` for those counted 0."""
        targets = torch.zeros_like(like, dtype=torch.long)
        for i, sample in enumerate(data_samples):
            if 'gt_image_counts' not in sample:
                raise KeyError('PRMDensity trains from object counts: build the dataset '
                               'with with_counts=True')
            counts = sample.gt_image_counts.to(like.device)
            targets[i, sample.gt_image_labels.to(like.device)] = torch.where(
                counts > 0, counts, counts.new_tensor(UNKNOWN))
        return targets

    def loss(self, inputs: Tensor, data_samples: list[DetDataSample]) -> dict[str, Tensor]:
        m, d = self.maps(inputs)
        crm = self.upsample(m)
        scores, peaks = self.class_scores(crm)
        counts = self.count_targets(data_samples, scores)
        losses = dict(loss_cls=F.multilabel_soft_margin_loss(scores, (counts != 0).to(scores)))
        count = d.mean((2, 3))
        exact = (counts >= 1) & (counts <= self.max_exact)
        absent = counts == 0
        fitted = exact | absent if self.spatial_loss else exact
        losses['loss_count'] = _masked_mean((count - counts) ** 2, fitted)
        losses['loss_rank'] = self.rank_weight * _masked_mean(
            F.relu(self.max_exact + 1 - count), counts > self.max_exact)
        if self.spatial_loss:
            top = self.top_peaks(crm.detach(), peaks, counts)
            at_peaks = self.upsample(d)[tuple(top.T)]
            losses['loss_spatial_pos'] = _masked_mean(F.binary_cross_entropy_with_logits(
                at_peaks, torch.ones_like(at_peaks), reduction='none'),
                torch.ones_like(at_peaks))
            neg = F.binary_cross_entropy_with_logits(d, torch.zeros_like(d), reduction='none')
            losses['loss_spatial_neg'] = _masked_mean(
                neg, absent[..., None, None].expand_as(neg))
        return losses

    def top_peaks(self, crm: Tensor, peaks: Tensor, counts: Tensor) -> Tensor:
        """The K x 4 (n, c, y, x) pseudo ground-truth peaks: for each exactly counted
        class, its ``count`` highest peaks (fewer where it has fewer)."""
        group = peaks[:, 0] * crm.shape[1] + peaks[:, 1]
        order = torch.argsort(crm[tuple(peaks.T)], descending=True, stable=True)
        order = order[torch.argsort(group[order], stable=True)]  # by (n, c), then value
        peaks, group = peaks[order], group[order]
        rank = torch.arange(len(group), device=group.device) - torch.searchsorted(group, group)
        t = counts[peaks[:, 0], peaks[:, 1]]
        keep = (t >= 1) & (t <= self.max_exact) & (rank < t)
        return peaks[keep]

    def predict(self, inputs: Tensor, data_samples: list[DetDataSample]) -> list[DetDataSample]:
        m, d = self.maps(inputs)
        samples = self.predict_from_crms(inputs, self.upsample(m).detach(), data_samples)
        values = d.detach().mean((2, 3))
        for i, sample in enumerate(samples):
            sample.pred_count_values = values[i]
            count = values[i].round()
            if self.test_cfg['clamp_count']:
                count = count.clamp_min(0)
            sample.pred_counts = torch.where(sample.pred_scores > 0, count, 0).long()
            if self.test_cfg['with_density']:
                on_input = self.crm_to_input(self.upsample(d[i:i + 1]).detach(),
                                             inputs.shape[-2:])[0]
                sample.pred_density = self.maps_to_image(on_input, inputs.shape[-2:], sample)
        return samples
