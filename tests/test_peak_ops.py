"""PRM's peak stimulation and peak backpropagation, on hand-computed maps and small nets."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from mmcv.cnn.bricks.wrappers import Conv2d as MMCVConv2d
from torch import Tensor, nn

from mmdet.models.backbones import ResNet
from mmdet.models.layers import NormedConv2d
from projects.wise.models.peak_backprop import peak_backprop_mode, peak_response_maps
from projects.wise.models.peak_stimulation import (PEAK_FILTERS, find_peaks, peak_stimulation,
                                                   peak_threshold)

# Local maxima at (1, 1) = 9 and (3, 3) = 7; no plateaus; median 1.
TWO_MAXIMA = [[1, 2, 1, 0, 0],
              [2, 9, 2, 1, 0],
              [1, 2, 1, 2, 1],
              [0, 1, 2, 7, 2],
              [0, 0, 1, 2, 1]]
# Local maxima 9, 7 and 5 (bottom-left corner); median 1.
THREE_MAXIMA = [[2, 9, 2, 1],
                [1, 2, 1, 2],
                [0, 1, 2, 7],
                [5, -1, -1, -1]]
# One local maximum in each corner (6, 7, 8, 9); median 1, mean 2.75.
CORNERS = [[6, 2, 1, 7],
           [2, 1, 0, 2],
           [1, 0, 1, 1],
           [8, 1, 2, 9]]


def _map(rows: list) -> Tensor:
    return torch.tensor(rows, dtype=torch.float32)[None, None]


def _yx(peaks: Tensor) -> list:
    return [tuple(p) for p in peaks[:, 2:].tolist()]


def test_two_separated_maxima() -> None:
    peaks = find_peaks(_map(TWO_MAXIMA))
    assert peaks.dtype == torch.long
    assert peaks.tolist() == [[0, 0, 1, 1], [0, 0, 3, 3]]


def test_plateau_of_equal_maxima_gives_a_peak_per_pixel() -> None:
    crm = _map([[0, 1, 0, 0],
                [1, 4, 4, 1],
                [0, 1, 0, 0]])
    assert _yx(find_peaks(crm)) == [(1, 1), (1, 2)]


# The smallest inputs on which the released peak finding differs (released-diff.md, 1).
TIED_PAIR = [[0, 0, 0],
             [0, 1, 1],
             [0, 0, 0]]
TIED_CORNER = [[3, 3, 0],
               [0, 0, 0],
               [0, 0, 1]]
FLAT = [[2, 2, 2],
        [2, 2, 2],
        [2, 2, 2]]


@pytest.mark.parametrize('rows, peak_ties, yx, score', [
    (TIED_PAIR, 'all', [(1, 1), (1, 2)], 1.0),
    (TIED_PAIR, 'first', [(1, 1)], 1.0),
    (TIED_CORNER, 'all', [(0, 0), (0, 1), (2, 0), (2, 2)], 1.75),
    (TIED_CORNER, 'first', [(0, 0), (2, 2)], 2.0),
    (FLAT, 'all', [(y, x) for y in range(3) for x in range(3)], 2.0),
    (FLAT, 'first', [(0, 0)], 2.0),
])
def test_peak_ties(rows: list, peak_ties: str, yx: list, score: float) -> None:
    """'first' is the released rule (only the first of a window's tied maxima in
    row-major order is a peak), 'all' the project's; the gradient follows the peaks.
    Catches peak_ties being ignored (every 'first' case would give the 'all' peaks)."""
    crm = _map(rows).requires_grad_()
    scores, peaks = peak_stimulation(crm, peak_ties=peak_ties)
    assert _yx(peaks) == yx == _yx(find_peaks(crm, peak_ties=peak_ties))
    assert scores.item() == score
    scores.sum().backward()
    assert _yx(crm.grad.nonzero()) == yx  # 'prm': the whole gradient at each peak


def test_unknown_peak_ties() -> None:
    with pytest.raises(ValueError, match="'all', 'first'"):
        find_peaks(_map(CORNERS), peak_ties='last')


def test_corners_are_peaks_thanks_to_minus_inf_padding() -> None:
    assert _yx(find_peaks(_map(CORNERS))) == [(0, 0), (0, 3), (3, 0), (3, 3)]


def test_peak_equal_to_the_lower_median_counts() -> None:
    # Sorted: 0 1 2 3 6 7. torch.median gives the lower middle value 2 (not
    # 2.5), so the border peak 2 at x=0 is kept; the mean (19/6) drops it.
    crm = _map([[2, 0, 6, 3, 7, 1]])
    assert peak_threshold(crm, 'median').item() == 2
    assert _yx(find_peaks(crm, peak_filter='median')) == [(0, 0), (0, 2), (0, 4)]
    assert _yx(find_peaks(crm, peak_filter='mean')) == [(0, 2), (0, 4)]


def test_larger_window_gives_fewer_peaks() -> None:
    crm = _map(TWO_MAXIMA)
    assert _yx(find_peaks(crm, win_size=3)) == [(1, 1), (3, 3)]
    assert _yx(find_peaks(crm, win_size=5)) == [(1, 1)]


@pytest.mark.parametrize('peak_filter, expected', [
    ('median', [(0, 0), (0, 3), (3, 0), (3, 3)]),
    ('mean', [(0, 0), (0, 3), (3, 0), (3, 3)]),
    ('max', [(3, 3)]),
    (7, [(0, 3), (3, 0), (3, 3)]),  # the tie 7 == 7 counts
    (7.5, [(3, 0), (3, 3)]),
    (100.0, []),
])
def test_peak_filters(peak_filter: str | float, expected: list) -> None:
    assert _yx(find_peaks(_map(CORNERS), peak_filter=peak_filter)) == expected


def test_thresholds_are_per_image_and_class() -> None:
    crm = torch.stack([_map(CORNERS)[0], 2 * _map(CORNERS)[0]])  # [2, 1, 4, 4]
    assert sorted(PEAK_FILTERS) == ['max', 'mean', 'median']
    assert peak_threshold(crm, 'median').flatten().tolist() == [1, 2]
    assert peak_threshold(crm, 'mean').flatten().tolist() == [2.75, 5.5]
    assert peak_threshold(crm, 'max').flatten().tolist() == [9, 18]
    assert peak_threshold(crm, 0.5).shape == (2, 1, 1, 1)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="'max', 'mean', 'median'"):
        find_peaks(_map(CORNERS), peak_filter='mode')
    for win_size in (0, 2, -3):
        with pytest.raises(ValueError, match='odd'):
            find_peaks(_map(CORNERS), win_size=win_size)


@pytest.mark.parametrize('peak_grad', ['prm', 'mean'])
def test_scores_peaks_and_gradient(peak_grad: str) -> None:
    """Same scores (the mean of the peaks) under both rules; the gradient is the whole
    class gradient at each peak ('prm', the released backward) or 1 / K of it
    ('mean'). Catches a rule swapped for the other, a score that is no longer the mean,
    and gradient leaking off the peaks."""
    crm = torch.zeros(2, 2, 4, 4)
    crm[0, 0] = _map(CORNERS)[0]        # peaks at the corners: 6 7 8 9
    crm[0, 1] = 3                       # a plateau: all 16 pixels are peaks
    crm[1, 0] = _map(CORNERS)[0].flip(1)  # corners again, values 8 9 6 7
    crm[1, 1] = _map(THREE_MAXIMA)[0]
    crm.requires_grad_()
    scores, peaks = peak_stimulation(crm, peak_grad=peak_grad)

    assert torch.equal(peaks, find_peaks(crm))
    assert peaks.tolist() == sorted(peaks.tolist())
    num_peaks = torch.bincount(peaks[:, 0] * 2 + peaks[:, 1], minlength=4).view(2, 2)
    assert num_peaks.tolist() == [[4, 16], [4, 3]]
    assert scores.tolist() == [[7.5, 3.0], [7.5, 7.0]]

    upstream = torch.tensor([[1.0, -2.0], [0.5, 3.0]])  # distinct per class and image
    (scores * upstream).sum().backward()
    share = upstream[peaks[:, 0], peaks[:, 1]]
    if peak_grad == 'mean':
        share = share / num_peaks[peaks[:, 0], peaks[:, 1]].float()
    expected = torch.zeros_like(crm)
    expected[tuple(peaks.T)] = share
    assert torch.equal(crm.grad, expected)


def test_unknown_peak_grad() -> None:
    with pytest.raises(ValueError, match="'mean', 'prm'"):
        peak_stimulation(_map(CORNERS), peak_grad='sum')


def test_map_without_peaks_scores_zero() -> None:
    crm = _map(CORNERS).requires_grad_()
    scores, peaks = peak_stimulation(crm, peak_filter=10.0)
    assert len(peaks) == 0 and scores.item() == 0
    scores.sum().backward()
    assert not crm.grad.any()


def _small_net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 4, 1))
    net[1].running_mean.uniform_(-1, 1)
    net[1].running_var.uniform_(0.5, 2)
    return net.eval()


def test_outputs_are_unchanged_and_patch_is_undone() -> None:
    net = _small_net()
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    image = torch.randn(1, 3, 16, 16)
    plain = net(image.requires_grad_())
    with peak_backprop_mode(net):
        assert all('_conv_forward' in vars(conv) for conv in convs)
        assert torch.equal(net(image), plain)
        with torch.no_grad():
            assert torch.equal(net(image), plain)
        with peak_backprop_mode(net):  # re-entrant: the inner block leaves it on
            pass
        assert all('_conv_forward' in vars(conv) for conv in convs)
    assert not any('_conv_forward' in vars(conv) for conv in convs)

    with pytest.raises(RuntimeError, match='boom'):
        with peak_backprop_mode(net):
            raise RuntimeError('boom')
    assert not any('_conv_forward' in vars(conv) for conv in convs)
    assert torch.equal(net(image), plain)


def test_probabilistic_conv_backward_matches_formula() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2)
    image = torch.randn(1, 4, 10, 9, requires_grad=True)  # odd size: needs output_padding
    with peak_backprop_mode(conv):
        out = conv(image)
    assert torch.equal(out, F.conv2d(image, conv.weight, conv.bias, 2, 1, 2, 2))
    grad_out = torch.rand_like(out)
    out.backward(grad_out)
    assert conv.weight.grad is None and conv.bias.grad is None

    shifted = (image - image.min()).detach()
    pos_weight = conv.weight.detach().clamp(min=0)
    norm = F.conv2d(shifted, pos_weight, None, 2, 1, 2, 2)
    back = F.conv_transpose2d(grad_out / (norm + 1e-10), pos_weight, None, 2, 1,
                              output_padding=(1, 0), groups=2, dilation=2)
    torch.testing.assert_close(image.grad, shifted * back)



@pytest.mark.parametrize('dtype', [torch.float32, torch.float16])
def test_probabilistic_conv_eps_survives_half_precision(dtype: torch.dtype) -> None:
    """Bug caught: eps 1e-10 is 0 in float16, so an output with no positive input (Z = 0)
    divided by zero and its NaN spread to every input. Its relevance is dropped: 0."""
    assert torch.tensor(1e-10, dtype=torch.float16) == 0
    conv = nn.Conv2d(2, 3, 3, padding=1).to(dtype)
    image = torch.ones(1, 2, 5, 5, dtype=dtype, requires_grad=True)  # shifted: all 0
    with peak_backprop_mode(conv):
        out = conv(image)
    out[0, 0, 2, 2].backward()
    assert torch.equal(image.grad, torch.zeros_like(image))


@pytest.mark.parametrize('conv', [
    MMCVConv2d(3, 4, 3, padding=1),
    NormedConv2d(3, 4, 3, padding=1),
    nn.Conv2d(3, 4, 3, padding=1, padding_mode='reflect'),
    nn.Conv2d(3, 4, 3, padding='same', dilation=2),
], ids=['mmcv', 'normed', 'reflect', 'same'])
def test_conv_variants_keep_their_outputs(conv: nn.Conv2d) -> None:
    """Subclasses keep their own forward (mmcv's wrapper, NormedConv2d's
    normalisation, explicit padding) and still get the PRM backward."""
    image = torch.randn(1, 3, 9, 9, requires_grad=True)
    plain = conv(image)
    (plain_grad,) = torch.autograd.grad(plain.sum(), image)
    with peak_backprop_mode(conv):
        out = conv(image)
        (grad,) = torch.autograd.grad(out.sum(), image)
    assert torch.equal(out, plain)
    assert not torch.allclose(grad, plain_grad)


def test_probabilistic_conv_conserves_relevance() -> None:
    """With Z > 0 everywhere, the input receives exactly the output's total."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, bias=False)
    image = torch.randn(1, 3, 12, 12, requires_grad=True)
    with peak_backprop_mode(conv):
        out = conv(image)
    grad_out = torch.rand_like(out)
    out.backward(grad_out)
    torch.testing.assert_close(image.grad.sum(), grad_out.sum())
    assert (image.grad >= 0).all()


