"""The variant sweep: drawn variants are data of their own, their configs are the demo's
with only the data moved, and its summary judges what issue 29 asks."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config

from projects.wise.datasets.variants import KINDS, draw_outline, draw_variant, variant_by_name
from projects.wise.pipeline.custom_configs import CONFIGS, write_variant_configs
from projects.wise.pipeline.sweep import sweep_lines, targets, variant_summary

from conftest import ROOT, run_tool


def test_drawn_variants_differ_and_are_the_same_every_time() -> None:
    """Bug caught: a sweep whose variants are one variant (the defaults checked on the
    data they were chosen on), or a draw that changes between runs (a variant's stages
    would never be fresh and its figures not reproducible)."""
    drawn = [draw_variant(k) for k in range(6)]
    assert len({v.classes for v in drawn}) == 6
    assert len({(v.background, v.hue_jitter) for v in drawn}) >= 3
    again = draw_variant(3)
    assert again == drawn[3]
    for name in again.classes:
        a, b = again.outline(name), drawn[3].outline(name)
        assert np.array_equal(a[0], b[0])
    assert variant_by_name('sweep3') == drawn[3]
    with pytest.raises(ValueError, match='sweep<N>'):
        variant_by_name('sweepy')


@pytest.mark.parametrize('kind', KINDS)
def test_every_outline_kind_is_what_it_says(kind: str) -> None:
    """Bug caught: a 'hollow' class drawn solid, an 'elongated' one as round as the
    others, a 'concave' one convex (the sweep would not cover the shapes it names)."""
    import cv2
    points, hole = draw_outline(np.random.default_rng(1), kind)
    mask = np.zeros((200, 200), np.uint8)
    cv2.fillPoly(mask, [np.round(points * 60 + 100).astype(np.int32)], 1)
    if hole is not None:
        cv2.fillPoly(mask, [np.round(hole * 60 + 100).astype(np.int32)], 0)
    assert (hole is not None) == (kind == 'hollow')
    ys, xs = np.nonzero(mask)
    extent = np.ptp(xs) / max(np.ptp(ys), 1)
    assert (extent > 2.0) == (kind == 'elongated')
    hull = cv2.convexHull(np.stack([xs, ys], 1).astype(np.int32))
    solidity = mask.sum() / cv2.contourArea(hull)
    assert (solidity < 0.8) == (kind in ('concave', 'hollow'))


def test_a_drawn_variant_writes_its_classes_and_keeps_its_colour_tie(tmp_path: Path) -> None:
    """Bug caught: --variant sweep<N> writing the demo's classes, or the CLI's hue jitter
    overriding the variant's colour tie (every variant would be strongly coloured)."""
    run_tool('tools/make_shapes_dataset.py', tmp_path, '--variant', 'sweep0', '--num-train',
             '6', '--num-val', '2', '--num-test', '0', '--image-size', '64')
    variant = draw_variant(0)
    assert (tmp_path / 'classes.txt').read_text().split() == list(variant.classes)
    assert variant.hue_jitter == 180.0  # sweep0's tie is 'none': colour says nothing
    bad = run_tool('tools/make_shapes_dataset.py', tmp_path, '--variant', 'sweepx',
                   check=False)
    assert bad.returncode == 2 and 'sweep<N>' in bad.stderr


def test_variant_configs_are_the_demo_recipes_on_the_variant_data(tmp_path: Path) -> None:
    """Bug caught: a derived config that keeps the demo's data root in a metric (the PRM
    scored against the demo's ground truth) or changes anything but the data (the
    sweep would not test the defaults)."""
    paths = write_variant_configs(tmp_path, 'data/shapes-sweep9/', ('a', 'b', 'c', 'd', 'e'))
    for stem, base in (('prm', 'prm_r18_shapes.py'), ('full', 'mask-rcnn_r18_shapes_full.py'),
                       ('wise_mask-rcnn_refine', 'mask-rcnn_r18_shapes_pseudo_refine.py')):
        cfg, demo = Config.fromfile(paths[stem]), Config.fromfile(CONFIGS / 'demo' / base)
        assert 'data/shapes/' not in cfg.pretty_text, stem
        assert cfg.test_dataloader.dataset.metainfo.classes == ('a', 'b', 'c', 'd', 'e')
        assert cfg.model == demo.model and cfg.train_cfg == demo.train_cfg, stem
        assert cfg.get('custom_hooks') == demo.get('custom_hooks'), stem
        moved = cfg.pretty_text.replace('data/shapes-sweep9/', 'data/shapes/')
        assert moved.count('annotations/') == demo.pretty_text.count('annotations/'), stem


