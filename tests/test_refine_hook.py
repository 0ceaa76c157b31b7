"""ProposalRefineHook: the refiner on a hand-made case, and the hook through
tools/test.py (metric changes, --refine, missing proposals, 2-process dist_test.sh)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData
from torch import nn

from mmdet.registry import HOOKS
from mmdet.structures import DetDataSample
from projects.wise.engine import ProposalRefineHook, enable_refinement, refine
from projects.wise.errors import DataError
from projects.wise.proposals import Proposals

from conftest import ROOT, child_cfg, run_tool

H, W = 40, 50


def block(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


def crafted() -> tuple[Proposals, InstanceData]:
    proposals = Proposals.from_masks(
        np.stack([block(0, 20, 0, 20), block(5, 25, 5, 25), block(30, 40, 40, 50)]),
        [0.9, 0.8, 0.7])
    preds = InstanceData(
        masks=torch.from_numpy(np.stack([
            block(6, 24, 6, 24),    # IoU .81 with proposal 1, .37 with proposal 0
            block(30, 40, 47, 50),  # IoU .3 with proposal 2
            block(0, 3, 40, 43),    # overlaps no proposal
            block(0, 20, 0, 18),    # IoU .9 with proposal 0, .35 with proposal 1
        ])),
        bboxes=torch.tensor([[1., 2., 3., 4.]] * 4),
        scores=torch.tensor([0.9, 0.6, 0.5, 0.3]),
        labels=torch.tensor([3, 1, 0, 2]))
    return proposals, preds


# ------------------------------------------------------------ 1. the refiner
def test_refine_picks_the_max_iou_proposal():
    proposals, preds = crafted()
    props = proposals.decode()
    masks = preds.masks.numpy()
    iou = np.array([[(m & p).sum() / (m | p).sum() for p in props] for m in masks])
    np.testing.assert_allclose(proposals.iou(list(map(_rle, masks))), iou)
    assert iou.argmax(1).tolist() == [1, 2, 0, 0] and iou[2].max() == 0

    out, refined = refine(preds, proposals, min_iou=0.5, return_refined=True)
    assert refined.tolist() == [True, False, False, True]
    assert out.masks.dtype == torch.bool
    expect = [props[1], masks[1], masks[2], props[0]]
    for got, want in zip(out.masks.numpy(), expect):
        np.testing.assert_array_equal(got, want)
    # boxes recomputed from the new masks only; label and score always kept
    assert out.bboxes.tolist() == [[5, 5, 25, 25], [1, 2, 3, 4], [1, 2, 3, 4], [0, 0, 20, 20]]
    assert torch.equal(out.labels, preds.labels) and torch.equal(out.scores, preds.scores)
    assert torch.equal(preds.masks, torch.from_numpy(masks))  # the input is untouched

    # min_iou 0: any overlap suffices, but a mask overlapping nothing stays
    out, refined = refine(preds, proposals, min_iou=0.0, return_refined=True)
    assert refined.tolist() == [True, True, False, True]
    np.testing.assert_array_equal(out.masks[1].numpy(), props[2])
    assert out.bboxes[1].tolist() == [40, 30, 50, 40]
    # above every IoU: nothing changes
    out = refine(preds, proposals, min_iou=0.95)
    assert torch.equal(out.masks, preds.masks) and torch.equal(out.bboxes, preds.bboxes)


def _rle(mask: np.ndarray) -> dict:
    import pycocotools.mask as mask_util
    return mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))


def test_refine_edge_cases():
    proposals, preds = crafted()
    empty = preds[torch.zeros(4, dtype=torch.bool)]
    assert len(refine(empty, proposals)) == 0
    none = Proposals.from_masks(np.zeros((0, H, W), bool), [])
    assert torch.equal(refine(preds, none).masks, preds.masks)
    with pytest.raises(ValueError, match='original image size'):
        refine(preds, Proposals.from_masks(np.zeros((1, H, W + 1), bool), [1.0]))


class _Source:
    """A proposal source answering from a dict, raising like a missing file."""

    def __init__(self, by_path: dict):
        self.by_path = by_path
        self.calls = 0

    def __call__(self, image):
        from projects.wise.errors import ProposalError
        self.calls += 1
        assert (image['height'], image['width']) == (H, W)
        if image['img_path'] not in self.by_path:
            raise ProposalError(f'{image["img_path"]}.json: not found')
        return self.by_path[image['img_path']]


class _Model(nn.Module):
    def __init__(self, preds):
        super().__init__()
        self.preds = preds

    def test_step(self, data):
        out = []
        for path in data:
            s = DetDataSample(metainfo=dict(img_path=path, img_id=0, ori_shape=(H, W)))
            s.pred_instances = self.preds.clone()
            out.append(s)
        return out

    val_step = test_step


def test_hook_wraps_and_restores_test_step():
    proposals, preds = crafted()
    assert HOOKS.get('ProposalRefineHook') is ProposalRefineHook
    source = _Source({'a.jpg': proposals})
    hook = ProposalRefineHook(proposals=source, min_iou=0.5)
    model = _Model(preds)
    runner = SimpleNamespace(model=model)
    hook.before_test(runner)
    assert 'test_step' in vars(model)
    out = model.test_step(['a.jpg', 'gone.jpg', 'gone.jpg'])
    assert out[0].pred_instances.bboxes[0].tolist() == [5, 5, 25, 25]
    for s in out[1:]:  # no proposals: predictions kept as they are
        assert torch.equal(s.pred_instances.masks, preds.masks)
    assert hook.counts | dict(cpu_us=0) == dict(refined=2, kept=2, missing=8,
                                                missing_images=2, images=3, cpu_us=0)
    hook.after_test(runner)
    assert 'test_step' not in vars(model)  # the class's method again
    assert model.test_step(['a.jpg'])[0].pred_instances.bboxes[0].tolist() == [1, 2, 3, 4]
    # masks not at the original size: a clear error
    hook.before_test(runner)
    model.preds = InstanceData(masks=torch.zeros(1, H // 2, W, dtype=torch.bool),
                               bboxes=torch.zeros(1, 4), scores=torch.ones(1),
                               labels=torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match='ori_shape'):
        model.test_step(['a.jpg'])
    hook.after_test(runner)
    # validation during training: only with apply_on_val
    hook.before_val(runner)
    assert 'val_step' not in vars(model)
    hook = ProposalRefineHook(proposals=source, apply_on_val=True)
    hook.before_val(runner)
    assert 'val_step' in vars(model) and 'test_step' not in vars(model)
    hook.after_val(runner)
    assert 'val_step' not in vars(model)


def test_min_objectness_refines_with_confident_proposals_only():
    """``ProposalRefineHook(min_objectness=0.75)`` (WISE's released refinement: proposals
    scoring above 0.75) leaves prediction 1 as it is, as its only overlapping proposal
    scores 0.7; None uses every proposal. Catches the key ignored (3 refined)."""
    proposals, preds = crafted()
    for min_objectness, refined in ((None, [True, True, False, True]),
                                    (0.75, [True, False, False, True])):
        hook = ProposalRefineHook(proposals=_Source({'a.jpg': proposals}),
                                  min_objectness=min_objectness)
        runner = SimpleNamespace(model=_Model(preds))
        hook.before_test(runner)
        [s] = runner.model.test_step(['a.jpg'])
        hook.after_test(runner)
        assert [not torch.equal(a, b) for a, b in zip(s.pred_instances.masks, preds.masks)] \
            == refined


# ------------------------------------------------- 2-4. through tools/test.py
SCORE_THR_0 = ['model.test_cfg.rcnn.score_thr=0.0', 'test_evaluator.score_thr=0.0']


@pytest.fixture(scope='module')
def checkpoint(tiny_full_ckpt: Path) -> Path:
    return tiny_full_ckpt


@pytest.fixture(scope='module')
def gt_proposals(shapes_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The val images' GT masks as proposals, one ``<stem>.json`` per image."""
    root = tmp_path_factory.mktemp('gt_proposals')
    coco = json.loads((shapes_root / 'annotations/val_instances.json').read_text())
    for img in coco['images']:
        props = [dict(segmentation=a['segmentation'], score=1.0)
                 for a in coco['annotations'] if a['image_id'] == img['id']]
        assert props and all(isinstance(p['segmentation']['counts'], str) for p in props)
        (root / f'{Path(img["file_name"]).stem}.json').write_text(json.dumps(props))
    return root