def test_batched_maps_match_one_backward_per_peak() -> None:
    net = _small_net()
    image = torch.randn(1, 3, 16, 16, requires_grad=True)
    with peak_backprop_mode(net):
        crm = net(image)
        peaks = find_peaks(crm)
        maps = peak_response_maps(image, crm, peaks)
        for (_, c, y, x), prm in zip(peaks.tolist(), maps):
            (grad,) = torch.autograd.grad(crm[0, c, y, x], image, retain_graph=True)
            ref = grad[0].sum(0).clamp(min=0)
            torch.testing.assert_close(prm, ref / ref.sum())
    assert len(peaks) > 4
    assert peak_response_maps(image, crm, peaks[:0]).shape == (0, 16, 16)


def _averaging_net() -> nn.Sequential:
    """Three (3x3 box blur, ReLU, 2x2 max pool), then two 'classes' of gains 1 and 0.5."""
    layers = []
    for _ in range(3):
        blur = nn.Conv2d(1, 1, 3, padding=1)
        nn.init.constant_(blur.weight, 1 / 9)
        nn.init.zeros_(blur.bias)
        layers += [blur, nn.ReLU(), nn.MaxPool2d(2)]
    head = nn.Conv2d(1, 2, 1)
    head.weight.data = torch.tensor([1.0, 0.5]).view(2, 1, 1, 1)
    nn.init.zeros_(head.bias)
    return nn.Sequential(*layers, head).eval()


