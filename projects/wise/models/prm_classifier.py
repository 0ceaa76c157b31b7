"""The PRM classifier: class response maps, peak stimulation, peak response maps."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig

from .inference_rules import kept_peaks
from .peak_backprop import peak_backprop_mode, peak_response_maps
from .peak_points import peak_point_fn
from .peak_stimulation import find_peaks, peak_grad_fn, peak_stimulation, peak_ties_fn
from .precision import full_precision

DEFAULT_TEST_CFG = dict(score_thr=0.0, peak_thr=0.0, score_fallback=False, cap_peak_thr=False,
                        peak_point='cell', with_prm=False, with_crm=False)


def _hflipped(sample: DetDataSample) -> bool:
    return bool(sample.metainfo.get('flip', False)) and sample.flip_direction == 'horizontal'


@MODELS.register_module()
class PRMClassifier(BaseModel):
    """Multi-label classifier whose scores come from peaks of class response maps.

    After Zhou et al., "Weakly Supervised Instance Segmentation using Class Peak
    Response" (CVPR 2018), as WISE uses it: a backbone, a 1x1 conv giving one
    class response map (CRM) per class, optional bilinear sub-pixel upsampling,
    and peak stimulation (class score = mean of the CRM at its local maxima,
    gradient only through them) trained with a multi-label soft-margin loss.
    ``predict`` returns class scores and peaks (in original image pixels), and
    with ``test_cfg.with_prm`` each peak's response map from peak backpropagation
    (``peak_maps`` gives them for peaks chosen afterwards).

    Args:
        backbone: an mmdet backbone config; its last output feeds the head.
        num_classes: number of classes C.
        in_channels: channels of that last backbone output.
        sub_pixel_scale: upsampling factor of the CRMs before peak finding (PRM: 8).
        win_size: odd window of the local-maximum test (PRM: 3).
        peak_filter: 'median', 'mean', 'max' or a number: peaks must reach it.
        peak_grad: how a class score's gradient reaches its peaks: 'prm' (the
            released code: each peak gets all of it) or 'mean' (1 / K each); see
            :data:`~.peak_stimulation.PEAK_GRADS`.
        peak_ties: which of a window's tied maxima are peaks: 'all' (every one) or
            'first' (the released code's: the first in row-major order); see
            :data:`~.peak_stimulation.PEAK_TIES`.
        test_cfg: ``score_thr`` (class score to report a class's peaks),
            ``peak_thr`` (CRM value a peak must reach), ILC's ``score_fallback`` and
            ``cap_peak_thr`` (:mod:`.inference_rules`), ``peak_point`` (a peak's
            point on the image: 'cell' or 'gradient', :data:`.peak_points.PEAK_POINTS`),
            ``with_prm`` (peak response maps), ``with_crm`` (class response maps as
            ``pred_crms``, C x H x W on the original image).
    """

    def __init__(self,
                 backbone: ConfigType,
                 num_classes: int,
                 in_channels: int = 2048,
                 sub_pixel_scale: int = 8,
                 win_size: int = 3,
                 peak_filter: str | float = 'median',
                 peak_grad: str = 'prm',
                 peak_ties: str = 'all',
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.classifier = nn.Conv2d(in_channels, num_classes, kernel_size=1)
        self.num_classes = num_classes
        self.sub_pixel_scale = sub_pixel_scale
        self.win_size = win_size
        self.peak_filter = peak_filter
        peak_grad_fn(peak_grad)  # an unknown rule fails at build, not at the first step
        self.peak_grad = peak_grad
        peak_ties_fn(peak_ties)
        self.peak_ties = peak_ties
        self.test_cfg = {**DEFAULT_TEST_CFG, **(test_cfg or {})}
        peak_point_fn(self.test_cfg['peak_point'])

    def forward(self, inputs: Tensor, data_samples: list[DetDataSample] | None = None,
                mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.class_response_maps(inputs)
        raise RuntimeError(f'Invalid mode "{mode}"; only supports loss, predict and tensor')

    def class_response_maps(self, inputs: Tensor) -> Tensor:
        """N x C x h x w CRMs, upsampled by ``sub_pixel_scale`` (sub-pixel peak locating).

        Float32 also under autocast, where only the backbone runs in half precision: a
        half-precision 1x1 conv and upsampling round neighbouring values to equal ones,
        and every pixel of such a plateau is a peak.
        """
        features = self.backbone(inputs)[-1]
        with full_precision(features):
            return self.upsample(self.classifier(features.float()))

    def upsample(self, maps: Tensor) -> Tensor:
        """Maps at the CRMs' sub-pixel resolution, where peaks are found."""
        if self.sub_pixel_scale == 1:
            return maps
        return F.interpolate(maps, scale_factor=self.sub_pixel_scale, mode='bilinear',
                             align_corners=True)

    def class_scores(self, crm: Tensor) -> tuple[Tensor, Tensor]:
        """(N x C class scores, K x 4 peaks): peak stimulation."""
        return peak_stimulation(crm, self.win_size, self.peak_filter, self.peak_grad,
                                self.peak_ties)

    def loss(self, inputs: Tensor, data_samples: list[DetDataSample]) -> dict[str, Tensor]:
        scores, _ = self.class_scores(self.class_response_maps(inputs))
        targets = self._multi_hot(data_samples, scores)
        return dict(loss_cls=F.multilabel_soft_margin_loss(scores, targets))

    def _multi_hot(self, data_samples: list[DetDataSample], like: Tensor) -> Tensor:
        targets = torch.zeros_like(like)
        for i, sample in enumerate(data_samples):
            targets[i, sample.gt_image_labels.to(like.device)] = 1
        return targets

    def predict(self, inputs: Tensor, data_samples: list[DetDataSample]) -> list[DetDataSample]:
        return self.predict_from_crms(inputs, self.class_response_maps(inputs).detach(),
                                      data_samples)

    def predict_from_crms(self, inputs: Tensor, crm: Tensor,
                          data_samples: list[DetDataSample]) -> list[DetDataSample]:
        """``predict`` given the batch's (upsampled) CRMs."""
        scores, peaks = self.class_scores(crm)
        cfg = self.test_cfg
        values = crm[tuple(peaks.T)]
        for i, sample in enumerate(data_samples):
            mine = peaks[:, 0] == i
            keep = kept_peaks(scores[i], peaks[mine, 1], values[mine], cfg['score_thr'],
                              cfg['peak_thr'], cfg['score_fallback'], cfg['cap_peak_thr'])
            labels, cells = peaks[mine, 1][keep], peaks[mine, 2:][keep]
            points = peak_point_fn(cfg['peak_point'])(
                self, inputs[i:i + 1], labels, cells,
                self._to_image_points(cells, crm, inputs, sample), sample)
            pred = InstanceData(labels=labels, scores=values[mine][keep], cells=cells,
                                points=points)
            if cfg['with_prm']:
                pred.prms = self.peak_maps(inputs[i:i + 1], pred.labels, pred.cells, sample)
            if cfg['with_crm']:
                on_input = self.crm_to_input(crm[i:i + 1], inputs.shape[-2:])[0]
                sample.pred_crms = self.maps_to_image(on_input, inputs.shape[-2:], sample)
            sample.pred_scores = scores[i]
            sample.pred_peaks = pred
        return data_samples

    def _grid_step(self, crm_hw: tuple[int, int], input_hw: tuple[int, int]) -> tuple[float, float]:
        """Input pixels per CRM grid step, (y, x).

        Backbone cell i is centred on input pixel ``i * stride`` ('same'-padded
        convs), and align_corners upsampling puts grid point j at cell
        ``j * (n - 1) / (n * s - 1)``; a half-cell error here is 7.5 px at stride 16.
        """
        s = self.sub_pixel_scale
        steps = []
        for n_up, n_in in zip(crm_hw, input_hw):
            n = n_up // s
            steps.append(n_in / n * ((n - 1) / (n_up - 1) if s > 1 else 1.0))
        return steps[0], steps[1]

    def crm_to_input(self, crm: Tensor, input_hw: tuple[int, int]) -> Tensor:
        """Resample N x C x h x w CRMs onto the input's pixel grid (for drawing)."""
        step_y, step_x = self._grid_step(crm.shape[-2:], input_hw)
        ys = torch.arange(input_hw[0], dtype=crm.dtype) / step_y * 2 / (crm.shape[-2] - 1) - 1
        xs = torch.arange(input_hw[1], dtype=crm.dtype) / step_x * 2 / (crm.shape[-1] - 1) - 1
        grid = torch.stack(torch.meshgrid(xs, ys, indexing='xy'), -1).to(crm.device)
        return F.grid_sample(crm, grid.expand(len(crm), -1, -1, -1), mode='bilinear',
                             padding_mode='border', align_corners=True)

    def _to_image_points(self, yx: Tensor, crm: Tensor, inputs: Tensor,
                         sample: DetDataSample) -> Tensor:
        """CRM grid points -> (x, y) in original image pixels."""
        step_y, step_x = self._grid_step(crm.shape[-2:], inputs.shape[-2:])
        xy = yx.flip(-1).float() * yx.new_tensor([step_x, step_y], dtype=torch.float)
        return self.input_to_image(xy, sample)

    @staticmethod
    def input_to_image(xy: Tensor, sample: DetDataSample) -> Tensor:
        """(x, y) network input pixels -> original image pixels: undo the resize and
        the flip, clamp to the image."""
        scale = sample.metainfo.get('scale_factor', (1.0, 1.0))
        xy = xy / xy.new_tensor(scale[:2])
        h, w = sample.ori_shape[:2]
        if _hflipped(sample):
            xy[:, 0] = w - 1 - xy[:, 0]
        return torch.stack([xy[:, 0].clamp(0, w - 1), xy[:, 1].clamp(0, h - 1)], -1)

    def peak_maps(self, image: Tensor, labels: Tensor, cells: Tensor,
                  sample: DetDataSample) -> Tensor:
        """K x H x W PRMs (peak backpropagation), each summing to 1, on the original
        image, of one image's (1 x 3 x h x w) peaks of class ``labels`` at CRM grid
        ``cells`` (y, x): callers may pick the peaks first, as backprop is per peak."""
        h, w = sample.ori_shape[:2]
        if len(labels) == 0:
            return image.new_zeros((0, h, w))
        peaks = torch.cat([torch.zeros_like(labels)[:, None], labels[:, None], cells], 1)
        # float32 throughout, also under autocast: the backward divides by sums that
        # underflow in half precision
        with torch.enable_grad(), full_precision(image), peak_backprop_mode(self):
            image = image.detach().float().requires_grad_()
            prms = peak_response_maps(image, self.class_response_maps(image), peaks)
        prms = self.maps_to_image(prms, image.shape[-2:], sample)
        return prms / prms.sum((1, 2), keepdim=True).clamp_min(1e-12)

    @staticmethod
    def maps_to_image(maps: Tensor, input_hw: tuple[int, int], sample: DetDataSample) -> Tensor:
        """K x h x w maps over the padded network input -> K x H x W on the original
        image: drop the padding, undo the flip, resize."""
        ih, iw = sample.img_shape[:2]
        maps = maps[:, :round(maps.shape[-2] * ih / input_hw[0]),
                    :round(maps.shape[-1] * iw / input_hw[1])]
        if _hflipped(sample):
            maps = maps.flip(-1)
        return F.interpolate(maps[None], size=tuple(sample.ori_shape[:2]), mode='bilinear',
                             align_corners=False)[0]


@MODELS.register_module()
class GAPClassifier(PRMClassifier):
    """The same network scored by global average pooling of its response maps.

    PRM's baseline (the bench compares step times against it), and a quick way
    to pretrain a backbone from image-level labels: every pixel gets gradient,
    where peak stimulation feeds only the peaks. Peaks are still reported.
    """

    def class_scores(self, crm: Tensor) -> tuple[Tensor, Tensor]:
        return crm.mean((2, 3)), find_peaks(crm.detach(), self.win_size, self.peak_filter,
                                            self.peak_ties)