def refine_cfg(base: Path, proposals: Path, path: Path, enabled: bool = True) -> Path:
    return child_cfg(base, path, custom_hooks=[dict(
        type='ProposalRefineHook', proposals=dict(type='precomputed', root=str(proposals)),
        min_iou=0.0, enabled=enabled)])


def test_metrics(cfg: Path, ckpt: Path, out: Path, *args: str | Path) -> tuple[dict, str]:
    proc = run_tool('tools/test.py', cfg, ckpt, '--work-dir', out, *args, '--cfg-options',
                    *SCORE_THR_0, f'test_evaluator.outfile_prefix={out}/wise')
    saved = json.loads((out / 'wise.metrics.json').read_text())
    return saved['metrics'], proc.stdout + proc.stderr


test_metrics.__test__ = False  # a helper, not a test


@pytest.fixture(scope='module')
def unrefined(tiny_full_cfg, checkpoint, tmp_path_factory) -> dict:
    return test_metrics(tiny_full_cfg, checkpoint, tmp_path_factory.mktemp('t_plain'))[0]


@pytest.fixture(scope='module')
def refined(tiny_full_cfg, checkpoint, gt_proposals, tmp_path_factory) -> tuple[dict, str]:
    """Switched on in the config, as the ``_refine`` configs do."""
    out = tmp_path_factory.mktemp('t_refined')
    return test_metrics(refine_cfg(tiny_full_cfg, gt_proposals, out / 'cfg.py'), checkpoint, out)


