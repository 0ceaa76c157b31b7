"""The pipeline (projects/wise/pipeline, tools/pipeline.py): which stages run, and the
table it writes."""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from projects.wise import pipeline
from projects.wise.pipeline.parallel import dependencies, run_in_parallel

from conftest import ROOT, run_tool


def test_a_stage_is_fresh_only_when_its_outputs_are_newer_than_its_inputs(tmp_path: Path):
    src, code, out = tmp_path / 'in.json', tmp_path / 'code', tmp_path / 'out.json'
    code.mkdir()
    (code / 'a.py').write_text('')
    src.write_text('{}')
    stage = pipeline.Stage('s', [], inputs=[str(src), str(code)], outputs=[str(out)])
    assert not stage.fresh()  # no output yet
    time.sleep(0.01)
    out.write_text('{}')
    assert stage.fresh()
    future = time.time() + 5
    os.utime(code / 'a.py', (future, future))  # code changed after the output
    assert not stage.fresh()
    os.utime(out, (future + 1, future + 1))
    assert stage.fresh()
    missing = pipeline.Stage('s', [], inputs=[str(tmp_path / 'nope')], outputs=[str(out)])
    assert not missing.fresh()  # an input that does not exist cannot be older


def test_a_stage_whose_commands_changed_is_not_fresh(tmp_path: Path) -> None:
    """Bug caught: a stage skipped as fresh after its options changed (--soft-negatives,
    --prm-cfg-options): its files are newer than its inputs, but it ran other commands;
    a stage rerun because the interpreter's path differs; or a truncated record read
    as a traceback instead of an error naming the file."""
    out = tmp_path / 'out.txt'

    def stage(text: str) -> pipeline.Stage:
        write = f'open({str(out)!r}, "w").write({text!r})'
        return pipeline.Stage('s', [[[sys.executable, '-c', write]]], outputs=[str(out)],
                              work=str(tmp_path))

    def run(s: pipeline.Stage) -> bool:
        return pipeline.run_stage(s)

    assert run(stage('a')) and out.read_text() == 'a'
    assert not run(stage('a'))  # same commands, outputs newer than the (no) inputs
    assert run(stage('b')) and out.read_text() == 'b'
    recorded = json.loads((tmp_path / pipeline.RECORDS).read_text())['s']
    assert recorded['commands'][0].startswith('python -c ')  # the interpreter by name
    (tmp_path / pipeline.RECORDS).write_text('{"s": ["py')  # truncated by a crash
    with pytest.raises(SystemExit, match=f'{tmp_path / pipeline.RECORDS}: not valid JSON'):
        run(stage('b'))


def test_a_stage_is_reused_only_with_a_record_of_its_configs_and_source(tmp_path: Path):
    """Bug caught: outputs reused whatever made them: with no record at all (a bench
    reading trainings of an earlier commit), after an edit to a config's base (the
    stage's own file unchanged, so its time said fresh), or after the package's code
    changed; while a comment in a base retrains nothing."""
    from projects.wise.pipeline.provenance import stale_because
    out, base, cfg = tmp_path / 'out.txt', tmp_path / 'base.py', tmp_path / 'cfg.py'
    base.write_text('lr = 0.1\n')
    cfg.write_text(f'_base_ = {str(base)!r}\nepochs = 2\n')
    write = f'open({str(out)!r}, "w").write("x")'
    stage = pipeline.Stage('s', [[[sys.executable, '-c', write]]], inputs=[str(cfg)],
                           outputs=[str(out)], work=str(tmp_path))
    time.sleep(0.01)
    out.write_text('made by hand')
    assert pipeline.run_stage(stage)  # no record: made again
    assert not pipeline.run_stage(stage)
    base.write_text('# the learning rate\nlr = 0.1\n')
    assert not pipeline.run_stage(stage)  # the resolved config is the same
    base.write_text('lr = 0.2\n')
    assert pipeline.run_stage(stage)
    record = json.loads((tmp_path / pipeline.RECORDS).read_text())['s']
    assert {'commands', 'configs', 'source', 'commit', 'date'} <= set(record)
    assert stale_because(record, {**record, 'source': 'other'}) == \
        'the package or tools source changed since it ran'


