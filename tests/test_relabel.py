"""Self-training rounds: the relabelling rule, tools/relabel.py and the round stages."""
from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_util

from projects.wise import pipeline
from projects.wise.errors import OptionError
from projects.wise.pseudo import RelabelRule

from conftest import run_tool


def _box(x0: int, y0: int, x1: int, y1: int, hw=(32, 32)) -> dict:
    m = np.zeros(hw, np.uint8, order='F')
    m[y0:y1, x0:x1] = 1
    return mask_util.encode(m)


def _inst(label: int, score: float, *box: int) -> dict:
    return dict(label=label, rle=_box(*box), score=score)


def test_rule_holds_the_new_labels_to_the_image_labels() -> None:
    # would catch: an absent class's prediction kept; a present class the model misses
    # left with no instance; the score cut not applied; previous instances kept that a
    # prediction accounts for, or lost ones dropped with keep_unmatched
    predictions = [_inst(0, 0.9, 0, 0, 10, 10),    # labelled, confident: kept
                   _inst(2, 0.99, 20, 20, 30, 30),  # class 2 is not in the image
                   _inst(1, 0.2, 10, 10, 20, 20)]   # labelled, below the cut
    previous = [_inst(0, 5.0, 0, 0, 10, 9),        # the prediction accounts for it
                _inst(0, 4.0, 20, 0, 30, 10),      # an object the model lost
                _inst(1, 3.0, 10, 10, 20, 18)]     # the class the model misses
    labels = {0, 1}
    for keep_unmatched, expected in ((False, [(0, 0.9), (1, 3.0)]),
                                     (True, [(0, 0.9), (1, 3.0), (0, 4.0)])):
        rule, events = RelabelRule(score_thr=0.5, keep_unmatched=keep_unmatched), Counter()
        kept = rule.predictions_kept(predictions, labels, events)
        out = rule.complete(kept, previous, labels, events)
        assert [(i['label'], i['score']) for i in out] == expected
        assert events['absent_class_predictions'] == 1 and events['below_score_thr'] == 1
        assert events['classes_from_previous'] == 1
    # two predictions of one object (refined onto one proposal): the better one stays
    twins = [_inst(0, 0.8, 0, 0, 10, 10), _inst(1, 0.9, 0, 0, 10, 10), _inst(0, 0.7, 20, 0, 30, 9)]
    events = Counter()
    assert [p['score'] for p in RelabelRule(nms_iou=0.5).suppress(twins, events)] == [0.9, 0.7]
    assert events['suppressed_predictions'] == 1
    assert RelabelRule(nms_iou=None).suppress(twins, events) == twins
    with pytest.raises(OptionError, match='score_thr'):
        RelabelRule(score_thr=1.5)
    with pytest.raises(OptionError, match='nms_iou'):
        RelabelRule(nms_iou=0)


@pytest.fixture(scope='module')
def previous(shapes_root: Path, tmp_path_factory) -> Path:
    """Round 1's labels as the ground truth's train instances, each scored 1."""
    coco = json.loads((shapes_root / 'annotations/train_instances.json').read_text())
    for a in coco['annotations']:
        a['score'] = 1.0
        if isinstance(a['segmentation'], list):
            h, w = next((im['height'], im['width']) for im in coco['images']
                        if im['id'] == a['image_id'])
            rle = mask_util.merge(mask_util.frPyObjects(a['segmentation'], h, w))
            a['segmentation'] = dict(size=rle['size'], counts=rle['counts'].decode())
    out = tmp_path_factory.mktemp('round1') / 'train_pseudo.json'
    out.write_text(json.dumps(coco))
    return out


def _relabel(cfg: Path, ckpt: Path, root: Path, previous: Path, out: Path, *extra) -> str:
    return run_tool('tools/relabel.py', cfg, ckpt, '--labels',
                    root / 'annotations/train_labels.json', '--previous', previous,
                    '--out', out, *extra).stdout


def _by_image(coco: dict) -> dict[int, list[dict]]:
    found: dict[int, list[dict]] = {im['id']: [] for im in coco['images']}
    for a in coco['annotations']:
        found[a['image_id']].append(a)
    return found


def test_relabel_keeps_to_the_labels_and_resumes_to_the_same_bytes(
        tiny_full_cfg: Path, tiny_full_ckpt: Path, shapes_root: Path, previous: Path,
        tmp_path: Path) -> None:
    # would catch, through the tool with a real Mask R-CNN: an instance of an absent
    # class, a labelled class left without one, the score cut ignored, and a relabelling
    # that resumes after a kill to other bytes than an uninterrupted run
    labels = {im['id']: {c - 1 for c in im['labels']} for im in json.loads(
        (shapes_root / 'annotations/train_labels.json').read_text())['images']}
    out = tmp_path / 'any' / 'train_pseudo.json'
    _relabel(tiny_full_cfg, tiny_full_ckpt, shapes_root, previous, out, '--score-thr', '0')
    report = json.loads(Path(f'{out}.report.json').read_text())
    events = report['events']
    assert events['absent_class_predictions'] > 0  # the weak model does predict them
    assert events['instances'] > events['previous_kept']  # predictions were kept
    assert report['quality']['segm_mAP50'] >= 0 and 'instances_per_object' in report
    for img_id, anns in _by_image(json.loads(out.read_text())).items():
        assert {a['category_id'] - 1 for a in anns} == labels[img_id]

    # nothing reaches a score of 1: every image keeps its round-1 instances, unchanged
    none = tmp_path / 'none' / 'train_pseudo.json'
    _relabel(tiny_full_cfg, tiny_full_ckpt, shapes_root, previous, none, '--score-thr', '1')
    old, new = _by_image(json.loads(previous.read_text())), _by_image(json.loads(none.read_text()))
    assert {k: [a['segmentation'] for a in v] for k, v in new.items()} == \
        {k: [a['segmentation'] for a in v] for k, v in old.items()}

    # a kill leaves the parts file cut after a few images, mid-line: the rerun goes on
    parts = Path(f'{out}.parts') / 'shard-000-of-001.jsonl'
    reference = out.read_bytes()
    lines = parts.read_bytes().split(b'\n')
    parts.write_bytes(b'\n'.join(lines[:4]) + b'\n' + lines[4][:30])
    out.unlink()
    stdout = _relabel(tiny_full_cfg, tiny_full_ckpt, shapes_root, previous, out,
                      '--score-thr', '0')
    assert '9 images to do, 3 done before' in stdout
    assert out.read_bytes() == reference


