"""PRMClassifier: predictions, peak response maps, and real training through the tools."""
from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from torch import Tensor

import projects.wise  # noqa: F401
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from projects.wise.models import PRMClassifier
from projects.wise.pseudo.peaks import PeakRules, prm_peaks
from projects.wise.utils.io import read_image

from conftest import ROOT, run_tool


def _model(keys: dict | None = None, **test_cfg) -> torch.nn.Module:
    """The demo PRM, with model ``keys`` and ``test_cfg`` keys set."""
    init_default_scope('mmdet')
    cfg = Config.fromfile(ROOT / 'configs/wise/demo/prm_r18_shapes.py').model
    cfg.update(keys or {})
    cfg.test_cfg.update({'peak_thr': 0.0, **test_cfg})  # untrained maps are small
    torch.manual_seed(0)
    return MODELS.build(cfg).eval()


def _sample(h: int, w: int, scale: float, flip: bool = False) -> DetDataSample:
    return DetDataSample(metainfo=dict(
        img_id=0, ori_shape=(h, w), img_shape=(round(h * scale), round(w * scale)),
        scale_factor=(scale, scale), flip=flip, flip_direction='horizontal' if flip else None))


def test_predict_returns_scores_and_peaks_in_image_pixels() -> None:
    model = _model()
    inputs = torch.randn(2, 3, 64, 64)
    samples = model.predict(inputs, [_sample(32, 32, 2.0), _sample(32, 32, 2.0)])
    for s in samples:
        assert s.pred_scores.shape == (5, )
        peaks = s.pred_peaks
        assert len(peaks) > 0 and peaks.labels.max() < 5
        assert peaks.points.shape == (len(peaks), 2)
        # Points are on the original 32x32 image, not on the 64x64 input.
        assert peaks.points.min() >= 0 and peaks.points.max() <= 31
        assert 'prms' not in peaks


def test_thresholds_filter_peaks() -> None:
    inputs = torch.randn(1, 3, 64, 64)
    every = _model().predict(inputs, [_sample(64, 64, 1.0)])[0].pred_peaks
    top = every.scores.max().item()
    strong = _model(peak_thr=top).predict(inputs, [_sample(64, 64, 1.0)])[0].pred_peaks
    assert 0 < len(strong) < len(every) and (strong.scores >= top).all()
    none = _model(score_thr=1e9).predict(inputs, [_sample(64, 64, 1.0)])[0].pred_peaks
    assert len(none) == 0


def test_crm_grid_points_map_to_original_pixels() -> None:
    """A CRM grid point goes through the backbone stride, the sub-pixel upsampling,
    the resize and the flip."""
    model = _model()
    model.sub_pixel_scale = 4
    # stride 16 on a 64 px input: 4 cells centred on 0, 16, 32, 48, upsampled to 16
    crm, inputs = torch.zeros(1, 5, 16, 16), torch.zeros(1, 3, 64, 64)
    yx = torch.tensor([[0, 0], [15, 5]])  # grid 5 = cell 1 = pixel 16
    plain = model._to_image_points(yx, crm, inputs, _sample(32, 32, 2.0))
    assert torch.allclose(plain, torch.tensor([[0.0, 0.0], [8.0, 24.0]]))
    flipped = model._to_image_points(yx, crm, inputs, _sample(32, 32, 2.0, flip=True))
    assert torch.allclose(flipped, torch.tensor([[31.0, 0.0], [31 - 8.0, 24.0]]))
    model.sub_pixel_scale = 1  # no upsampling: cell i at i * stride
    crm = torch.zeros(1, 5, 4, 4)
    plain = model._to_image_points(torch.tensor([[3, 1]]), crm, inputs, _sample(64, 64, 1.0))
    assert torch.allclose(plain, torch.tensor([[16.0, 48.0]]))


def test_crm_to_input_puts_each_cell_on_its_pixel() -> None:
    model = _model()
    model.sub_pixel_scale = 1
    crm = torch.zeros(1, 1, 4, 4)
    crm[0, 0, 2, 1] = 1.0  # cell (y=2, x=1): input pixel (32, 16) at stride 16
    on_input = model.crm_to_input(crm, (64, 64))[0, 0]
    assert on_input.shape == (64, 64)
    assert on_input[32, 16] == 1.0 and on_input.argmax() == 32 * 64 + 16


