"""Peak stimulation from PRM (Zhou et al., CVPR 2018).

A class response map (CRM) is turned into a class score by averaging it at its
local maxima ("peaks") only. Training through this score therefore sends the
classification gradient to the peaks alone, which makes each peak the response
of one object instance; the peaks are later back-propagated to the image to
get one peak response map per instance (see ``peak_backprop``).
"""
from __future__ import annotations

from typing import Callable, Dict, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .named_rules import named_rule

PeakFilter = Union[str, float]


def _median(crm: Tensor) -> Tensor:
    # torch.median returns the lower of the two middle values for an even
    # number of elements (no averaging), so the threshold is always a value
    # that occurs in the map.
    return crm.flatten(2).median(dim=2).values[..., None, None]


def _mean(crm: Tensor) -> Tensor:
    return crm.mean(dim=(2, 3), keepdim=True)


def _max(crm: Tensor) -> Tensor:
    return crm.amax(dim=(2, 3), keepdim=True)


#: Named peak filters: ``fn(crm[N, C, H, W]) -> threshold[N, C, 1, 1]``.
#: A local maximum only counts as a peak if it is >= its map's threshold.
PEAK_FILTERS: Dict[str, Callable[[Tensor], Tensor]] = {
    'median': _median,
    'mean': _mean,
    'max': _max,
}


def peak_threshold(crm: Tensor, peak_filter: PeakFilter = 'median') -> Tensor:
    """Per-(image, class) threshold ``[N, C, 1, 1]`` of a CRM ``[N, C, H, W]``.

    ``peak_filter`` is a name in :data:`PEAK_FILTERS` ('median' is PRM's
    default; torch's median is the lower middle value for even sizes) or a
    fixed number used for every map.
    """
    if isinstance(peak_filter, str):
        if peak_filter not in PEAK_FILTERS:
            raise ValueError(f'Unknown peak filter {peak_filter!r}; choose one of '
                             f'{sorted(PEAK_FILTERS)} or a number.')
        return PEAK_FILTERS[peak_filter](crm)
    return crm.new_full((*crm.shape[:2], 1, 1), float(peak_filter))


def _all_maxima(crm: Tensor, win_size: int) -> Tensor:
    # max_pool2d pads with -inf, so border pixels compete only with real ones.
    window_max = F.max_pool2d(crm, win_size, stride=1, padding=win_size // 2)
    return crm == window_max


def _first_maximum(crm: Tensor, win_size: int) -> Tensor:
    # as the released code: pad with -inf, and a pixel is a peak only if max-pooling
    # returns its own index (the first maximum of the window in row-major order)
    o = win_size // 2
    h, w = crm.shape[-2:]
    padded = F.pad(crm, (o, o, o, o), value=float('-inf'))
    _, indices = F.max_pool2d(padded, win_size, stride=1, return_indices=True)
    own = torch.arange(padded.shape[-2] * padded.shape[-1], device=crm.device)
    return indices == own.view(padded.shape[-2:])[o:o + h, o:o + w]


#: Which pixels of a window's tied maxima are local maxima. 'all': every pixel equal to
#: its window's maximum (a plateau gives one peak per pixel). 'first': only the one
#: max-pooling returns, the first in row-major order, as PRM's and ILC's released
#: ``peak_stimulation`` (a plateau gives one peak).
PEAK_TIES: Dict[str, Callable[[Tensor, int], Tensor]] = {
    'all': _all_maxima,
    'first': _first_maximum,
}


def peak_ties_fn(peak_ties: str) -> Callable[[Tensor, int], Tensor]:
    """The :data:`PEAK_TIES` rule of that name."""
    return named_rule(PEAK_TIES, 'peak_ties', peak_ties)


def _peak_mask(crm: Tensor, win_size: int, peak_filter: PeakFilter,
               peak_ties: str = 'all') -> Tensor:
    """Boolean ``[N, C, H, W]``: a local maximum (:data:`PEAK_TIES`) and >= threshold."""
    if win_size < 1 or win_size % 2 == 0:
        raise ValueError(f'win_size must be a positive odd number, got {win_size}')
    crm = crm.detach()
    return peak_ties_fn(peak_ties)(crm, win_size) & (crm >= peak_threshold(crm, peak_filter))


def find_peaks(crm: Tensor, win_size: int = 3, peak_filter: PeakFilter = 'median',
               peak_ties: str = 'all') -> Tensor:
    """Peaks of a CRM ``[N, C, H, W]`` as a long ``[K, 4]`` of (n, c, y, x).

    A pixel is a peak if it is a maximum of its ``win_size`` window (with
    ``peak_ties='all'`` every pixel of a plateau of equal maxima is one; 'first'
    keeps the first) and is >= the threshold of ``peak_filter``. Rows are sorted
    lexicographically. Found in float32: half precision makes ties of distinct values.
    """
    return _peak_mask(crm.float(), win_size, peak_filter, peak_ties).nonzero()


def _prm_grad(peak_sum: Tensor, num_peaks: Tensor) -> Tensor:
    # value: the mean; gradient: that of the sum (S - S.detach() is exactly 0)
    return peak_sum.detach() / num_peaks + (peak_sum - peak_sum.detach())


def _mean_grad(peak_sum: Tensor, num_peaks: Tensor) -> Tensor:
    return peak_sum / num_peaks


#: How a class score's gradient reaches its K peaks; the forward is always their mean.
#: 'prm': each peak gets the score's whole gradient, as PRM's released backward
#: (``grad_input = peak_map * grad_output``, copied into WISE's code), to which PRM's
#: lr 0.01 and WISE's peak threshold 30 were tuned. 'mean': the exact gradient of
#: the mean, 1 / K per peak (the PRM paper's formula).
PEAK_GRADS: Dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    'prm': _prm_grad,
    'mean': _mean_grad,
}


def peak_grad_fn(peak_grad: str) -> Callable[[Tensor, Tensor], Tensor]:
    """The :data:`PEAK_GRADS` rule of that name."""
    return named_rule(PEAK_GRADS, 'peak_grad', peak_grad)


def peak_stimulation(crm: Tensor, win_size: int = 3, peak_filter: PeakFilter = 'median',
                     peak_grad: str = 'prm', peak_ties: str = 'all') -> Tuple[Tensor, Tensor]:
    """Class scores ``[N, C]`` as the mean of each map at its peaks, and peaks.

    The peak mask (``peak_ties``: :data:`PEAK_TIES`) is a constant, so the gradient
    of a score reaches only its peaks, as ``peak_grad`` (:data:`PEAK_GRADS`) shares it
    out. A map without peaks (possible only with a fixed threshold above its maximum)
    scores 0 and gets no gradient. Computed in float32, as :func:`find_peaks`.
    """
    crm = crm.float()
    share = peak_grad_fn(peak_grad)
    mask = _peak_mask(crm, win_size, peak_filter, peak_ties)
    weights = mask.to(crm.dtype)
    num_peaks = weights.sum(dim=(2, 3)).clamp(min=1)
    scores = share((crm * weights).sum(dim=(2, 3)), num_peaks)
    return scores, mask.nonzero()
