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
    cfg.test_cfg.update(test_cfg)
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


def test_crm_cells_map_to_original_pixels() -> None:
    """A CRM cell's centre goes through the input stride, the resize and the flip."""
    from projects.wise.models import PRMClassifier
    crm, inputs = torch.zeros(1, 5, 16, 16), torch.zeros(1, 3, 64, 64)  # stride 4
    yx = torch.tensor([[0, 0], [15, 3]])
    plain = PRMClassifier._to_image_points(yx, crm, inputs, _sample(32, 32, 2.0))
    # cell centres 1.5 and 13.5 / 61.5 on the input, halved by the 2x resize
    assert torch.allclose(plain, torch.tensor([[0.75, 0.75], [6.75, 30.75]]))
    flipped = PRMClassifier._to_image_points(yx, crm, inputs, _sample(32, 32, 2.0, flip=True))
    assert torch.allclose(flipped, torch.tensor([[31 - 0.75, 0.75], [31 - 6.75, 30.75]]))


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