def test_peak_response_maps_at_original_size() -> None:
    model = _model(with_prm=True)
    [s] = model.predict(torch.randn(1, 3, 64, 64), [_sample(40, 48, 64 / 48)])
    prms = s.pred_peaks.prms
    assert prms.shape == (len(s.pred_peaks), 40, 48)
    assert (prms >= 0).all()
    sums = prms.sum((1, 2))
    assert torch.allclose(sums[sums > 0], torch.ones_like(sums[sums > 0]), atol=1e-4)



@pytest.mark.parametrize('keys', [{}, dict(type='PRMDensity', hidden_channels=16)],
                         ids=['prm', 'prm-density'])
def test_class_maps_and_peaks_are_float32_under_autocast(keys: dict) -> None:
    """Bug caught: under ``--amp`` the 1x1 classifier conv and the upsampling ran in half
    precision. Around a confident class's level (4 here; bfloat16's step there is 1/32)
    rounding flattened the maps into plateaus, every pixel of which counted as a peak:
    ~1,400 peaks instead of ~36. Only the backbone may run in half precision (CPU
    autocast: bfloat16), so the maps and scores are float32 and the peaks those of
    float32 up to near-ties that the backbone's rounding breaks otherwise."""
    model = _model(keys)
    torch.nn.init.constant_(model.classifier.bias, 4.0)
    inputs = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        crm32 = model.class_response_maps(inputs)
        scores32, peaks32 = model.class_scores(crm32)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            crm = model.class_response_maps(inputs)
            scores, peaks = model.class_scores(crm)
    assert crm.dtype == scores.dtype == torch.float32
    torch.testing.assert_close(crm, crm32, rtol=0, atol=2e-3)  # the maps vary by ~0.1
    torch.testing.assert_close(scores, scores32, rtol=0, atol=2e-2)
    ours, theirs = (set(map(tuple, p.tolist())) for p in (peaks, peaks32))
    assert len(ours ^ theirs) <= len(theirs) / 8, (len(ours), len(theirs))


def test_peak_response_maps_are_float32_under_autocast() -> None:
    """Bug caught: peak backpropagation ran its convs in half precision under ``--amp``
    (its eps of 1e-10 is 0 in float16). It runs wholly in float32: the same maps as
    without autocast."""
    model = _model()
    inputs = torch.randn(1, 3, 64, 64)
    [plain] = model.predict(inputs, [_sample(64, 64, 1.0)])
    labels, cells = plain.pred_peaks.labels[:4], plain.pred_peaks.cells[:4]
    prms32 = model.peak_maps(inputs, labels, cells, _sample(64, 64, 1.0))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        prms = model.peak_maps(inputs, labels, cells, _sample(64, 64, 1.0))
    assert prms.dtype == torch.float32 and len(prms) == 4
    torch.testing.assert_close(prms, prms32)


def test_peak_ties_key_reaches_peak_stimulation() -> None:
    """``model.peak_ties='first'`` (the released rule) scores a map with tied maxima
    as the released code (2.0, two peaks; 'all': 1.75, four) and trains through the
    same peaks. Catches the key not passed down from the config."""
    crm = torch.zeros(1, 5, 3, 3)
    crm[0, 0] = torch.tensor([[3.0, 3, 0], [0, 0, 0], [0, 0, 1]])
    for ties, num_peaks, score in (('all', 4, 1.75), ('first', 2, 2.0)):
        scores, peaks = _model(dict(peak_ties=ties)).class_scores(crm)
        assert (peaks[:, 1] == 0).sum() == num_peaks and scores[0, 0] == score


def _cones(tops: list[float]) -> Tensor:
    """1 x C x 5 x 5 maps, each with one peak, at its centre, of value ``tops[c]`` (so
    its class score)."""
    d = (torch.arange(5) - 2).abs()
    cone = -(d[:, None] + d[None, :]).float()
    return torch.stack([cone + t for t in tops])[None]


def _reported(crm: Tensor, **test_cfg) -> list[int]:
    """The classes of the peaks ``predict`` reports on ``crm``."""
    [s] = _model(**test_cfg).predict_from_crms(torch.zeros(1, 3, 20, 20), crm,
                                               [_sample(20, 20, 1.0)])
    return s.pred_peaks.labels.tolist()


