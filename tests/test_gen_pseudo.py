"""tools/gen_pseudo.py end to end: a real PRM checkpoint, real proposals, real files."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_util

from conftest import ROOT, run_tool


def _args(cfg: Path, ckpt: Path, out: Path, *extra: str) -> list:
    return ['tools/gen_pseudo.py', cfg, ckpt, '--out', out,
            '--proposals', 'type=builtin', 'max_proposals=200', *extra]


@pytest.fixture(scope='module')
def reference(tiny_prm_cfg: Path, tiny_prm_ckpt: Path, tmp_path_factory) -> Path:
    """One uninterrupted single-process run over the 12 train images."""
    out = tmp_path_factory.mktemp('ref') / 'train_pseudo.json'
    run_tool(*_args(tiny_prm_cfg, tiny_prm_ckpt, out, '--show-dir', out.parent / 'show'))
    return out


def test_output_is_coco_that_mmdet_loads(reference: Path, shapes_root: Path) -> None:
    from mmengine.registry import init_default_scope

    import projects.wise  # noqa: F401
    from mmdet.registry import DATASETS
    data = json.loads(reference.read_text())
    labels = {im['id']: set(im['labels']) for im in
              json.loads((shapes_root / 'annotations/train_labels.json').read_text())['images']}
    assert len(data['images']) == 12 and data['annotations']
    for ann in data['annotations']:
        img = next(i for i in data['images'] if i['id'] == ann['image_id'])
        assert ann['segmentation']['size'] == [img['height'], img['width']]
        assert ann['category_id'] in labels[ann['image_id']]  # never a label not in the image
        assert np.allclose(ann['bbox'], mask_util.toBbox(ann['segmentation']))
        assert ann['area'] == mask_util.area(ann['segmentation']) > 0
    assert [a['id'] for a in data['annotations']] == list(range(1, len(data['annotations']) + 1))

    init_default_scope('mmdet')
    ds = DATASETS.build(dict(
        type='VOCInstanceDataset', data_root=str(shapes_root), ann_file=str(reference),
        data_prefix=dict(img='JPEGImages/'), metainfo=dict(
            classes=('circle', 'square', 'triangle', 'star', 'cross')),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
                  dict(type='PackDetInputs')]))
    item = ds[0]
    assert item['data_samples'].gt_instances.masks.masks.shape[1:] == (96, 96)

    report = json.loads(Path(f'{reference}.report.json').read_text())
    assert report['events']['images'] == 12
    assert report['events']['instances'] == len(data['annotations'])
    assert set(report['quality']) >= {'segm_mAP25', 'segm_mAP50', 'segm_mAP75', 'segm_ABO'}
    assert set(report['proposal_recall@0.5']) == {'100', '500', '1000'}
    assert len(list((reference.parent / 'show').glob('*.png'))) == 12


def test_python_api_labels_an_image_as_the_tool_does(reference: Path, tiny_prm_cfg: Path,
                                                     tiny_prm_ckpt: Path) -> None:
    """A notebook user's ``PseudoLabeller`` must give the tool's annotations (catches the
    package and tools/gen_pseudo.py drifting apart, e.g. a threshold applied in one only)."""
    from projects.wise.pseudo import PseudoLabeller
    labeller = PseudoLabeller.from_config(str(tiny_prm_cfg), str(tiny_prm_ckpt),
                                          proposals=dict(type='builtin', max_proposals=200))
    data = json.loads(reference.read_text())
    assert len(labeller) == len(data['images'])
    # Which images the tiny PRM labels depends on the machine's float arithmetic: compare
    # the first two that the tool labelled, and one it left empty where there is one.
    labelled = {a['image_id'] for a in data['annotations']}
    indices = [i for i, im in enumerate(data['images']) if im['id'] in labelled][:2]
    indices += [i for i, im in enumerate(data['images']) if im['id'] not in labelled][:1]
    assert len(indices) >= 2
    for index in indices:
        record = labeller(index)
        assert record['image'] == data['images'][index]
        expected = [{k: v for k, v in a.items() if k != 'id'} for a in data['annotations']
                    if a['image_id'] == record['image']['id']]
        assert record['annotations'] == expected


def test_test_cfg_keys_reach_the_labeller(tiny_prm_cfg: Path, tiny_prm_ckpt: Path) -> None:
    """gen_pseudo reads ILC's and the released code's keys from the config's
    ``model.test_cfg``: its peak rules, and ``instance_score`` (with best_objectness, each
    instance scored by its proposal's objectness). Catches from_config reading only
    score_thr and peak_thr; an unknown value names the config file."""
    from mmengine.config import Config

    from projects.wise.errors import OptionError
    from projects.wise.pseudo import PseudoLabeller
    from projects.wise.pseudo.peaks import PeakRules
    keys = dict(score_fallback=True, cap_peak_thr=True, weak_peaks=False, peak_point='gradient')
    cfg = Config.fromfile(tiny_prm_cfg)
    cfg.model.test_cfg.update(keys, instance_score='selection')
    build = partial(PseudoLabeller.from_config, cfg, str(tiny_prm_ckpt),
                    proposals=dict(type='builtin', max_proposals=200),
                    selector=dict(type='best_objectness'))
    labeller = build()
    assert labeller.rules == PeakRules(score_thr=0.0, peak_thr=30.0, **keys)
    anns = [a for i in range(3) for a in labeller(i)['annotations']]
    assert anns and all(a['score'] == a['objectness'] for a in anns)
    cfg.model.test_cfg.peak_point = 'centre'
    with pytest.raises(OptionError, match=re.escape(f'{tiny_prm_cfg}: model.test_cfg: Unknown '
                                                    "peak_point 'centre'")):
        build()


def test_kill_and_rerun_gives_identical_bytes(reference: Path, tiny_prm_cfg: Path,
                                              tiny_prm_ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / 'train_pseudo.json'
    parts = Path(f'{out}.parts') / 'shard-000-of-001.jsonl'
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    proc = subprocess.Popen([sys.executable, *map(str, _args(tiny_prm_cfg, tiny_prm_ckpt, out))],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if parts.exists() and parts.read_bytes().count(b'\n') >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, 'finished before it could be killed'
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    with open(parts, 'ab') as f:  # as if killed in the middle of a line
        f.write(b'{"index": 7, "image": {"id"')
    proc = run_tool(*_args(tiny_prm_cfg, tiny_prm_ckpt, out))
    assert 'done before' in proc.stdout
    assert out.read_bytes() == reference.read_bytes()


def test_parts_of_another_run_are_never_resumed_or_merged(reference: Path, tiny_prm_cfg: Path,
                                                         tiny_prm_ckpt: Path,
                                                         tmp_path: Path) -> None:
    """A rerun after a retrained PRM (or another option) must not reuse stale parts."""
    out = tmp_path / 'train_pseudo.json'
    run_tool(*_args(tiny_prm_cfg, tiny_prm_ckpt, out, '--seed', '1'))
    assert out.read_bytes() != reference.read_bytes()  # sampling follows the seed
    proc = run_tool(*_args(tiny_prm_cfg, tiny_prm_ckpt, out))
    assert 'written by another run (different seed): starting this shard over' in proc.stdout
    assert out.read_bytes() == reference.read_bytes()

    retrained = tmp_path / 'retrained.pth'  # other bytes, as a retrained PRM has
    ckpt = torch.load(tiny_prm_ckpt, map_location='cpu', weights_only=False)
    ckpt['meta']['note'] = 'retrained'
    torch.save(ckpt, retrained)
    proc = run_tool(*_args(tiny_prm_cfg, retrained, out))
    assert '(different checkpoint): starting this shard over' in proc.stdout
    assert json.loads(Path(f'{out}.report.json').read_text())['checkpoint'] == str(retrained)

    mixed = tmp_path / 'mixed.json'
    run_tool(*_args(tiny_prm_cfg, tiny_prm_ckpt, mixed, '--shard', '0/2', '--seed', '1'))
    proc = run_tool(*_args(tiny_prm_cfg, tiny_prm_ckpt, mixed, '--shard', '1/2'))
    assert 'not merged yet' in proc.stdout and \
        'shard-000-of-002.jsonl: written by another run (different seed)' in proc.stdout
    assert not mixed.exists()
    run_tool(*_args(tiny_prm_cfg, tiny_prm_ckpt, mixed, '--shard', '0/2'))
    assert mixed.read_bytes() == reference.read_bytes()


def test_shards_and_torchrun_give_identical_bytes(reference: Path, tiny_prm_cfg: Path,
                                                  tiny_prm_ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / 'sharded.json'
    first = run_tool(*_args(tiny_prm_cfg, tiny_prm_ckpt, out, '--shard', '1/2'))
    assert 'not merged yet' in first.stdout and not out.exists()
    run_tool(*_args(tiny_prm_cfg, tiny_prm_ckpt, out, '--shard', '0/2'))
    assert out.read_bytes() == reference.read_bytes()

    out = tmp_path / 'torchrun.json'
    env = {**os.environ, 'PYTHON': sys.executable, 'PORT': '29537', 'OMP_NUM_THREADS': '1'}
    proc = subprocess.run(['bash', 'tools/dist_gen_pseudo.sh', str(tiny_prm_cfg),
                           str(tiny_prm_ckpt), '2', '--out', str(out), '--proposals',
                           'type=builtin', 'max_proposals=200'],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.read_bytes() == reference.read_bytes()


def test_oracle_points_and_missing_proposals(tiny_prm_cfg: Path, tiny_prm_ckpt: Path,
                                            shapes_root: Path, tmp_path: Path) -> None:
    """GT masks among random boxes as proposals: GT centres with best_objectness must
    give back exactly the GT masks, except on the image whose proposals are missing."""
    gt = json.loads((shapes_root / 'annotations/train_instances.json').read_text())
    props = tmp_path / 'proposals'
    props.mkdir()
    rng = np.random.default_rng(0)
    for img in gt['images']:
        h, w = img['height'], img['width']
        entries = [dict(segmentation=a['segmentation'], score=1.0)
                   for a in gt['annotations'] if a['image_id'] == img['id']]
        for _ in range(50):
            box = np.zeros((h, w), np.uint8, order='F')
            x, y = rng.integers(0, w - 20), rng.integers(0, h - 20)
            box[y:y + rng.integers(5, 40), x:x + rng.integers(5, 40)] = 1
            rle = mask_util.encode(box)
            entries.append(dict(segmentation=dict(size=[h, w], counts=rle['counts'].decode()),
                                score=0.5))
        (props / f'{Path(img["file_name"]).stem}.json').write_text(json.dumps(entries))
    missing_img = gt['images'][3]
    missing = props / f'{Path(missing_img["file_name"]).stem}.json'
    missing.unlink()
    out = tmp_path / 'oracle.json'
    run_tool('tools/gen_pseudo.py', tiny_prm_cfg, tiny_prm_ckpt, '--out', out, '--oracle',
             '--selector', 'type=best_objectness', '--proposals', 'type=precomputed',
             f'root={props}')
    report = json.loads(Path(f'{out}.report.json').read_text())
    assert report['events']['images_without_proposals'] == 1
    assert any(str(missing) in e for e in report['errors'])
    lost = sum(a['image_id'] == missing_img['id'] for a in gt['annotations'])
    total = len(gt['annotations'])
    assert report['events']['instances'] == total - lost
    assert report['quality']['segm_ABO'] == pytest.approx(100 * (total - lost) / total, abs=0.01)
    assert report['quality']['segm_mAP75'] > 80
    # one instance per object found (the report's over-firing figure)
    assert report['instances_per_object'] == pytest.approx((total - lost) / total, abs=1e-3)


def test_bad_inputs_name_the_problem(tiny_prm_cfg: Path, tiny_prm_ckpt: Path,
                                     shapes_root: Path, tmp_path: Path) -> None:
    # an image without any positive label: counted, listed without instances
    data = json.loads((shapes_root / 'annotations/train_labels.json').read_text())
    data['images'][0]['labels'] = []
    ann = tmp_path / 'labels.json'
    ann.write_text(json.dumps(data))
    out = tmp_path / 'out.json'
    run_tool(*_args(tiny_prm_cfg, tiny_prm_ckpt, out, '--ann-file', ann))
    report = json.loads(Path(f'{out}.report.json').read_text())
    assert report['events']['images_without_labels'] == 1
    result = json.loads(out.read_text())
    assert not [a for a in result['annotations'] if a['image_id'] == data['images'][0]['id']]

    # a PRM checkpoint of another class count
    ckpt = torch.load(tiny_prm_ckpt, map_location='cpu', weights_only=False)
    for key in ('classifier.weight', 'classifier.bias'):
        ckpt['state_dict'][key] = ckpt['state_dict'][key][:3]
    three = tmp_path / 'three_classes.pth'
    torch.save(ckpt, three)
    proc = run_tool(*_args(tiny_prm_cfg, three, tmp_path / 'x.json'), check=False)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert f'{three}: trained for 3 classes, the dataset has 5' in proc.stderr

    proc = run_tool(*_args(tiny_prm_cfg, tiny_prm_ckpt, tmp_path / 'y.json', '--shard', '2/2'),
                    check=False)
    assert proc.returncode == 2 and '--shard must be i/N' in proc.stderr


def test_disk_full_leaves_earlier_output_and_rerun_finishes(reference: Path, tiny_prm_cfg: Path,
                                                            tiny_prm_ckpt: Path,
                                                            tmp_path: Path) -> None:
    import resource
    out = tmp_path / 'train_pseudo.json'
    out.write_bytes(b'{"an": "earlier output"}')
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}

    def small_disk() -> None:  # files may not grow past 1.5 KB: as a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (1500, 1500))

    proc = subprocess.run([sys.executable, *map(str, _args(tiny_prm_cfg, tiny_prm_ckpt, out))],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
                          preexec_fn=small_disk)
    assert proc.returncode == 1, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('gen_pseudo.py: error: cannot write') and 'rerun' in last, last
    assert out.read_bytes() == b'{"an": "earlier output"}'
    run_tool(*_args(tiny_prm_cfg, tiny_prm_ckpt, out))
    assert out.read_bytes() == reference.read_bytes()
