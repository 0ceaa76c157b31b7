"""DeepMask (issue 30): its training patches, its patch and dense forms, and its proposals
through tools/train.py and tools/gen_proposals.py."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from projects.wise.datasets import DeepMaskPatches
from projects.wise.errors import DataError
from projects.wise.proposals import DeepMaskProposals, PrecomputedProposals

from conftest import ROOT, child_cfg, run_tool

DEMO = ROOT / 'configs/wise/demo/deepmask_r18_shapes.py'


@pytest.fixture
def one_object(tmp_path: Path) -> Path:
    """A 200 x 160 image with one 40 x 24 rectangle (a mask 1 inside) and a COCO file."""
    img = np.full((160, 200, 3), 90, np.uint8)
    img[50:74, 100:140] = (220, 40, 40)
    Image.fromarray(img).save(tmp_path / 'a.jpg')
    rle = dict(size=[160, 200], counts=[100 * 160 + 50, 24] + [136, 24] * 39 + [86 + 60 * 160])
    coco = dict(images=[dict(id=1, file_name='a.jpg', height=160, width=200)],
                categories=[dict(id=1, name='box'), dict(id=2, name='other')],
                annotations=[dict(id=1, image_id=1, category_id=1, bbox=[100, 50, 40, 24],
                                  area=960, iscrowd=0, segmentation=rle)])
    (tmp_path / 'a.json').write_text(json.dumps(coco))
    return tmp_path


def test_samples_centre_their_object_at_the_canonical_scale(one_object: Path) -> None:
    """Bug caught: positives off their object's centre or scale (the shift and the 2^(1/4)
    jitter are in patch pixels), negatives that show an object centred at its scale (a
    score head taught that objects are not objects)."""
    data = DeepMaskPatches('a.json', data_root=str(one_object), window=64, context=16)
    rng = np.random.RandomState(0)
    views = [data.draw(rng) for _ in range(400)]
    obj = data.objects[0]
    for v in views:
        if v.obj is None:
            assert v.kind == 'score'
            far = np.linalg.norm(data.centre(obj) - v.centre) / 2 ** v.s >= 2 * data.shift
            assert far or abs(data.log_scale(obj) - v.s) > 1
            continue
        offset = np.abs(v.centre - data.centre(obj)) / 2 ** v.s
        jitter = abs(v.s - data.log_scale(obj))
        if v.kind == 'mask':
            assert offset.max() <= data.shift + 1e-9 and jitter <= 0.25
        else:
            assert offset.max() == 0 and jitter == 0
    kinds = [(v.kind, v.obj is not None) for v in views]
    assert 150 < kinds.count(('mask', True)) < 250
    assert kinds.count(('score', True)) > 50 and kinds.count(('score', False)) > 50


def test_mask_labels_are_the_object_or_its_box(one_object: Path) -> None:
    """Bug caught: a label cut from another region than the patch's central window, or
    box supervision still teaching the mask."""
    for supervision in ('mask', 'box'):
        data = DeepMaskPatches('a.json', data_root=str(one_object), window=64, context=16,
                               label_size=64, mask_prob=1, supervision=supervision)
        obj = data.objects[0]
        view = data.draw(np.random.RandomState(1))
        view.centre, view.s, view.flip = data.centre(obj), data.log_scale(obj), False
        sample = data.render(view)
        label = sample['data_samples']['mask'].numpy() > 0
        ys, xs = np.nonzero(label)
        # 40 x 24 px at 2^s = 40 / canonical (37): 37 x 22 label px, centred at 32
        assert abs(xs.mean() - 31.5) < 1 and abs(ys.mean() - 31.5) < 1
        assert abs(np.ptp(xs) + 1 - 37) <= 1 and abs(np.ptp(ys) + 1 - 22) <= 1
        assert sample['inputs'].shape == (3, 96, 96)
        patch = sample['inputs'].numpy().transpose(1, 2, 0)
        assert (patch[48, 48] > (180, 0, 0)).all() and patch[48, 48, 1] < 100  # the object
    with pytest.raises(DataError, match='a.json: exclude_classes names no category'):
        DeepMaskPatches('a.json', data_root=str(one_object), exclude_classes=['nope'])
    with pytest.raises(DataError, match='no object to sample'):
        DeepMaskPatches('a.json', data_root=str(one_object), exclude_classes=['box'])


def _demo_model() -> torch.nn.Module:
    from mmengine.registry import init_default_scope

    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    torch.manual_seed(0)
    return MODELS.build(Config.fromfile(DEMO).model).eval()


def test_dense_form_is_the_patch_form_at_every_window() -> None:
    """Bug caught: the embedding's Linear-as-convolution or the context crop reading other
    cells in training than at inference, so proposals would come from an untrained map."""
    model = _demo_model()
    patch = torch.randn(2, 3, 96, 96)
    scores, masks = model(patch, mode='tensor')
    dense_scores, dense_masks = model.dense(patch)
    assert dense_scores.shape == (2, 3, 3)  # windows at 16 px steps over the patch
    assert torch.allclose(dense_scores[:, 1, 1], scores, atol=1e-5)
    assert torch.allclose(dense_masks[:, :, 1, 1].view(2, 32, 32), masks, atol=1e-5)


def test_windows_tile_the_image_at_every_scale(one_object: Path) -> None:
    """Bug caught: windows pasted half a window or a cell away from where the network
    saw them (the padding, the 16 px stride, the resize), which no recall figure would
    explain."""
    img = np.asarray(Image.open(one_object / 'a.jpg'))
    source = DeepMaskProposals(model=_demo_model(), scales=(0.0, -1.0), max_per_image=10 ** 6)
    windows = source.windows(img)
    for s, side in ((0.0, 64), (-1.0, 128)):
        step = 16 * 2 ** -s
        these = [w for w in windows if w[3] == side]
        centres = {(w[1] + side / 2, w[2] + side / 2) for w in these}
        xs, ys = sorted({x for x, _ in centres}), sorted({y for _, y in centres})
        assert len(centres) == len(xs) * len(ys)  # a full grid, one window a cell
        for axis, size in ((xs, 200), (ys, 160)):  # from the image's edge, across it
            assert axis == [i * step for i in range(len(axis))]
            assert size - step <= axis[-1] < size + step
        assert all(w[4].shape == (32, 32) for w in these)
    assert [w[0] for w in windows] == sorted((w[0] for w in windows), reverse=True)


@pytest.mark.slow
def test_trains_with_the_runner_and_proposes_through_gen_proposals(shapes_root: Path,
                                                                   tmp_path: Path) -> None:
    """Bug caught: a DeepMask the runner cannot train (collate, preprocessor, losses) or
    whose checkpoint the proposal source cannot load, or proposals gen_proposals cannot
    store (other sizes than the image's, unsorted, more than asked)."""
    cfg = child_cfg(DEMO, tmp_path / 'deepmask.py',
                    train_dataloader=dict(batch_size=8, num_workers=0, persistent_workers=False,
                                          dataset=dict(data_root=str(shapes_root))),
                    train_cfg=dict(max_iters=20, val_interval=20),
                    param_scheduler=[], default_hooks=dict(checkpoint=dict(interval=20),
                                                           logger=dict(interval=5)))
    work = tmp_path / 'work'
    out = run_tool('tools/train.py', cfg, '--work-dir', work,
                   '--cfg-options', 'randomness.seed=0')
    log = out.stdout + out.stderr
    losses = [float(x.split('loss: ')[1].split()[0]) for x in log.splitlines() if 'loss: ' in x]
    assert len(losses) >= 4 and all(np.isfinite(losses)) and 'loss_mask' in log
    assert losses[-1] < losses[0]  # it learns: 0.59 to 0.35 over 20 iterations (seed 0)
    run_tool('tools/gen_proposals.py', '--ann-file', shapes_root / 'annotations/val_labels.json',
             '--out-dir', tmp_path / 'proposals', '--source', 'deepmask', '--source-opts',
             f'config={cfg}', f'checkpoint={work}/iter_20.pth', 'max_per_image=50')
    images = json.loads((shapes_root / 'annotations/val_labels.json').read_text())['images']
    source = PrecomputedProposals(root=str(tmp_path / 'proposals'))
    for im in images:
        props = source(dict(img_path=im['file_name'], height=im['height'], width=im['width']))
        assert 0 < len(props) <= 50 and props.hw == (im['height'], im['width'])
        assert list(props.scores) == sorted(props.scores, reverse=True)


def test_sources_of_other_classes_mix_in_one_dataset(one_object: Path) -> None:
    """Bug caught: DeepMaskPatches lacking what mmengine's ConcatDataset asks of a dataset
    (metainfo, full_init), so the mixed-variant config could not build."""
    from mmengine.registry import init_default_scope

    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    part = dict(type='DeepMaskPatches', ann_file='a.json', data_root=str(one_object),
                window=64, context=16)
    mixed = DATASETS.build(dict(type='ConcatDataset', ignore_keys=['classes'],
                                datasets=[part, dict(part, exclude_classes=['other'])]))
    assert len(mixed) == 2 and mixed.metainfo['classes'] == ('box', 'other')
    assert mixed[1]['inputs'].shape == (3, 96, 96)