def test_score_fallback_passes_every_class_when_none_scores_enough() -> None:
    """``test_cfg.score_fallback`` (ILC's released inference): where no class reaches
    score_thr, the threshold falls to the lowest score. Catches the key ignored."""
    crm = _cones([0.3, 0.2, 0.1, 0.05, 0.0])
    assert _reported(crm, score_thr=0.5) == []
    assert _reported(crm, score_thr=0.5, score_fallback=True) == [0, 1, 2, 3, 4]
    # where a class reaches it, the threshold stays
    assert _reported(_cones([0.6, 0.2, 0.1, 0.05, 0.0]), score_thr=0.5,
                     score_fallback=True) == [0]


def test_cap_peak_thr_keeps_the_strongest_peak() -> None:
    """``test_cfg.cap_peak_thr`` (ILC's): the peak threshold is at most the strongest peak
    of the classes kept. Catches the key ignored (no peak reaches 20)."""
    crm = _cones([3.0, 2.0, 1.0, 0.5, 0.2])
    assert _reported(crm, peak_thr=20.0) == []
    assert _reported(crm, peak_thr=20.0, cap_peak_thr=True) == [0]
    assert _reported(crm, peak_thr=1.0, cap_peak_thr=True) == [0, 1, 2]  # under the cap


def _item() -> dict:
    return dict(inputs=torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8),
                data_samples=_sample(32, 32, 2.0))


def test_gen_pseudo_peaks_follow_the_test_cfg_rules() -> None:
    """gen_pseudo keeps the peaks ``PeakRules.from_test_cfg`` reads from a config's
    test_cfg: ILC's score_fallback and cap_peak_thr without labels, weak_peaks with them.
    Catches a key lost on the way from the config to gen_pseudo."""
    model = _model(score_thr=-math.inf, peak_thr=-math.inf)  # as load_prm builds it
    model.class_response_maps = lambda inputs: _cones([0.3, 0.2, 0.1, 0.05, 0.0])

    def kept(labels: list[int] | None, **test_cfg) -> list[int]:
        rules = PeakRules.from_test_cfg(test_cfg)
        return prm_peaks(model, _item(), labels, rules, False, Counter()).labels.tolist()

    assert kept(None, score_thr=0.5, peak_thr=20.0) == []
    assert kept(None, score_thr=0.5, score_fallback=True) == [0, 1, 2, 3, 4]
    assert kept(None, score_thr=0.5, peak_thr=20.0, score_fallback=True,
                cap_peak_thr=True, weak_peaks=False) == [0]
    # labelled classes whose peaks all miss the threshold keep their strongest: the
    # project's weak-peak fallback; off, as the released code
    assert kept([1, 2], peak_thr=20.0) == [1, 2]
    assert kept([1, 2], peak_thr=20.0, weak_peaks=False) == []


def test_peak_point_gradient_is_the_argmax_of_the_plain_gradient() -> None:
    """``test_cfg.peak_point='gradient'`` (wise_ils) puts a peak on the input pixel where
    the channel sum of its plain input gradient is largest, mapped to the image, in the
    model's predictions and in gen_pseudo's; 'cell' on its cell. Catches the key
    ignored, and peak backpropagation used instead of the plain gradient."""
    item = _item()
    model = _model(peak_point='gradient')
    inputs = model.data_preprocessor(pseudo_collate([item]), False)['inputs']
    [cell] = _model().predict(inputs, [_sample(32, 32, 2.0)])
    [grad] = model.predict(inputs, [_sample(32, 32, 2.0)])
    assert torch.equal(cell.pred_peaks.cells, grad.pred_peaks.cells)
    for k in range(3):
        image = inputs.clone().requires_grad_()
        y, x = grad.pred_peaks.cells[k].tolist()
        model.class_response_maps(image)[0, grad.pred_peaks.labels[k], y, x].backward()
        y_in, x_in = divmod(int(image.grad[0].sum(0).argmax()), 64)
        assert grad.pred_peaks.points[k].tolist() == [x_in / 2, y_in / 2]
    assert not torch.allclose(cell.pred_peaks.points, grad.pred_peaks.points)
    # gen_pseudo places the peaks it keeps by the rule
    every = _model(score_thr=-math.inf, peak_thr=-math.inf)
    rules = PeakRules(weak_peaks=False, peak_point='gradient')  # the same peaks as predict's
    peaks = prm_peaks(every, item, None, rules, False, Counter())
    assert np.array_equal(peaks.points, grad.pred_peaks.points.numpy())