def test_soft_negatives_train_the_improved_wise_stages_of_mask_rcnn_only(tmp_path: Path):
    """Bug caught: soft negatives in the paper's WISE row (it must stay the paper's
    recipe), on a detector without sampled RoIs (SOLOv2 has no such keys), left on by
    --no-soft-negatives, on by default where they were never measured (VOC), without
    the detection code as an input (an edit there would not retrain), or a table that
    does not say its improved rows have them."""
    options = pipeline.DETECTORS['mask-rcnn'].soft_negatives
    assert options and not pipeline.DETECTORS['solov2'].soft_negatives

    def train(preset: str, soft: bool | None = None) -> dict[str, tuple[str, list]]:
        p = pipeline.presets()[preset]
        if soft is not None:
            p.soft_negatives = soft
        return {s.name: (' '.join(map(str, s.steps[0][0])), s.inputs)
                for s in pipeline.build_stages(p, 1, 0, detectors=('mask-rcnn', 'solov2'))
                if s.name.startswith('wise')}

    for preset in ('demo', 'demo-hard'):
        stages = train(preset)
        cmd, inputs = stages['wise_improved']
        assert all(o in cmd.split() for o in options)
        assert 'projects/wise/detection' in inputs
        for other in ('wise', 'wise_solov2'):
            assert not any(o in stages[other][0] for o in options), other
        assert not any(o in train(preset, False)['wise_improved'][0] for o in options)
    assert not any(o in train('voc')['wise_improved'][0] for o in options)
    assert any(o in train('voc', True)['wise_improved'][0] for o in options)

    f = tmp_path / 'wise_improved/metrics.metrics.json'
    f.parent.mkdir()
    f.write_text(json.dumps({'metrics': {'segm_mAP50': 60.0}}))
    pipeline.write_table(tmp_path, improved=pipeline.presets()['demo-hard'].improved_note)
    assert 'with soft negatives' in (tmp_path / 'results.md').read_text()
    assert 'soft negatives' not in pipeline.presets()['voc'].improved_note


def test_from_reruns_a_stage_and_all_after_it_only() -> None:
    """--from wise: WISE and what follows, and the check guarding WISE (a --from that
    skipped it would train on a PRM that has not learned)."""
    out = run_tool('tools/pipeline.py', 'demo', '--dry-run', '--from', 'wise').stdout
    ran = [line.split()[1] for line in out.splitlines() if line.startswith('[pipeline] ')
           and not line.split()[1].endswith(':') and line.split()[1] != 'all']
    assert ran == ['pseudo_check', 'wise', 'wise_improved', 'table']
    assert 'mask-rcnn_r18_shapes_pseudo_refine.py' in out  # WISE + Refine is tested
    proc = run_tool('tools/pipeline.py', 'demo', '--dry-run', '--from', 'nope', check=False)
    assert proc.returncode != 0 and "unknown stage 'nope'" in proc.stderr


def test_table_has_the_papers_rows_and_columns(tmp_path: Path) -> None:
    def metrics(path: Path, values, key='metrics') -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        names = ('segm_mAP25', 'segm_mAP50', 'segm_mAP75', 'segm_ABO')
        path.write_text(json.dumps({key: dict(zip(names, values))}))

    metrics(tmp_path / 'full/metrics.metrics.json', (70, 60, 40, 65))
    metrics(tmp_path / 'prm_baseline/val_prm.json.report.json', (40, 30, 10, 35), 'quality')
    metrics(tmp_path / 'wise/metrics.metrics.json', (60, 50, 30, 55))
    metrics(tmp_path / 'wise/refine.metrics.json', (62, 52, 33, 58))
    pipeline.write_table(tmp_path)
    md = (tmp_path / 'results.md').read_text()
    assert md.splitlines()[0].startswith('| method | supervision | mAP25 | mAP50 | mAP75 | ABO |')
    assert '| WISE + Refine | image labels | 62.0 | 52.0 | 33.0 | 58.0 |' in md
    assert 'WISE / fully supervised mAP50: 0.83' in md
    res = json.loads((tmp_path / 'results.json').read_text())
    assert list(res['rows']) == ['Mask R-CNN (full)', 'PRM', 'WISE', 'WISE + Refine']
    assert (tmp_path / 'results.png').read_bytes()[:4] == b'\x89PNG'

    # the improved selection's rows join once their stage has run
    metrics(tmp_path / 'wise_improved/metrics.metrics.json', (61, 55, 35, 57))
    metrics(tmp_path / 'wise_improved/refine.metrics.json', (63, 56, 37, 60))
    pipeline.write_table(tmp_path)
    md = (tmp_path / 'results.md').read_text()
    assert '| WISE (improved) + Refine | image labels | 63.0 | 56.0 | 37.0 | 60.0 | - |' in md


