"""PRMClassifier: predictions, peak response maps, and real training through the tools."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import projects.wise  # noqa: F401
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from projects.wise.utils.io import read_image

from conftest import ROOT, run_tool


def _model(**test_cfg) -> torch.nn.Module:
    init_default_scope('mmdet')
    cfg = Config.fromfile(ROOT / 'configs/wise/demo/prm_r18_shapes.py').model
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


def _losses(work: Path) -> list[float]:
    [log] = sorted(work.glob('*/vis_data/scalars.json'))[-1:]
    return [json.loads(line)['loss'] for line in log.read_text().splitlines() if '"loss"' in line]


def test_short_training_lowers_loss_and_tests(tiny_prm_cfg: Path, tmp_path: Path) -> None:
    run_tool('tools/train.py', tiny_prm_cfg, '--work-dir', tmp_path,
             '--cfg-options', 'train_cfg.max_epochs=8', 'train_dataloader.dataset.indices=8')
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
        # the image with its peaks, then CRM and PRM tiles per class found present
        assert h == 96 and w % 96 == 0 and (w // 96) % 2 == 1