def _labelled(labels: list[int]) -> DetDataSample:
    sample = DetDataSample(metainfo=dict(img_id=0, ori_shape=(32, 48), img_shape=(32, 48)))
    sample.gt_image_labels = torch.tensor(labels, dtype=torch.long)
    return sample


def _soft_margin_by_hand(scores: list[list[float]], labels: list[list[int]]) -> float:
    """-mean_c [y log sigmoid(s) + (1 - y) log sigmoid(-s)], averaged over the images."""
    def log_sigmoid(v: float) -> float:
        return -math.log1p(math.exp(-v))

    per_image = [-sum(log_sigmoid(s) if c in pos else log_sigmoid(-s)
                      for c, s in enumerate(row)) / len(row)
                 for row, pos in zip(scores, labels)]
    return sum(per_image) / len(per_image)


def _peak_means_by_hand(crm: Tensor) -> list[list[float]]:
    """Each map's mean at its 3x3 local maxima (border windows clipped) that reach its
    lower median (the smaller middle value of an even count)."""
    scores = []
    for maps in crm.tolist():
        row = []
        for m in maps:
            h, w = len(m), len(m[0])
            values = sorted(v for line in m for v in line)
            median = values[(len(values) - 1) // 2]
            peaks = [m[y][x] for y in range(h) for x in range(w)
                     if m[y][x] >= median and m[y][x] == max(
                         m[j][i] for j in range(max(y - 1, 0), min(y + 2, h))
                         for i in range(max(x - 1, 0), min(x + 2, w)))]
            row.append(sum(peaks) / len(peaks))
        scores.append(row)
    return scores


def test_loss_is_the_soft_margin_loss_of_the_peak_means() -> None:
    """``loss`` against the multi-label soft-margin loss computed by hand from known scores.
    Catches targets shifted by one class or negated (1 - y), the labels of one image used
    for another, a loss not averaged per class, and scores other than the peak means (the
    map's mean or max)."""
    model = _model()
    inputs = torch.randn(2, 3, 32, 48)
    labels = [[0, 3], [2]]
    shifted = [[1, 4], [3]]
    negated = [[1, 2, 4], [0, 1, 3, 4]]

    # The network's own maps (weights scaled up to scores of order 1): peak means.
    with torch.no_grad():
        model.classifier.weight.mul_(100)
        crm = model.class_response_maps(inputs)
    assert crm.shape == (2, 5, 8, 12)
    scores = _peak_means_by_hand(crm)
    loss = model.loss(inputs, [_labelled(pos) for pos in labels])['loss_cls'].item()
    assert loss == pytest.approx(_soft_margin_by_hand(scores, labels), rel=1e-5)
    others = (crm.mean((2, 3)).tolist(), crm.amax((2, 3)).tolist())
    for wrong_labels, wrong_scores in [(shifted, scores), (negated, scores),
                                       (labels, others[0]), (labels, others[1])]:
        assert abs(_soft_margin_by_hand(wrong_scores, wrong_labels) - loss) > 1e-3

    # Constant maps (1x1 weights 0): every pixel is a peak, so the scores are the biases.
    bias = [2.0, -1.0, 0.5, -0.25, 1.5]
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor(bias))
    loss = model.loss(inputs, [_labelled(pos) for pos in labels])['loss_cls'].item()
    assert loss == pytest.approx(_soft_margin_by_hand([bias, bias], labels), rel=1e-6)
    for wrong in (shifted, negated, [labels[0]] * 2):
        assert abs(_soft_margin_by_hand([bias, bias], wrong) - loss) > 0.05


def _flip_sample(img_hw: tuple, ori_hw: tuple, flip: bool) -> DetDataSample:
    return DetDataSample(metainfo=dict(img_shape=img_hw, ori_shape=ori_hw, flip=flip,
                                       flip_direction='horizontal' if flip else None))