def test_improved_selection_runs_beside_the_papers() -> None:
    """Bug caught: the improved pseudo masks overwriting the paper's (both rows would
    then train on one json), or a selection other than the paper's under the WISE row;
    and the hard preset reading the easy demo's data."""
    out = run_tool('tools/pipeline.py', 'demo-hard', '--dry-run', '--seeds', '0',
                   '--from', 'data').stdout
    assert 'make_shapes_dataset.py data/shapes-hard --variant hard' in out
    paper = next(line for line in out.splitlines() if 'seed0/pseudo/train_pseudo.json' in line
                 and 'gen_pseudo.py' in line)
    assert '--selector' not in paper  # gen_pseudo's default: objectness_sampling
    improved = next(line for line in out.splitlines()
                    if 'seed0/pseudo_improved/train_pseudo.json' in line and 'gen_pseudo' in line)
    assert '--selector ' + ' '.join(pipeline.IMPROVED) in improved
    assert 'type=objectness_sampling' not in pipeline.IMPROVED
    assert 'prm_r18_shapes-hard.py' in paper
    assert f'ann_file={ROOT}/work_dirs/demo-hard/seed0/pseudo_improved/train_pseudo.json' in out


def test_detector_adds_a_wise_stage_on_the_improved_pseudo_masks(tmp_path: Path) -> None:
    """--detector solov2: its own stage with its own configs (train, test, test with the
    refine hook), trained on the improved pseudo masks; without mask-rcnn the Mask R-CNN
    WISE stages go. Bug caught: a second detector written over Mask R-CNN's work dir,
    trained on the paper's pseudo masks, or tested without refinement."""
    out = run_tool('tools/pipeline.py', 'demo', '--dry-run', '--from', 'wise',
                   '--detector', 'mask-rcnn', 'solov2').stdout
    ran = [line.split()[1] for line in out.splitlines() if line.startswith('[pipeline] ')
           and not line.split()[1].endswith(':') and line.split()[1] != 'all']
    assert ran == ['pseudo_check', 'wise', 'wise_improved', 'wise_solov2', 'table']
    solo = out[out.index('[pipeline] wise_solov2'):out.index('[pipeline] table')]
    assert ('tools/train.py configs/wise/demo/solov2_r18_shapes_pseudo.py --work-dir '
            'work_dirs/demo/wise_solov2') in solo
    assert f'ann_file={ROOT}/work_dirs/demo/pseudo_improved/train_pseudo.json' in solo
    assert 'test.py configs/wise/demo/solov2_r18_shapes_pseudo_refine.py' in solo
    only = run_tool('tools/pipeline.py', 'voc', '--dry-run', '--from', 'prm',
                    '--detector', 'solov2').stdout
    assert [line.split()[1] for line in only.splitlines() if line.startswith('[pipeline] ')
            and not line.split()[1].endswith(':') and line.split()[1] != 'all'] == [
        'prm', 'prm_check', 'prm_density', 'prm_density_baseline', 'pseudo_improved',
        'pseudo_check', 'prm_baseline', 'full', 'wise_solov2', 'table']
    assert 'configs/wise/solov2_r50_voc_pseudo.py' in only

    names = ('segm_mAP25', 'segm_mAP50', 'segm_mAP75', 'segm_ABO')
    for f, values in (('wise_solov2/metrics.metrics.json', (70, 65, 45, 60)),
                      ('wise_solov2/refine.metrics.json', (71, 68, 60, 66))):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text(json.dumps({'metrics': dict(zip(names, values))}))
    pipeline.write_table(tmp_path)
    md = (tmp_path / 'results.md').read_text()
    assert '| WISE (improved, SOLOv2) + Refine | image labels | 71.0 | 68.0 | 60.0 | 66.0 |' in md