def test_hook_listed_off_changes_nothing(tiny_full_cfg, checkpoint, gt_proposals, unrefined,
                                         tmp_path):
    cfg = refine_cfg(tiny_full_cfg, gt_proposals, tmp_path / 'cfg.py', enabled=False)
    metrics, log = test_metrics(cfg, checkpoint, tmp_path / 'out')
    assert metrics == unrefined and 'ProposalRefineHook (test)' not in log


def test_refinement_changes_the_printed_metric(unrefined, refined, shapes_root):
    """With the GT masks as proposals the refined metric is bounded on both sides,
    unrefined < refined <= 100, and the ABO is 100 k / n: each refined mask is one of the
    n disjoint objects exactly. Catches a hook that does nothing (refined == unrefined),
    one that makes the predictions worse, and one that pastes the proposals distorted
    (flipped, or shifted by a pixel)."""
    metrics, log = refined
    assert 'ProposalRefineHook (test): ' in log and ' 0 kept on 0 images' in log
    assert 'ProposalRefineHook (test): 0 predictions refined' not in log
    # its own CPU time over every test image (bench refine_cost reads it)
    assert re.search(r'; [\d.]+ ms of CPU over 4 images', log), log[-500:]
    assert unrefined['segm_ABO'] > 0  # the tiny model does predict something
    # GT masks as proposals: every prediction touching an object becomes that object
    for key in ('segm_ABO', 'segm_mAP50'):
        assert unrefined[key] < metrics[key] <= 100, (key, unrefined[key], metrics[key])
    assert metrics != unrefined
    coco = json.loads((shapes_root / 'annotations/val_instances.json').read_text())
    n = sum(not a.get('iscrowd', 0) for a in coco['annotations'])
    k = round(metrics['segm_ABO'] * n / 100)  # the objects some prediction became
    assert k >= 1 and metrics['segm_ABO'] == pytest.approx(100 * k / n, abs=0.006)


