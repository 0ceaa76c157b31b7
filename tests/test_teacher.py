"""A PRM that has not learned its classes is said, not trained on (issue 34, item 4): the
pipeline's checks read the PRM's real validation figures and gen_pseudo's real reports."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from projects.wise import pipeline
from projects.wise.pipeline import teacher

from conftest import run_tool


@pytest.fixture(scope='module')
def untrained(tiny_prm_cfg: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A work dir with a PRM of one epoch on the tiny data (3 iterations: it has learned
    nothing), validated at its end as the pipeline's PRM is."""
    work = tmp_path_factory.mktemp('untrained')
    run_tool('tools/train.py', tiny_prm_cfg, '--work-dir', work / 'prm', '--cfg-options',
             'train_cfg.max_epochs=1', 'train_cfg.val_interval=1')
    return work


def _check_stage(work: Path, name: str, ignore: bool) -> pipeline.Stage:
    preset = pipeline.presets()['demo']
    preset.work = str(work)  # absolute: the stage reads and writes there
    stages = pipeline.build_stages(preset, ignore_teacher=ignore)
    return next(s for s in stages if s.name == name)


def test_an_untrained_prm_stops_the_chain_before_its_pseudo_masks(
        untrained: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bug caught: a PRM below the bar going on silently to gen_pseudo and three
    detectors (a sweep variant's demo PRM: 54 mAP, every peak weak), or a stop that does
    not say which figure, which threshold, and what to try. The tiny PRM's val mAP over
    4 images is noise (55-90 seen), so the bar is put just above what it scored."""
    val = teacher.val_figures(untrained / 'prm')
    assert val is not None
    bar = int(val['prm/mAP']) + 1
    monkeypatch.setattr(teacher, 'MIN_CLS_MAP', bar)
    stage = _check_stage(untrained, 'prm_check', ignore=False)
    with pytest.raises(SystemExit, match=rf"val classification mAP {val['prm/mAP']:.1f} < {bar}"
                       ) as stop:
        pipeline.run_stage(stage)
    assert 'pretrained backbone' in str(stop.value) and '--ignore-teacher' in str(stop.value)
    assert not (untrained / 'checks/prm_check.json').exists()  # checked again next time
    # the pseudo masks and every detector wait for the verdict
    stages = {s.name: s for s in pipeline.build_stages(pipeline.presets()['demo'])}
    assert 'work_dirs/demo/checks/prm_check.json' in stages['pseudo'].inputs
    assert 'work_dirs/demo/checks/pseudo_check.json' in stages['wise_improved'].inputs

    ignored = _check_stage(untrained, 'prm_check', ignore=True)
    assert pipeline.run_stage(ignored)
    verdict = json.loads((untrained / 'checks/prm_check.json').read_text())
    assert verdict['learned'] is False and verdict['failures']
    # a later run without --ignore-teacher checks again: the verdict file of the run that
    # went on does not let it through
    with pytest.raises(SystemExit, match='has not learned'):
        pipeline.run_stage(_check_stage(untrained, 'prm_check', ignore=False))


def test_weak_peaks_say_it_where_there_is_no_val_split(tiny_prm_cfg: Path, tiny_prm_ckpt: Path,
                                                      tmp_path: Path) -> None:
    """Bug caught: the own-data preset (no val split) with no check at all, or a weak-peak
    share that counts the wrong events: with a peak threshold no peak reaches, every
    kept peak is weak; with none, none is."""
    shares = {}
    for thr in ('-1e9', '1e9'):
        out = tmp_path / thr / 'train_pseudo.json'
        run_tool('tools/gen_pseudo.py', tiny_prm_cfg, tiny_prm_ckpt, '--out', out,
                 '--proposals', 'type=builtin', 'max_proposals=100', f'--peak-thr={thr}')
        verdict = teacher.judge(None, [Path(f'{out}.report.json')])
        shares[thr] = next(iter(verdict.figures.values()))
        assert verdict.learned == (thr == '-1e9'), verdict.failures
    assert shares == {'-1e9': 0.0, '1e9': 1.0}