def _ran(out: str) -> list[str]:
    return [line.split()[1] for line in out.splitlines() if line.startswith('[pipeline] ')
            and not line.split()[1].endswith(':') and line.split()[1] != 'all']


def test_counts_train_prm_density_and_wise_with_counts(tmp_path: Path) -> None:
    """demo-crowded: PRM + Density trained from counts and retrieved with its density term
    on val; WISE + counts on pseudo masks of the PRM's peaks as many as counted. Bug
    caught: the PRM + Density row retrieved without the density term or from the PRM's
    checkpoint, WISE + counts trained on the improved json (the rows would be one), or
    --counts not adding the stages to another preset."""
    out = run_tool('tools/pipeline.py', 'demo-crowded', '--dry-run', '--from', 'prm').stdout
    assert _ran(out) == [
        'prm', 'prm_check', 'prm_density', 'prm_density_baseline', 'pseudo_improved',
        'pseudo_counts', 'pseudo_check', 'prm_baseline', 'full', 'wise_improved',
        'wise_counts', 'table']
    lines = out.splitlines()
    density = next(x for x in lines if 'prm_density_baseline/test_prm.json' in x)
    assert 'prm-density_r18_shapes-crowded.py $(cat work_dirs/demo-crowded/prm_density/' \
        in density
    assert '--selector ' + ' '.join(pipeline.DENSITY_RETRIEVAL) in density
    counted = next(x for x in lines if 'pseudo_counts/train_pseudo.json' in x
                   and 'gen_pseudo' in x)
    assert 'prm_r18_shapes-crowded.py $(cat work_dirs/demo-crowded/prm/last_checkpoint)' \
        in counted and '--counts given' in counted
    assert f'ann_file={ROOT}/work_dirs/demo-crowded/pseudo_counts/train_pseudo.json' in out
    assert 'pseudo_counts' in _ran(run_tool('tools/pipeline.py', 'demo', '--dry-run',
                                            '--counts').stdout)
    assert 'pseudo_counts' not in _ran(run_tool('tools/pipeline.py', 'demo', '--dry-run').stdout)

    names = ('segm_mAP25', 'segm_mAP50', 'segm_mAP75', 'segm_ABO')
    for f, key in (('prm_density_baseline/test_prm.json.report.json', 'quality'),
                   ('wise_counts/metrics.metrics.json', 'metrics')):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text(json.dumps({key: dict(zip(names, (50, 40, 20, 45)))}))
    pipeline.write_table(tmp_path, split='test')
    md = (tmp_path / 'results.md').read_text()
    assert '| PRM + Density | labels + counts | 50.0 | 40.0 | 20.0 | 45.0 | 48.5 / 30.2 / ' \
        '14.4 / 44.3 |' in md
    assert '| WISE + counts | labels + counts |' in md


def test_seeds_run_each_trained_stage_per_seed_and_table_the_mean(tmp_path: Path) -> None:
    """--seeds: every trained stage once per seed, seeded and in its own work dir, the
    shared data stages once; the pseudo masks of a seed train that seed's WISE (a
    shared pseudo json would let seeds overwrite each other). The table is the mean
    and sample sd of the seeds' tables."""
    out = run_tool('tools/pipeline.py', 'demo', '--dry-run', '--seeds', '3', '4',
                   '--work-dir', 'work_dirs/x', '--from', 'data').stdout
    heads = [line for line in out.splitlines() if line.startswith('[pipeline] ')
             and ': done in' not in line and not line.startswith('[pipeline] all')]
    assert [h.split(' ', 1)[1] for h in heads][:14] == [
        'data', 'proposals', 'prm (seed 3)', 'prm_check (seed 3)', 'prm_density (seed 3)',
        'prm_density_baseline (seed 3)', 'pseudo (seed 3)', 'pseudo_improved (seed 3)',
        'pseudo_check (seed 3)', 'prm_baseline (seed 3)', 'full (seed 3)', 'wise (seed 3)',
        'wise_improved (seed 3)', 'table (seed 3)']
    assert sum('data' in h.split() for h in heads) == 1
    assert '--work-dir work_dirs/x/seed4/prm --cfg-options randomness.seed=4' in out
    assert ('--seed 4 --out work_dirs/x/seed4/pseudo/train_pseudo.json' in out)
    assert (f'train_dataloader.dataset.ann_file={ROOT}/work_dirs/x/seed4/pseudo/'
            'train_pseudo.json') in out

    names = ('segm_mAP25', 'segm_mAP50', 'segm_mAP75', 'segm_ABO')
    for seed, base in ((3, 50.0), (4, 54.0)):
        for path, key in (('full/metrics.metrics.json', 'metrics'),
                          ('prm_baseline/val_prm.json.report.json', 'quality'),
                          ('wise/metrics.metrics.json', 'metrics'),
                          ('wise/refine.metrics.json', 'metrics')):
            f = tmp_path / f'seed{seed}' / path
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps({key: dict(zip(names, (base, base - 10, base - 20, 1.0)))}))
    pipeline.write_table(tmp_path, [3, 4])
    md = (tmp_path / 'results.md').read_text()
    assert '| WISE | image labels | 52.0 ± 2.8 | 42.0 ± 2.8 | 32.0 ± 2.8 | 1.0 ± 0.0 |' in md
    assert 'Mean ± sd over seeds 3, 4.' in md
    res = json.loads((tmp_path / 'results.json').read_text())
    assert res['seeds'] == [3, 4] and res['runs'][1]['PRM']['mAP50'] == 44.0