def test_enable_refinement_finds_the_hook_by_type(tmp_path):
    cfg = Config(dict(custom_hooks=[dict(type='EmptyCacheHook'),
                                    dict(type='ProposalRefineHook', min_iou=0.3, enabled=False)]))
    enable_refinement(cfg, str(tmp_path))
    assert cfg.custom_hooks == [
        dict(type='EmptyCacheHook'),
        dict(type='ProposalRefineHook', min_iou=0.3, enabled=True,
             proposals=dict(type='precomputed', root=str(tmp_path)))]
    cfg = Config(dict(custom_hooks=[dict(type='EmptyCacheHook')]))
    enable_refinement(cfg)  # none listed: one is added, reading <data_root>/proposals/
    assert cfg.custom_hooks == [dict(type='EmptyCacheHook'),
                                dict(type='ProposalRefineHook', enabled=True)]
    with pytest.raises(DataError, match='no such folder of proposals'):
        enable_refinement(cfg, str(tmp_path / 'typo'))


def test_refine_option_finds_the_hook_behind_another(tiny_full_cfg, checkpoint, gt_proposals,
                                                     refined, tmp_path):
    """The bug: ``--cfg-options custom_hooks.0.enabled=True`` switched on whichever hook a
    config lists first; ``--refine`` finds the refine hook by its type."""
    cfg = child_cfg(tiny_full_cfg, tmp_path / 'cfg.py', custom_hooks=[
        dict(type='EmptyCacheHook'), dict(type='ProposalRefineHook', enabled=False)])
    metrics, log = test_metrics(cfg, checkpoint, tmp_path / 'out', '--refine', gt_proposals)
    assert 'ProposalRefineHook (test): ' in log and metrics == refined[0]


def test_proposals_default_to_the_test_data_root(tiny_full_cfg, shapes_root, checkpoint,
                                                 gt_proposals, refined, tmp_path):
    """The refine configs name no folder: the hook reads ``<data_root>/proposals/``."""
    data = tmp_path / 'data'
    data.mkdir()
    for name, target in (('JPEGImages', shapes_root / 'JPEGImages'),
                         ('annotations', shapes_root / 'annotations'),
                         ('proposals', gt_proposals)):
        (data / name).symlink_to(target)
    cfg = child_cfg(tiny_full_cfg, tmp_path / 'cfg.py',
                    test_dataloader=dict(dataset=dict(data_root=f'{data}/')),
                    custom_hooks=[dict(type='ProposalRefineHook')])
    metrics, log = test_metrics(cfg, checkpoint, tmp_path / 'out')
    assert 'ProposalRefineHook (test): ' in log and metrics == refined[0]


def test_refine_without_proposals_is_one_line(tiny_full_cfg, shapes_root, checkpoint,
                                              tmp_path):
    """``--refine`` adds the hook to a config listing none; no ``<data_root>/proposals/``
    stops the run with one line naming that folder."""
    proc = run_tool('tools/test.py', tiny_full_cfg, checkpoint, '--work-dir', tmp_path,
                    '--refine', check=False)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f'test.py: error: {shapes_root}/proposals: no such folder'), last


def test_missing_proposals_file_keeps_predictions(tiny_full_cfg, checkpoint, gt_proposals,
                                                  refined, tmp_path):
    partial = tmp_path / 'props'
    partial.mkdir()
    files = sorted(gt_proposals.glob('*.json'))
    for f in files[1:]:
        (partial / f.name).write_text(f.read_text())
    missing = partial / files[0].name
    metrics, log = test_metrics(refine_cfg(tiny_full_cfg, partial, tmp_path / 'cfg.py'),
                                checkpoint, tmp_path / 'out')
    warnings = [line for line in log.splitlines() if 'unrefined' in line]
    assert len(warnings) == 1 and str(missing) in warnings[0]  # once, naming the file
    assert 'kept on 1 images without proposals' in log
    assert metrics['segm_ABO'] <= refined[0]['segm_ABO']


