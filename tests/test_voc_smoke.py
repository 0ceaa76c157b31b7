"""The paper's own VOC configs, every stage, end to end (tools/pipeline.py --smoke).

A key that only the demo configs override, a size that breaks at 500x375, a class
count that does not match VOC's 20 or an SBD path that the converter does not get
would otherwise reach the first user with VOC: this runs the VOC presets' configs
(R-50 PRM at 448 px with x8 sub-pixel peaks, Mask R-CNN R-50-FPN at 800/1333, 1000
built-in proposals) on a generated VOC 2012 + SBD tree of 500x375 images, with a
handful of iterations and no ImageNet weights.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from projects.wise.datasets.voc_layout import VOC_CLASSES

from conftest import run_tool
from voc_tree import make_voc_tree

pytestmark = pytest.mark.slow


def test_voc_aug_preset_runs_every_stage_with_the_paper_configs(tmp_path: Path) -> None:
    root, sbd = make_voc_tree(tmp_path, num_train=3, num_val=1, num_sbd=2)
    work = tmp_path / 'work'
    proc = run_tool('tools/pipeline.py', 'voc_aug', '--smoke', '--counts', '--data-root', root,
                    '--sbd-root', sbd, '--work-dir', work, timeout=2400)
    ran = [line.split()[1] for line in proc.stdout.splitlines()
           if line.startswith('[pipeline] ') and line.split()[1] != 'all'
           and ': done in' not in line]
    assert ran == ['data', 'proposals', 'prm', 'prm_density', 'prm_density_baseline', 'pseudo',
                   'pseudo_improved', 'pseudo_counts', 'prm_baseline', 'full', 'wise',
                   'wise_improved', 'wise_counts', 'table']

    ann = root / 'annotations'
    train = json.loads((ann / 'train_aug_labels.json').read_text())
    assert len(train['images']) == 5  # VOC train + SBD train (the SBD val image is VOC val)
    assert all(len(im['label_counts']) == len(im['labels']) for im in train['images'])
    assert [c['name'] for c in train['categories']] == list(VOC_CLASSES)
    source = json.loads((root / 'proposals/.source.json').read_text())
    assert source['options'] == {'max_proposals': 1000}

    pseudo = json.loads((work / 'pseudo/train_aug_pseudo.json').read_text())
    assert len(pseudo['images']) == 5 and pseudo['annotations']  # every labelled class
    results = json.loads((work / 'results.json').read_text())
    assert list(results['rows']) == ['Mask R-CNN (full)', 'PRM', 'PRM + Density', 'WISE',
                                     'WISE + Refine', 'WISE (improved)',
                                     'WISE (improved) + Refine', 'WISE + counts',
                                     'WISE + counts + Refine']
    assert results['train'].startswith('SBD train_aug')
    assert 'Trained on SBD train_aug' in (work / 'results.md').read_text()
    for name in ('full/metrics', 'wise/metrics', 'wise/refine', 'wise_improved/metrics',
                 'wise_improved/refine', 'wise_counts/metrics', 'wise_counts/refine'):
        metrics = json.loads((work / f'{name}.metrics.json').read_text())['metrics']
        assert {'segm_mAP25', 'segm_mAP50', 'segm_mAP75', 'segm_ABO'} <= set(metrics)


def test_voc_preset_trains_on_the_papers_split(tmp_path: Path) -> None:
    """voc: VOC 2012 train (the authors' 1,464), no SBD; its configs read that split."""
    root, _ = make_voc_tree(tmp_path, num_train=3, num_val=2, num_sbd=2)
    run_tool('tools/pipeline.py', 'voc', '--only', 'data', '--data-root', root,
             '--work-dir', tmp_path / 'work')
    train = json.loads((root / 'annotations/train_labels.json').read_text())
    assert len(train['images']) == 3
    assert not (root / 'annotations/train_aug_labels.json').exists()
    proc = run_tool('tools/pipeline.py', 'voc', '--dry-run', '--from', 'prm')
    assert 'configs/wise/prm_r50_voc.py' in proc.stdout
    assert 'pseudo/train_pseudo.json' in proc.stdout