def test_dist_commands_run_the_pipelines_interpreter_off_path(monkeypatch) -> None:
    """tools/dist_run.sh runs ${PYTHON:-python}: without an activated venv, torchrun
    would start whatever `python` PATH finds (or none) and fail. The pipeline passes its
    own interpreter; ``run_step`` raises SystemExit when a command fails."""
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ['PATH'].split(os.pathsep) if p != venv_bin)
    monkeypatch.setenv('PATH', path)
    monkeypatch.delenv('PYTHON', raising=False)
    monkeypatch.delenv('VIRTUAL_ENV', raising=False)
    monkeypatch.setenv('PORT', '29641')
    pipeline.run_step([['bash', 'tools/dist_run.sh', 'train.py', '1', '--help']])


def test_stages_side_by_side_wait_for_what_they_read() -> None:
    """Bug caught: a stage started before the stage writing its input (the PRM reading
    train_labels.json that the data stage had not declared, WISE before its pseudo
    masks, the table before a row), or independent trainings kept one after another."""
    run = pipeline.build_stages(pipeline.presets()['demo'], 1)
    names = [s.name for s in run]
    deps = dependencies([s.inputs for s in run], [s.outputs for s in run])
    after = {names[i]: {names[j] for j in d} for i, d in enumerate(deps)}
    assert after['proposals'] == after['prm'] == after['full'] == {'data'}
    assert after['prm_density'] == {'data'}  # beside the PRM
    assert after['prm_check'] == {'prm'} and after['prm_baseline'] == {'proposals', 'prm'}
    assert after['pseudo'] == after['pseudo_improved'] == {'proposals', 'prm', 'prm_check'}
    assert after['pseudo_check'] == {'prm', 'pseudo', 'pseudo_improved'}
    assert after['wise'] == {'pseudo', 'pseudo_check'}
    assert after['wise_improved'] == {'pseudo_improved', 'pseudo_check'}
    assert after['table'] == {'prm_baseline', 'prm_density_baseline', 'full', 'wise',
                              'wise_improved'}


def test_run_in_parallel_keeps_order_limit_and_stops_after_a_failure() -> None:
    """Bug caught: more tasks at once than ``jobs``, a task before its dependency, or
    new tasks started (and the error lost) after one failed."""
    lock, events, active = threading.Lock(), [], [0, 0]

    def task(key: str) -> None:
        with lock:
            active[0] += 1
            active[1] = max(active)
            events.append(f'+{key}')
        time.sleep(0.3 if key == 'slow' else 0.05)
        with lock:
            active[0] -= 1
            events.append(f'-{key}')
        if key == 'bad':
            raise SystemExit('bad failed')

    keys = ['a', 'b', 'c', 'd']
    run_in_parallel(keys, [set(), set(), {0}, {1, 2}], task, jobs=2)
    assert active[1] == 2
    assert events.index('-a') < events.index('+c') and events.index('-c') < events.index('+d')
    events.clear()
    with pytest.raises(SystemExit, match='bad failed'):
        run_in_parallel(['bad', 'slow', 'later'], [set(), set(), set()], task, jobs=2)
    assert '+later' not in events and '-slow' in events  # the running one finished