def test_rounds_follow_wise_and_rerun_only_when_what_they_read_changed(tmp_path: Path) -> None:
    # would catch: --rounds adding no stage, a round relabelling from the wrong model or
    # labels, a round not rerun after its model was retrained, or rerun with nothing changed
    preset = pipeline.presets()['demo-hard']
    preset.work, preset.data = str(tmp_path / 'work'), str(tmp_path / 'data')
    preset.proposals_root = f'{preset.data}/proposals'
    stages = {s.name: s for s in pipeline.build_stages(preset, rounds=3)}
    assert [n for n in stages if 'round' in n] == [
        'relabel_round2', 'round2_check', 'wise_round2', 'relabel_round3', 'round3_check',
        'wise_round3']
    assert f'{preset.work}/checks/round2_check.json' in stages['wise_round2'].inputs
    r2, r3 = stages['relabel_round2'], stages['relabel_round3']
    assert f'{preset.work}/wise_improved/last_checkpoint' in r2.inputs
    assert f'{preset.work}/pseudo_improved/train_pseudo.json' in r2.inputs
    assert f'{preset.data}/annotations/train_labels.json' in r2.inputs
    assert f'{preset.work}/wise_round2/last_checkpoint' in r3.inputs
    assert r2.outputs[0] in r3.inputs
    assert f'ann_file={r2.outputs[0]}' in ' '.join(stages['wise_round2'].steps[0][0])
    assert 'relabel_round2' not in {s.name for s in pipeline.build_stages(preset)}
    cold = {s.name: s for s in pipeline.build_stages(preset, rounds=3, round_weights='init')}
    assert 'load_from' not in str(cold['wise_round2'].steps)  # 'init': WISE's start
    warm = stages  # the default: the previous round's weights
    assert f'load_from=$(cat {preset.work}/wise_round2/last_checkpoint)' in \
        warm['wise_round3'].steps[0][0][-1]
    assert f'{preset.work}/wise_round2/last_checkpoint' in warm['wise_round3'].inputs

    for path in r2.inputs:
        if path.startswith(str(tmp_path)):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text('{}')
    time.sleep(0.01)
    Path(r2.outputs[0]).parent.mkdir(parents=True)
    Path(r2.outputs[0]).write_text('{}')
    assert r2.fresh()  # nothing it reads changed
    future = time.time() + 5
    os.utime(f'{preset.work}/wise_improved/last_checkpoint', (future, future))  # retrained
    assert not r2.fresh()


def _coco(*anns: tuple[int, int, tuple[int, int, int, int]]) -> dict:
    """(image id, category id, box) instances of two 32 px images."""
    return dict(images=[dict(id=i, height=32, width=32) for i in (1, 2)], categories=[],
                annotations=[dict(image_id=i, category_id=c, segmentation=dict(
                    size=[32, 32], counts=_box(*box)['counts'].decode())) for i, c, box in anns])


def test_round_check_stops_labels_worse_than_the_previous_rounds() -> None:
    # would catch: a round whose labels stray from the counts or from the previous round
    # going on to train a detector without a word (issue 34: rounds stop when worse)
    from projects.wise.pipeline.teacher import judge_round
    labels = dict(images=[dict(id=1, labels=[1], label_counts=[2]),
                          dict(id=2, labels=[2], label_counts=[1])])
    previous = _coco((1, 1, (0, 0, 10, 10)), (1, 1, (20, 20, 30, 30)), (2, 2, (0, 0, 8, 8)))
    same = judge_round(labels, previous, previous)
    assert same.learned and same.figures['agreement with the previous round'] == 1.0
    one_lost = _coco((1, 1, (0, 0, 10, 10)), (2, 2, (0, 0, 8, 8)))
    verdict = judge_round(labels, previous, one_lost)
    assert not verdict.learned and 'further from the counts' in verdict.failures[0]
    moved = _coco((1, 1, (12, 0, 22, 10)), (1, 1, (0, 20, 10, 30)), (2, 2, (20, 20, 28, 28)))
    verdict = judge_round(labels, previous, moved)
    assert [f for f in verdict.failures if 'agree with the previous round' in f]
    uncounted = dict(images=[dict(id=1, labels=[1]), dict(id=2, labels=[2])])
    assert judge_round(uncounted, previous, one_lost).learned  # no counts: agreement only


def test_rounds_are_refused_where_they_cannot_run() -> None:
    # would catch: --rounds with no Mask R-CNN to relabel with silently adding no round,
    # or more rounds than the table has rows for
    for args, message in ((['--rounds', '2', '--detector', 'solov2'], 'list it in --detector'),
                          (['--rounds', '9'], '--rounds takes 1 to 5')):
        proc = run_tool('tools/pipeline.py', 'demo', *args, '--dry-run', check=False)
        assert proc.returncode == 2 and message in proc.stderr