@pytest.mark.parametrize('squares', [[(2, 2)], [(2, 2), (24, 24)]])
def test_prm_localises_bright_squares(squares: list) -> None:
    torch.manual_seed(0)
    image = torch.rand(1, 1, 32, 32) * 0.1
    for y, x in squares:
        image[..., y:y + 6, x:x + 6] = 1
    image.requires_grad_()
    net = _averaging_net()
    with peak_backprop_mode(net):
        crm = net(image)  # [1, 2, 4, 4], stride 8
        peaks = find_peaks(crm, peak_filter=0.25)
        maps = peak_response_maps(image, crm, peaks)
    # One peak per square and class, in the CRM cell over the square.
    owners = [(c, i) for c in (0, 1) for i in range(len(squares))]
    assert peaks.tolist() == [[0, c, squares[i][0] // 8, squares[i][1] // 8] for c, i in owners]
    assert maps.shape == (len(peaks), 32, 32)
    torch.testing.assert_close(maps.sum(dim=(1, 2)), torch.ones(len(peaks)))

    def mass_on_square(prm: Tensor, i: int) -> float:
        y, x = squares[i]  # the square dilated by 1 pixel
        return prm[max(y - 1, 0):y + 7, max(x - 1, 0):x + 7].sum().item()

    for prm, (_, i) in zip(maps, owners):
        assert mass_on_square(prm, i) >= 0.9
    # The plain gradient, by contrast, spreads over the receptive field.
    (grad,) = torch.autograd.grad(net(image)[0, 0, 0, 0], image)
    assert mass_on_square(grad[0, 0].clamp(min=0) / grad.clamp(min=0).sum(), 0) < 0.8


def test_prm_on_mmdet_resnet18() -> None:
    torch.manual_seed(0)
    backbone = ResNet(depth=18, out_indices=(3,), norm_eval=True)
    head = nn.Conv2d(512, 3, 1)
    backbone.eval()
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        plain = head(backbone(image)[0])
    image.requires_grad_()
    with peak_backprop_mode(backbone), peak_backprop_mode(head):
        crm = head(backbone(image)[0])
        assert torch.equal(crm, plain)
        peaks = find_peaks(crm)
        maps = peak_response_maps(image, crm, peaks)
    assert crm.shape == (1, 3, 2, 2) and len(peaks) >= 3
    assert maps.shape == (len(peaks), 64, 64)
    assert (maps >= 0).all()
    sums = maps.sum(dim=(1, 2))
    assert ((sums - 1).abs() < 1e-5).logical_or(sums == 0).all()
    assert (sums > 0).any()


def _prm_backward_by_hand(x: Tensor, weight: Tensor, grad_out: Tensor, stride: tuple,
                          padding: tuple, dilation: tuple, groups: int, mode: str,
                          eps: float = 1e-10) -> Tensor:
    """PRM's top-down pass through one conv, by explicit loops over the conv's taps.

    With a = x - min(x) and W+ = max(W, 0), output pixel (o, y, x) hands its grad_out to
    each tap in proportion to a * W+ there, over their sum Z (+ eps). A tap in the padding
    reads 0 (mode 'zeros') or the mirrored pixel (mode 'reflect'), which then gets the
    relevance.
    """
    a = (x - x.min())[0].tolist()
    w_pos = weight.clamp(min=0).tolist()
    g = grad_out[0].tolist()
    c_in, h, w = x.shape[1:]
    c_out, c_group, kh, kw = weight.shape
    out_per_group = c_out // groups
    grad = [[[0.0] * w for _ in range(h)] for _ in range(c_in)]

    def source(p: int, size: int, pad: int) -> int | None:
        q = p - pad
        if 0 <= q < size:
            return q
        if mode == 'zeros':
            return None
        return -q if q < 0 else 2 * (size - 1) - q

    for o in range(c_out):
        first = o // out_per_group * c_group
        for oy, row in enumerate(g[o]):
            for ox, g_out in enumerate(row):
                taps = []
                for j in range(c_group):
                    for ky in range(kh):
                        sy = source(oy * stride[0] + ky * dilation[0], h, padding[0])
                        for kx in range(kw):
                            sx = source(ox * stride[1] + kx * dilation[1], w, padding[1])
                            if sy is not None and sx is not None:
                                i = first + j
                                taps.append((i, sy, sx, a[i][sy][sx] * w_pos[o][j][ky][kx]))
                z = sum(t[3] for t in taps) + eps
                for i, sy, sx, share in taps:
                    grad[i][sy][sx] += g_out * share / z
    return torch.tensor(grad, dtype=x.dtype)[None]


def _normed_input(conv: NormedConv2d, x: Tensor) -> Tensor:
    """What NormedConv2d convolves: each pixel's channel vector scaled to norm T."""
    return conv.tempearture * x / (x.norm(dim=1, keepdim=True) ** conv.power + conv.eps)


def _normed_weight(conv: NormedConv2d) -> Tensor:
    w = conv.weight.detach()
    return w / (w.norm(dim=1, keepdim=True) ** conv.power + conv.eps)


@pytest.mark.parametrize('make, mode', [
    (lambda: MMCVConv2d(4, 6, 3, stride=2, padding=1, groups=2), 'zeros'),
    (lambda: NormedConv2d(3, 4, 3, padding=(1, 2), dilation=(1, 2)), 'zeros'),
    (lambda: nn.Conv2d(3, 4, 3, stride=(1, 2), padding=(2, 1), padding_mode='reflect'),
     'reflect'),
    # 'same' once padded zeros before the shift, so the padding took relevance
    (lambda: nn.Conv2d(3, 4, 3, padding='same', dilation=2), 'zeros'),
], ids=['mmcv', 'normed', 'reflect', 'same'])
def test_conv_variants_follow_the_prm_formula(make, mode: str) -> None:
    """The input gradient of one conv layer of each variant under peak backprop equals
    the PRM formula computed tap by tap (through NormedConv2d's input normalisation by
    ordinary autograd). Catches the activation factor a dropped, W instead of W+, a
    per-channel shift, Z not normalising (or computed from the raw weight of
    NormedConv2d), and relevance of reflect padding dropped instead of handed to the
    mirrored pixels."""
    torch.manual_seed(0)
    conv = make().double()
    x = torch.randn(1, conv.in_channels, 7, 9, dtype=torch.float64, requires_grad=True)
    with peak_backprop_mode(conv):
        out = conv(x)
    grad_out = torch.rand_like(out)
    (grad,) = torch.autograd.grad(out, x, grad_out)

    padding = (conv.dilation[0], conv.dilation[1]) if conv.padding == 'same' else conv.padding
    args = (conv.stride, padding, conv.dilation, conv.groups, mode)
    if isinstance(conv, NormedConv2d):
        x_ = _normed_input(conv, x)
        relevance = _prm_backward_by_hand(x_.detach(), _normed_weight(conv), grad_out, *args)
        (expected,) = torch.autograd.grad(x_, x, relevance)
    else:
        expected = _prm_backward_by_hand(x.detach(), conv.weight.detach(), grad_out, *args)
    torch.testing.assert_close(grad, expected, rtol=1e-9, atol=1e-12)
    assert not torch.allclose(grad, torch.autograd.grad(conv(x), x, grad_out)[0])