def test_built_in_tables_score_a_held_out_test_split_and_voc_its_val() -> None:
    """Bug caught: a built-in table scored on val, the split its options were chosen on
    (so "met" partly meant "selected"), or on a test split that the configs, the
    retrieval rows and the proposals do not all read; VOC keeps the paper's val."""
    from mmengine.config import Config
    for name, split in (('demo', 'test'), ('demo-hard', 'test'), ('demo-crowded', 'test'),
                        ('voc', 'val'), ('voc_aug', 'val')):
        p = pipeline.presets()[name]
        stages = {s.name: s for s in pipeline.build_stages(p)}
        assert f'--split {split} ' in stages['prm_baseline'].command_lines()[0], name
        assert f'{p.work}/prm_baseline/{split}_prm.json.report.json' in stages['table'].inputs
        proposals = ' '.join(stages['proposals'].command_lines())
        assert f'annotations/{split}_labels.json' in proposals
        assert f'annotations/{split}_instances.json --out-dir' in proposals  # its recall
        for cfg in (p.prm_cfg, p.full_cfg, p.wise_cfg.format('mask-rcnn', refine='')):
            c = Config.fromfile(ROOT / cfg)
            assert c.test_dataloader.dataset.ann_file.startswith(f'annotations/{split}_'), cfg
            assert c.val_dataloader.dataset.ann_file.startswith('annotations/val_'), cfg
    assert '--splits train val test' in ' '.join(
        pipeline.build_stages(pipeline.presets()['demo'])[0].command_lines())


def test_only_runs_the_checks_guarding_its_stages() -> None:
    """Bug caught: --only STAGES leaving out the teacher checks whose verdicts they read
    (their input would never exist, so they would rerun every time, or the check would
    be skipped)."""
    out = run_tool('tools/pipeline.py', 'demo', '--dry-run', '--only', 'prm',
                   'pseudo', 'wise').stdout
    assert _ran(out) == ['prm', 'prm_check', 'pseudo', 'pseudo_check', 'wise']
    out = run_tool('tools/pipeline.py', 'demo', '--dry-run', '--only',
                   'prm_baseline').stdout
    assert _ran(out) == ['prm_baseline']


def test_several_gpus_run_gen_pseudo_and_the_prm_test_under_torchrun() -> None:
    """--gpus N: every gen_pseudo (pseudo masks, the PRM and PRM + Density baselines)
    and the PRM's test run under torchrun on N processes, as the trainings; the peaks
    are drawn by one process. Bug caught: they ran as one process whatever --gpus was
    (N - 1 GPUs idle, dist_gen_pseudo.sh never used); or --gpus 1's command lines
    changed (stage records hash them: every finished stage would rerun)."""
    def lines(gpus: str) -> dict[str, list[str]]:
        out = run_tool('tools/pipeline.py', 'voc', '--gpus', gpus, '--dry-run').stdout
        stages: dict[str, list[str]] = {}
        for line in out.splitlines():
            if line.startswith('[pipeline] ') and not line.endswith(' s'):
                name = stages.setdefault(line.split()[1], [])
            elif line.startswith('  $ '):
                name.append(line[4:].replace(sys.executable, 'python'))
        return stages

    many, one = lines('8'), lines('1')
    for name in ('pseudo', 'pseudo_improved', 'prm_baseline', 'prm_density_baseline'):
        model = 'prm_density' if name.startswith('prm_density') else 'prm'
        head = f'$(cat work_dirs/voc/{model}/last_checkpoint)'
        assert len(many[name]) == 1 and many[name][0].startswith('bash -c bash tools/'
                                                                 'dist_gen_pseudo.sh '), name
        assert f'{head} 8 --' in many[name][0]
        assert one[name] == [many[name][0].replace('bash tools/dist_gen_pseudo.sh',
                                                   'python tools/gen_pseudo.py')
                             .replace(f'{head} 8 ', f'{head} ')], name
    for name, cfg in (('prm', 'prm_r50_voc.py'), ('prm_density', 'prm-density_r50_voc.py')):
        ckpt = f'$(cat work_dirs/voc/{name}/last_checkpoint)'
        assert many[name][1] == (f'bash -c bash tools/dist_test.sh configs/wise/{cfg} {ckpt} '
                                 f'8 --work-dir work_dirs/voc/{name}/test')
        assert one[name][1] == (f'bash -c python tools/test.py configs/wise/{cfg} {ckpt} '
                                f'--work-dir work_dirs/voc/{name}/test')
        assert many[name][2] == one[name][2]  # vis_peaks: 8 images, one process
        assert many[name][2].startswith('bash -c python tools/vis_peaks.py')


