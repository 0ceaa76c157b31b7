"""Peak backpropagation from PRM (Zhou et al., CVPR 2018).

A peak of a class response map is traced back to the image with a top-down
probabilistic pass: every convolution hands the relevance arriving at an output
pixel to its inputs in proportion to their (shifted, non-negative) activations
times the positive part of the weights, like excitation backprop. The forward
pass is untouched, so the network predicts exactly what it does without this
mode; only the backward of the convolutions changes. The resulting image
gradient of one peak, summed over channels, is its peak response map (PRM),
which outlines the instance that fired the peak.
"""
from __future__ import annotations

from contextlib import contextmanager
from functools import partial
from typing import Any, Iterator, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd import Function


class ProbabilisticConv2d(Function):
    """``F.conv2d`` whose backward is PRM's probabilistic top-down pass.

    With ``a' = a - min(a)`` and ``W+ = relu(W)`` (both constants) and
    ``Z = conv2d(a', W+)``, the input gradient is
    ``a' * conv2d_input(grad_out / (Z + eps), W+)``; this conserves the total
    relevance when ``Z > 0``. Weight and bias get no gradient. ``eps`` is raised to the
    smallest normal number of the input's dtype, so that it never rounds to 0.
    """

    @staticmethod
    def forward(ctx: Any, input: Tensor, weight: Tensor, bias: Optional[Tensor],
                stride: Tuple[int, int], padding: Tuple[int, int],
                dilation: Tuple[int, int], groups: int, eps: float) -> Tensor:
        output = F.conv2d(input, weight, bias, stride, padding, dilation, groups)
        # Z is computed here, once, rather than in every backward over the
        # retained graph (one per peak when they are not batched).
        shifted = input - input.min()
        pos_weight = weight.clamp(min=0)
        norm = F.conv2d(shifted, pos_weight, None, stride, padding, dilation, groups)
        ctx.save_for_backward(shifted, pos_weight, norm)
        ctx.conv_args = (stride, padding, dilation, groups)
        # at least the dtype's smallest normal number: 1e-10 is 0 in float16
        ctx.eps = max(eps, torch.finfo(norm.dtype).tiny)
        return output

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tuple[Optional[Tensor], ...]:
        shifted, pos_weight, norm = ctx.saved_tensors
        grad_input = torch.nn.grad.conv2d_input(
            shifted.shape, pos_weight, grad_output / (norm + ctx.eps), *ctx.conv_args)
        return shifted * grad_input, None, None, None, None, None, None, None


def _probabilistic_conv_forward(conv: nn.Conv2d, input: Tensor, weight: Tensor,
                                bias: Optional[Tensor], eps: float) -> Tensor:
    """Drop-in for ``nn.Conv2d._conv_forward`` that uses the PRM backward."""
    if not (torch.is_grad_enabled() and input.requires_grad):
        # No image gradient can flow through this layer: skip the extra conv.
        return nn.Conv2d._conv_forward(conv, input, weight, bias)
    padding = conv.padding
    if conv.padding_mode == 'zeros' and isinstance(padding, str):
        # 'same'/'valid' as numbers where symmetric: zeros padded before the shift
        # would turn into relevance-absorbing activations (0 - min > 0)
        left, right, top, bottom = conv._reversed_padding_repeated_twice
        if left == right and top == bottom:
            padding = (top, left)
    if conv.padding_mode != 'zeros' or isinstance(padding, str):
        # As nn.Conv2d does: pad explicitly, then convolve without padding.
        mode = 'constant' if conv.padding_mode == 'zeros' else conv.padding_mode
        input = F.pad(input, conv._reversed_padding_repeated_twice, mode=mode)
        padding = (0, 0)
    return ProbabilisticConv2d.apply(input, weight, bias, conv.stride, padding,
                                     conv.dilation, conv.groups, eps)


@contextmanager
def peak_backprop_mode(module: nn.Module, eps: float = 1e-10) -> Iterator[nn.Module]:
    """Within the block, every ``nn.Conv2d`` of ``module`` uses PRM's backward.

    The per-instance ``_conv_forward`` is patched rather than ``forward``, so
    subclasses keep their own pre-processing (mmcv's empty-input wrapper,
    mmdet's ``NormedConv2d`` normalisation) and the outputs stay
    bit-identical; subclasses that call ``F.conv2d`` directly keep the ordinary
    backward. Convs already patched by an enclosing block are left to it, and
    everything is restored on exit, also after an exception.
    """
    patched: List[nn.Conv2d] = []
    try:
        for conv in module.modules():
            if isinstance(conv, nn.Conv2d) and '_conv_forward' not in vars(conv):
                conv._conv_forward = partial(_probabilistic_conv_forward, conv, eps=eps)
                patched.append(conv)
        yield module
    finally:
        for conv in patched:
            del conv._conv_forward


def peak_response_maps(image: Tensor, crm: Tensor, peaks: Tensor) -> Tensor:
    """Peak response maps ``[K, H, W]`` of ``peaks`` (``[K, 4]``: n, c, y, x).

    ``crm`` (``[1, C, h, w]``) must have been computed from ``image``
    (``[1, 3, H, W]``, ``requires_grad``) inside :func:`peak_backprop_mode`.
    Each map is the channel sum of the image gradient of one peak, clamped at 0
    and normalised to sum 1; a map with no positive mass stays all zeros. The
    graph is retained, so the caller may keep using it.
    """
    if image.shape[0] != 1 or crm.shape[0] != 1:
        raise ValueError('peak_response_maps takes one image at a time, got '
                         f'image {tuple(image.shape)} and crm {tuple(crm.shape)}')
    if len(peaks) == 0:
        return image.new_zeros((0, *image.shape[2:]))
    # One batched backward (vmap over one-hot output gradients) instead of a
    # loop: the same maps, a little faster on CPU and fewer launches on a GPU,
    # for K times the gradient memory of a single backward.
    one_hots = crm.new_zeros((len(peaks), *crm.shape))
    one_hots[torch.arange(len(peaks)), 0, peaks[:, 1], peaks[:, 2], peaks[:, 3]] = 1
    (grads,) = torch.autograd.grad(crm, image, one_hots, retain_graph=True,
                                   is_grads_batched=True)
    maps = grads[:, 0].sum(dim=1).clamp(min=0)
    total = maps.sum(dim=(1, 2), keepdim=True)
    return maps / total.clamp(min=torch.finfo(maps.dtype).tiny)