def test_dist_test_two_cpu_processes_match_one(tiny_full_cfg, checkpoint, gt_proposals,
                                               refined, tmp_path):
    cfg = refine_cfg(tiny_full_cfg, gt_proposals, tmp_path / 'cfg.py', enabled=False)
    env = {**os.environ, 'PYTHON': sys.executable, 'PORT': '29547'}
    proc = subprocess.run(
        ['bash', 'tools/dist_test.sh', str(cfg), str(checkpoint), '2', '--work-dir',
         str(tmp_path / 'work'), '--refine', '--cfg-options', *SCORE_THR_0,
         f'test_evaluator.outfile_prefix={tmp_path}/wise'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-5000:]
    log = proc.stdout + proc.stderr
    assert 'ProposalRefineHook (test): ' in log
    metrics = json.loads((tmp_path / 'wise.metrics.json').read_text())['metrics']
    assert metrics == refined[0]
    # the summary adds up both ranks: the same counts and images as one process (its CPU
    # time is each run's own)
    summary = [line for line in refined[1].splitlines() if 'ProposalRefineHook (test)' in line]
    counts, _, cpu = summary[0].split('ProposalRefineHook')[1].partition('; ')
    assert counts in log and cpu.split(' ms of CPU')[1] in log


# ------------------------------------------- 5. a detector other than Mask R-CNN
SOLO_SCORE_THR_0 = ['model.test_cfg.score_thr=0.0', 'model.test_cfg.filter_thr=0.0',
                    'test_evaluator.score_thr=0.0']


def test_refinement_of_a_single_stage_segmenter(tiny_solov2_cfg, gt_proposals, shapes_root,
                                                tmp_path):
    """The hook refines SOLOv2 (no RoIs, all-zero boxes, scores from matrix NMS) through
    tools/test.py as it does Mask R-CNN: catches a hook that assumes Mask R-CNN's outputs
    or config (boxes, test_cfg.rcnn). With the GT masks as proposals every refined
    prediction becomes an object exactly (ABO 100 k / n), above the unrefined ABO."""
    run_tool('tools/train.py', tiny_solov2_cfg, '--work-dir', tmp_path / 'train',
             '--cfg-options', 'randomness.seed=0', 'train_cfg.max_iters=30')  # learns a little
    ckpt = tmp_path / 'train/iter_30.pth'
    metrics = {}
    for name, args in (('plain', ()), ('refined', ('--refine', gt_proposals))):
        out = tmp_path / name
        proc = run_tool('tools/test.py', tiny_solov2_cfg, ckpt, '--work-dir', out, *args,
                        '--cfg-options', *SOLO_SCORE_THR_0,
                        f'test_evaluator.outfile_prefix={out}/wise')
        metrics[name] = json.loads((out / 'wise.metrics.json').read_text())['metrics']
    log = proc.stdout + proc.stderr
    assert 'ProposalRefineHook (test): ' in log and ' 0 kept on 0 images' in log
    assert 'ProposalRefineHook (test): 0 predictions refined' not in log
    plain, refined = metrics['plain'], metrics['refined']
    assert 'bbox_mAP50' not in plain  # the SOLOv2 configs score masks only
    assert 0 < plain['segm_ABO'] < refined['segm_ABO'] <= 100
    coco = json.loads((shapes_root / 'annotations/val_instances.json').read_text())
    n = sum(not a.get('iscrowd', 0) for a in coco['annotations'])
    k = round(refined['segm_ABO'] * n / 100)
    assert k >= 1 and refined['segm_ABO'] == pytest.approx(100 * k / n, abs=0.006)