def test_proposals_use_every_core_whatever_gpus(tmp_path: Path) -> None:
    """The presets of 1000 proposals an image (VOC, custom) run one single-thread shard
    a split per core this process may use (capped), however many GPUs train. Bug
    caught: the shards followed --gpus (--gpus 1 on a 64-core node kept 2 cores busy,
    --gpus 8 on a 2-core job started 8 a split), or the built-in demos' proposal
    commands changed (their stage records hash them)."""
    (tmp_path / 'img').mkdir()
    (tmp_path / 'labels.csv').write_text('image,labels\na.jpg,cat\nb.jpg,dog\n')
    custom = ('custom', '--data', tmp_path / 'img', '--labels', tmp_path / 'labels.csv',
              '--work-dir', tmp_path / 'work')

    def shards(*args, wrapper: tuple[str, ...] = ()) -> set[str]:
        out = run_tool('tools/pipeline.py', *args, '--dry-run', '--from', 'proposals',
                       '--only', 'proposals', wrapper=wrapper).stdout  # fresh or not
        return {x.split('--shard ')[1].split()[0] for x in out.splitlines() if '--shard' in x}

    voc = shards('voc', '--gpus', '1')
    assert shards('voc', '--gpus', '8') == voc
    from projects.wise.pipeline.presets import MAX_PROPOSAL_SHARDS
    cores = min(len(os.sched_getaffinity(0)), MAX_PROPOSAL_SHARDS)
    every = {f'{i}/{cores}' for i in range(cores)}
    assert voc == every
    assert shards(*custom, '--gpus', '8') == every
    assert shards('voc', '--gpus', '8', wrapper=('taskset', '-c', '0')) == {'0/1'}  # 1 core
    assert shards('demo', '--gpus', '8') == {'0/2', '1/2'}


SIDE_BY_SIDE = '''
import os, pathlib, sys, time
seen = pathlib.Path(sys.argv[1])
(seen / sys.argv[2]).write_text(os.environ.get("PORT", "") + " "
                                + os.environ.get("CUDA_VISIBLE_DEVICES", "-"))
deadline = time.time() + 60
while len(list(seen.iterdir())) < 2 and time.time() < deadline:  # both running at once
    time.sleep(0.05)
'''


@pytest.mark.skipif(torch.cuda.is_available(), reason='GPUs visible: the split is checked '
                    'in test_gpus_are_checked_and_split_between_stages_side_by_side')
def test_stages_side_by_side_on_several_gpus_get_their_own_port(tmp_path: Path) -> None:
    """Two stages run side by side with --gpus 2 --jobs 2, each recording the
    environment its commands get. Bug caught: every torchrun started on port 29500
    (dist_run.sh's default: the second cannot bind it, or joins the first's
    rendezvous); or --gpus N > 1 kept the demos' default of 3 side by side."""
    seen = tmp_path / 'seen'
    seen.mkdir()
    stages = [pipeline.Stage(name, [[[sys.executable, '-c', SIDE_BY_SIDE, str(seen), name]]],
                             work=str(tmp_path)) for name in ('a', 'b')]
    preset = pipeline.presets()['demo']
    preset.work = str(tmp_path)
    pipeline.run_pipeline(preset, [stages], pipeline.RunOptions(jobs=2, gpus=2))
    ports = sorted(int((seen / n).read_text().split()[0]) for n in ('a', 'b'))
    base = int(os.environ.get('PORT', 29500))
    assert ports == [base, base + 1]
    out = run_tool('tools/pipeline.py', 'demo', '--gpus', '2', '--dry-run').stdout
    assert 'side by side' not in out  # one stage at a time unless --jobs says otherwise
    out = run_tool('tools/pipeline.py', 'demo', '--gpus', '2', '--jobs', '3', '--dry-run').stdout
    assert f'PORT={base}; PORT={base + 1}; PORT={base + 2}' in out