@pytest.mark.parametrize('flip', [False, True])
@pytest.mark.parametrize('map_hw, crop_hw, hot, peak', [
    ((16, 24), (12, 20), (3, 5), (5, 8)),  # maps on the input grid; resize x1.5
    ((8, 12), (6, 10), (1, 2), (4, 7)),    # maps at half the input's size; x3
])
def test_maps_to_image_crops_unflips_and_resizes(map_hw: tuple, crop_hw: tuple, hot: tuple,
                                                 peak: tuple, flip: bool) -> None:
    """Maps over a 16x24 input padded from a 12x20 image of original size 18x30. Catches a
    missing crop of the padding (the ramp goes on into it, and a brighter pixel sits
    there), the crop's axes swapped, a flip missed or undone twice, and a resize to
    anything but ori_shape (the input, img_shape, W x H)."""
    (h, w), (ch, cw) = map_hw, crop_hw
    ys, xs = torch.meshgrid(torch.arange(float(h)), torch.arange(float(w)), indexing='ij')
    ramp = 100 * ys + xs
    spot = torch.zeros(h, w)
    spot[hot] = 1
    spot[h - 1, w - 1] = 5  # in the padding
    maps = torch.stack([ramp, spot])
    sample = _flip_sample((12, 20), (18, 30), flip)
    out = PRMClassifier.maps_to_image(maps.clone(), (16, 24), sample)
    assert out.shape == (2, 18, 30)
    assert torch.equal(maps, torch.stack([ramp, spot]))  # the input is untouched

    # Bilinear (align_corners=False) reproduces a linear ramp, clamped at the borders:
    # output pixel j samples the crop at (j + 0.5) * crop / out - 0.5.
    sy = ((torch.arange(18.0) + 0.5) * ch / 18 - 0.5).clamp(0, ch - 1)
    sx = ((torch.arange(30.0) + 0.5) * cw / 30 - 0.5).clamp(0, cw - 1)
    if flip:
        sx = cw - 1 - sx
    torch.testing.assert_close(out[0], 100 * sy[:, None] + sx)
    # The hot pixel lands where its centre maps to, mirrored when flipped.
    y, x = peak
    assert divmod(out[1].argmax().item(), 30) == (y, 29 - x if flip else x)
    assert out[1].max() <= 1  # the padding's 5 was cropped away

    crop = maps[:, :ch, :cw]
    if flip:
        crop = crop.flip(-1)
    expected = F.interpolate(crop[None], size=(18, 30), mode='bilinear', align_corners=False)
    torch.testing.assert_close(out, expected[0])


def _losses(work: Path) -> list[float]:
    [log] = sorted(work.glob('*/vis_data/scalars.json'))[-1:]
    return [json.loads(line)['loss'] for line in log.read_text().splitlines() if '"loss"' in line]


def test_short_training_lowers_loss_and_tests(tiny_prm_cfg: Path, tmp_path: Path) -> None:
    # seeded: unseeded, 16 iterations from a random init lowered the loss by 19-40 %
    run_tool('tools/train.py', tiny_prm_cfg, '--work-dir', tmp_path,
             '--cfg-options', 'train_cfg.max_epochs=8', 'train_dataloader.dataset.indices=8',
             'randomness.seed=0')
    losses = _losses(tmp_path)
    assert len(losses) == 16
    assert sum(losses[-4:]) / 4 < 0.8 * sum(losses[:4]) / 4, losses
    proc = run_tool('tools/test.py', tiny_prm_cfg, tmp_path / 'epoch_8.pth',
                    '--work-dir', tmp_path / 'test')
    out = proc.stdout + proc.stderr
    for key in ('prm/mAP', 'prm/peak_precision', 'prm/instance_recall'):
        assert key in out

    vis = tmp_path / 'vis'
    run_tool('tools/vis_peaks.py', tiny_prm_cfg, tmp_path / 'epoch_8.pth', '--out-dir', vis,
             '--num', '2')
    pngs = sorted(vis.glob('*.png'))
    assert len(pngs) == 2
    for png in pngs:
        h, w = read_image(png).shape[:2]
        # the image with its peaks, then CRM and PRM tiles per class found present, under
        # a 14 px header tallying the peaks against the split's ground truth
        assert h == 96 + 14 and w % 96 == 0 and (w // 96) % 2 == 1
