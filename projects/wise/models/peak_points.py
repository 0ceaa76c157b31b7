"""Where on the image a peak is: the pixel WISE's proposal choice looks up.

A peak is a cell of the (upsampled) class response map; ``'cell'`` maps the cell's
centre to the image (the project's). WISE's released code (``wise_ils``,
``PRM.forward_test``) instead back-propagates the peak with the ordinary gradient (not
PRM's peak backpropagation) and takes the input pixel where the gradient's channel sum
is largest (``'gradient'``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict

import torch
from torch import Tensor

from mmdet.structures import DetDataSample

from .named_rules import named_rule
from .peak_backprop import peak_response_maps
from .precision import full_precision

if TYPE_CHECKING:
    from .prm_classifier import PRMClassifier

#: ``fn(model, image [1, 3, h, w], labels [K], cells [K, 2] (y, x on the CRM grid),
#: points [K, 2] (the cells' (x, y) on the original image), sample) -> [K, 2]`` points
PeakPointFn = Callable[['PRMClassifier', Tensor, Tensor, Tensor, Tensor, DetDataSample], Tensor]


def _cell(model: PRMClassifier, image: Tensor, labels: Tensor, cells: Tensor,
          points: Tensor, sample: DetDataSample) -> Tensor:
    return points


def _gradient(model: PRMClassifier, image: Tensor, labels: Tensor, cells: Tensor,
              points: Tensor, sample: DetDataSample) -> Tensor:
    # wise_ils marks every pixel equal to the maximum; one point per peak takes the
    # first (row-major). A peak whose gradient has no positive mass keeps its cell.
    if not len(labels):
        return points
    peaks = torch.cat([torch.zeros_like(labels)[:, None], labels[:, None], cells], 1)
    # outside peak_backprop_mode: the plain gradient; float32, as peak_maps
    with torch.enable_grad(), full_precision(image):
        image = image.detach().float().requires_grad_()
        maps = peak_response_maps(image, model.class_response_maps(image), peaks)
    flat = maps.flatten(1)
    best = flat.argmax(1)
    xy = torch.stack([best % maps.shape[-1], best // maps.shape[-1]], -1).float()
    return torch.where((flat.amax(1) > 0)[:, None], model.input_to_image(xy, sample), points)


#: How a peak becomes a point on the image (``test_cfg.peak_point``).
PEAK_POINTS: Dict[str, PeakPointFn] = {
    'cell': _cell,
    'gradient': _gradient,
}


def peak_point_fn(peak_point: str) -> PeakPointFn:
    """The :data:`PEAK_POINTS` rule of that name."""
    return named_rule(PEAK_POINTS, 'peak_point', peak_point)