def test_gpus_are_checked_and_split_between_stages_side_by_side() -> None:
    """Where torch sees GPUs, --gpus N beyond them, or --jobs J x --gpus N beyond them,
    is refused in one line, and J stages side by side get disjoint GPU sets; where it
    sees none, torchrun runs CPU processes (gloo), any count. Bug caught: --gpus never
    checked (torchrun failed later, in each process, or a stage waited on GPUs it
    cannot have), or stages side by side on the same GPUs."""
    from projects.wise.pipeline.devices import Slots, gpu_problem, slot_env
    assert gpu_problem(16, 1, 8) == '--gpus 16, but torch sees 8 GPU(s) on this machine'
    assert gpu_problem(8, 1, 8) is None and gpu_problem(4, 2, 8) is None
    assert gpu_problem(1, 3, 1) is None  # one-process stages take turns on the GPU
    assert '--jobs 2 x --gpus 8 needs 16 GPUs' in gpu_problem(8, 2, 8)
    assert gpu_problem(16, 2, 0) is None  # CPU: gloo processes
    devices = [str(i) for i in range(8)]
    assert slot_env(1, 4, devices, 29500) == {'PORT': '29501',
                                              'CUDA_VISIBLE_DEVICES': '4,5,6,7'}
    envs = Slots(4, 2, ['3', '5', '6', '7', '0', '1', '2', '4']).envs
    assert [e['CUDA_VISIBLE_DEVICES'] for e in envs] == ['3,5,6,7', '0,1,2,4']
    assert Slots(4, 1, devices).envs == [] and Slots(1, 3, devices).envs == []
    proc = run_tool('tools/pipeline.py', 'voc', '--gpus', '16', '--dry-run', check=False)
    if torch.cuda.device_count():
        assert proc.returncode != 0 and 'torch sees' in proc.stderr
    else:  # a dry run on a CPU machine prints the commands for another
        assert proc.returncode == 0 and 'torch sees' not in proc.stdout + proc.stderr


def test_voc_on_8_gpus_uses_them_all_and_every_core() -> None:
    """The issue's target: ``pipeline.py voc --gpus 8 --dry-run`` shows gen_pseudo and
    the PRM's test under torchrun, the proposals on every core (one shard each), and
    stages side by side (--jobs 2) on ports of their own. Bug caught: any of them one
    process (or 8 shards on 2 cores), or side by side torchruns all on port 29500."""
    out = run_tool('tools/pipeline.py', 'voc', '--gpus', '8', '--dry-run').stdout
    lines = out.splitlines()
    gen = [x for x in lines if 'gen_pseudo' in x]
    assert len(gen) == 4 and all('bash tools/dist_gen_pseudo.sh ' in x for x in gen)
    assert not any('tools/test.py' in x for x in lines)  # the PRM's too: dist_test.sh
    assert sum('dist_test.sh configs/wise/prm' in x for x in lines) == 2  # PRM, + Density
    cores = min(len(os.sched_getaffinity(0)), 64)
    train = [x for x in lines if 'gen_proposals.py' in x and 'train_labels' in x]
    assert sorted(x.split('--shard ')[1].split()[0] for x in train) == \
        sorted(f'{i}/{cores}' for i in range(cores))
    proc = run_tool('tools/pipeline.py', 'voc', '--gpus', '8', '--jobs', '2', '--dry-run',
                    check=False)
    gpus = torch.cuda.device_count()
    if 0 < gpus < 16:  # checked where GPUs are visible
        assert proc.returncode != 0 and '--jobs 2 x --gpus 8 needs 16 GPUs' in proc.stderr
    else:
        base = int(os.environ.get('PORT', 29500))
        assert proc.returncode == 0 and f'own port{" and GPUs" if gpus else ""}: ' \
            f'PORT={base}' in proc.stdout and f'; PORT={base + 1}' in proc.stdout