def _seed(peak: float, paper: float, improved: float, per_object: float) -> dict:
    return dict(cls_mAP=90.0, peak_precision=peak, instance_recall=80.0, learned=True,
                paper=dict(mAP50=paper * 80, oracle_mAP50=80.0, ratio=paper, per_object=1.4),
                improved=dict(mAP50=improved * 90, oracle_mAP50=90.0, ratio=improved,
                              per_object=per_object))


def test_sweep_targets_use_the_median_the_worst_and_paired_seed_differences() -> None:
    """Bug caught: targets judged on the mean variant (one good variant hides a failed
    one) or on unpaired spreads (issue 29: mean minus sd of the paired difference)."""
    good = variant_summary({'seed0': _seed(90, 0.70, 0.90, 1.0),
                            'seed1': _seed(90, 0.72, 0.92, 1.1)})
    assert good['improved_minus_paper']['mean'] == pytest.approx(0.20)
    worse = variant_summary({'seed0': _seed(60, 0.80, 0.70, 1.3),
                             'seed1': _seed(60, 0.82, 0.74, 1.3)})
    judged = {t['name']: t for t in targets({'a': good, 'b': good, 'c': worse})}
    assert judged['improved pseudo mAP50 / oracle, median variant']['ok']
    worst = judged['improved pseudo mAP50 / oracle, worst variant']
    assert worst['value'] == pytest.approx(0.72) and not worst['ok']
    paired = judged['improved - paper ratio, paired per seed: worst variant, mean + sd']
    assert not paired['ok']
    result = dict(seeds=[0, 1], targets=list(judged.values()),
                  variants={k: dict(v, variant=dict(classes=['x'], background='flat',
                                                    colour_tie='weak'))
                            for k, v in (('a', good), ('c', worse))})
    text = '\n'.join(sweep_lines(json.loads(json.dumps(result))))
    assert '| **worst** | | | | | | 0.71 | 0.72 | |' in text and '**no**' in text


def test_sweep_plan_runs_the_demo_recipes_and_each_selection_beside_its_oracle(
        tmp_path: Path) -> None:
    """Bug caught: a sweep variant reading another variant's data or the demo's configs
    unchanged (the demo's classes on other images), or an oracle with another selection
    than the one it bounds (the ratio would compare two selections, not peaks)."""
    out = run_tool('tools/pipeline.py', 'sweep', '--variants', '5', '--seeds', '1',
                   '--dry-run', '--work-dir', tmp_path).stdout
    assert 'make_shapes_dataset.py data/shapes-sweep5 --variant sweep5' in out
    lines = [line for line in out.splitlines() if 'gen_pseudo.py' in line]
    assert len(lines) == 4 and all(f'{tmp_path}/sweep5/configs/prm.py' in line
                                   and 'root=data/shapes-sweep5/proposals' in line
                                   for line in lines)
    by_out = {line.split('--out ')[1].split()[0].split('/')[-2]: line for line in lines}
    assert set(by_out) == {'pseudo', 'pseudo_improved', 'oracle_pseudo',
                           'oracle_pseudo_improved'}
    for stage in ('pseudo', 'pseudo_improved'):
        mine, oracle = by_out[stage], by_out[f'oracle_{stage}']
        assert '--oracle' in oracle and '--oracle' not in mine
        assert mine.split('proposals', 1)[1].split('--selector')[1:] == \
            oracle.split('proposals', 1)[1].split('--selector')[1:]
    cfg = Config.fromfile(tmp_path / 'sweep5/configs/prm.py')
    assert cfg.train_dataloader.dataset.metainfo.classes == draw_variant(5).classes


def test_every_sweep_stage_reads_only_sources_and_earlier_outputs(tmp_path: Path) -> None:
    """Bug caught: a sweep stage reading a file no sweep stage writes (a teacher check's
    verdict the sweep never makes): the stage could never be fresh and would rerun every
    time."""
    from projects.wise.pipeline.parallel import dependencies
    from projects.wise.pipeline.presets import sweep_preset
    from projects.wise.pipeline.sweep import sweep_stages
    stages = sweep_stages(sweep_preset('sweep5', str(tmp_path / 'sweep5')), 0)
    deps = dependencies([s.inputs for s in stages], [s.outputs for s in stages])
    for stage, dep in zip(stages, deps):
        written = {o for j in dep for o in stages[j].outputs}
        for path in stage.inputs:
            assert (ROOT / path).exists() or any(
                Path(path) == Path(o) or Path(o) in Path(path).parents or
                Path(path) in Path(o).parents for o in written), (stage.name, path)
