"""The whole WISE chain, one stage after another, as README lists it.

    python tools/pipeline.py demo                 # built-in data, 2 CPU cores
    python tools/pipeline.py demo-hard            # its hard variant (over-firing PRM)
    python tools/pipeline.py voc --gpus 8         # PASCAL VOC 2012 + SBD, paper configs
    python tools/pipeline.py demo --from wise     # rerun from a stage on
    python tools/pipeline.py voc --dry-run        # print the commands only
    python tools/pipeline.py demo --seeds 0 1 2   # each trained stage per seed; mean +- sd
    python tools/pipeline.py custom --data photos/ --labels labels.csv [--val val.json]
    python tools/pipeline.py demo --detector mask-rcnn solov2   # + WISE with SOLOv2
    python tools/pipeline.py demo-crowded         # 4-12 instances an image: + counts

Stages: data -> proposals -> prm -> prm_density -> prm_density_baseline -> pseudo ->
pseudo_improved -> prm_baseline -> full -> wise -> wise_improved -> table. A stage is
skipped when its outputs exist and are newer than its inputs (configs, code, earlier
stages' outputs) and it last ran the same commands, so a second run only re-tests what
changed. ``pseudo`` / ``wise`` use the paper's
selection (``objectness_sampling``), ``*_improved`` the one that survives an
over-firing PRM best (:data:`IMPROVED`). The table (rows: Mask R-CNN
full, PRM, WISE, WISE + Refine and the improved pair; columns: mAP25, mAP50,
mAP75, ABO) is printed and saved as markdown, json and a PNG. ``--detector`` adds a
``wise_<name>`` stage per other instance segmenter (``DETECTORS``), trained on the
improved pseudo masks, and its two rows. ``prm_density`` trains PRM + Density (ILC)
from the train split's counts, whose retrieval gives the ``PRM + Density`` row;
``--counts`` (on by default in ``demo-crowded``) adds ``pseudo_counts`` /
``wise_counts``: the improved selection with as many peaks of a class as it has
objects, and the ``WISE + counts`` rows (docs/counts.md). On the built-in demos the
WISE stages on improved pseudo masks train Mask R-CNN with soft negatives
(``--soft-negatives``, docs/over_firing.md).
With ``--seeds``, the trained stages (prm -> wise) run once per seed in
``<work>/seed<N>/`` (the data and proposals are shared) and the table gives the
mean and standard deviation over the seeds.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from projects.wise.datasets.image_labels import class_list, has_instances, label_classes
from projects.wise.proposals.precomputed import done_name
from projects.wise.utils.custom_configs import (DEFAULT_DETECTOR, DETECTORS, WISE_CONFIG,
                                                write_custom_configs)
from projects.wise.utils.io import DataError, atomic_write
from projects.wise.utils.scheduler import dependencies, run_in_parallel

ROOT = Path(__file__).resolve().parents[1]
_RECORD_LOCK = threading.Lock()

PAPER = {  # VOC 2012 val, from the WISE paper
    'Mask R-CNN (full)': (58.9, 51.4, 32.4, None),
    'PRM': (44.3, 26.8, 9.0, 37.6),
    'PRM + Density': (48.5, 30.2, 14.4, 44.3),  # image labels and counts; quoted by WISE
    'WISE': (48.5, 40.4, 22.2, 51.3),
    'WISE + Refine': (49.2, 41.7, 23.7, 55.2),
}

#: the selection that survives an over-firing PRM best of those measured on both demos
#: (docs/over_firing.md): the proposal of highest objectness (the authors' code) among
#: those within 2 px of the peak (about a response-map cell: the demos' maps are x4
#: sub-pixel at stride 16 or 8), then mask NMS among one class's instances
IMPROVED = ['type=best_objectness', 'cover_radius=2', 'class_nms_iou=0.5']
#: pseudo-mask stage -> its gen_pseudo selection arguments (none: the paper's, the default);
#: the WISE stage trained on each is named alike (``wise``, ``wise_improved``)
#: ``pseudo_counts``: the improved selection keeping as many peaks of a class as the
#: train split's counts say (WISE + counts, docs/counts.md)
SELECTIONS = {'pseudo': [], 'pseudo_improved': ['--selector', *IMPROVED],
              'pseudo_counts': ['--selector', *IMPROVED, '--counts', 'given']}
WISE_OF = {'pseudo': 'wise', 'pseudo_improved': 'wise_improved', 'pseudo_counts': 'wise_counts'}
#: PRM + Density's instance masks: PRM's retrieval with ILC's density term
DENSITY_RETRIEVAL = ['type=prm_retrieval', 'density_weight=0.2']


def wise_stage_name(selection: str, detector: str) -> str:
    """The WISE stage of a pseudo-mask stage and a detector: Mask R-CNN's per selection;
    another detector trains on the improved selection only, in wise_<name>."""
    return WISE_OF[selection] if detector == DEFAULT_DETECTOR else f'wise_{detector}'


@dataclass
class Stage:
    """Commands run in order; each item is one command or a list run in parallel."""

    name: str
    commands: list
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def fresh(self) -> bool:
        outs = [ROOT / o for o in self.outputs]
        if not outs or not all(o.exists() for o in outs):
            return False
        newest_in = max((_mtime(ROOT / i) for i in self.inputs), default=0.0)
        return min(o.stat().st_mtime for o in outs) >= newest_in


def _mtime(path: Path) -> float:
    if path.is_dir():
        return max((p.stat().st_mtime for p in path.rglob('*.py')), default=0.0)
    return path.stat().st_mtime if path.exists() else float('inf')


@dataclass
class Preset:
    """Where a preset's data, configs and outputs are."""

    data: str
    work: str
    convert_args: list[str] | None  # voc_to_coco.py's (None: make_data converts)
    prm_cfg: str
    full_cfg: str | None  # None: no masks to train a fully supervised bound on
    density_cfg: str | None  # PRM + Density (ILC), trained from counts; None: not run
    #: the WISE config of each detector: '{}' stands for its name, '{refine}' for
    #: '_refine' in the twin with the refine hook on
    wise_cfg: str
    train_split: str
    train_note: str  # which training images the table comes from
    make_data: list
    proposals_root: str
    proposal_shards: int
    proposal_args: list[str] = field(default_factory=list)
    #: the pseudo-mask stages to run (each trains its WISE stage; ``--counts`` adds
    #: pseudo_counts)
    selections: tuple[str, ...] = ('pseudo', 'pseudo_improved')
    val: bool = True  # a val split with image labels (the PRM validates on it)
    val_masks: bool = True  # ... and instance masks (the table scores on it)
    img_root: str | None = None  # the image folder, if not <data>/JPEGImages
    #: stages side by side by default (--jobs): the built-in demos' small one-thread
    #: trainings finish sooner three at a time on a 2-core CPU; GPU presets take turns
    jobs: int = 1
    #: the WISE stages on improved pseudo masks train with the detector's soft negatives
    #: (measured on the built-in demos, docs/over_firing.md; --soft-negatives overrides)
    soft_negatives: bool = False
    data_inputs: list[str] = field(default_factory=list)  # the user's label files

    @property
    def improved_note(self) -> str:
        """What the table's improved rows are."""
        return ('pseudo masks of the improved selection (' + ', '.join(IMPROVED) + ')'
                + ('; Mask R-CNN trained on them with soft negatives (RoIs far from every '
                   'pseudo instance weigh 0.3)' if self.soft_negatives else ''))


def _presets(gpus: int, data_root: str | None = None,
             sbd_root: str = 'data/benchmark_RELEASE/dataset') -> dict[str, Preset]:
    shapes = 'data/shapes'  # the demo configs' data_root
    voc = data_root or os.environ.get('VOC_ROOT', 'data/VOCdevkit/VOC2012')
    # 1000 proposals per image, as the paper's SharpMask; VOC 2012 and SBD are
    # downloaded by the user (docs/data.md)
    paper = dict(data=voc, make_data=[], proposals_root=f'{voc}/proposals',
                 proposal_shards=max(gpus, 1), proposal_args=['--max-proposals', '1000'])
    hard, crowded = 'data/shapes-hard', 'data/shapes-crowded'
    return {
        'demo': Preset(
            data=shapes, work='work_dirs/demo', convert_args=['--classes-file',
                                                              f'{shapes}/classes.txt'],
            prm_cfg='configs/wise/demo/prm_r18_shapes.py',
            full_cfg='configs/wise/demo/mask-rcnn_r18_shapes_full.py',
            density_cfg='configs/wise/demo/prm-density_r18_shapes.py',
            wise_cfg='configs/wise/demo/{}_r18_shapes_pseudo{refine}.py',
            train_split='train', train_note='the built-in train split (2,000 images)',
            make_data=[_py('tools/make_shapes_dataset.py', shapes, '--seed', '0')],
            proposals_root=f'{shapes}/proposals', proposal_shards=2, jobs=3,
            soft_negatives=True),
        'demo-hard': Preset(
            data=hard, work='work_dirs/demo-hard',
            convert_args=['--classes-file', f'{hard}/classes.txt'],
            prm_cfg='configs/wise/demo/prm_r18_shapes-hard.py',
            full_cfg='configs/wise/demo/mask-rcnn_r18_shapes-hard_full.py', density_cfg=None,
            wise_cfg='configs/wise/demo/{}_r18_shapes-hard_pseudo{refine}.py',
            train_split='train',
            train_note='the hard built-in train split (2,000 images)',
            make_data=[_py('tools/make_shapes_dataset.py', hard, '--variant', 'hard',
                           '--seed', '0')],
            proposals_root=f'{hard}/proposals', proposal_shards=2, jobs=3,
            soft_negatives=True),
        'demo-crowded': Preset(
            data=crowded, work='work_dirs/demo-crowded',
            convert_args=['--classes-file', f'{crowded}/classes.txt'],
            prm_cfg='configs/wise/demo/prm_r18_shapes-crowded.py',
            full_cfg='configs/wise/demo/mask-rcnn_r18_shapes-crowded_full.py',
            density_cfg='configs/wise/demo/prm-density_r18_shapes-crowded.py',
            wise_cfg='configs/wise/demo/{}_r18_shapes-crowded_pseudo{refine}.py',
            train_split='train',
            train_note='the crowded built-in train split (2,000 images)',
            make_data=[_py('tools/make_shapes_dataset.py', crowded, '--variant', 'crowded',
                           '--seed', '0')],
            proposals_root=f'{crowded}/proposals', proposal_shards=2, jobs=3,
            selections=('pseudo_improved', 'pseudo_counts')),
        'voc': Preset(
            **paper, work='work_dirs/voc', convert_args=[],
            prm_cfg='configs/wise/prm_r50_voc.py',
            full_cfg='configs/wise/mask-rcnn_r50_voc_full.py',
            density_cfg='configs/wise/prm-density_r50_voc.py',
            wise_cfg='configs/wise/{}_r50_voc_pseudo{refine}.py',
            train_split='train',
            train_note="VOC 2012 train (1,464 images), the split of the authors' code"),
        'voc_aug': Preset(
            **paper, work='work_dirs/voc_aug', convert_args=['--sbd-root', sbd_root],
            prm_cfg='configs/wise/prm_r50_voc-aug.py',
            full_cfg='configs/wise/mask-rcnn_r50_voc-aug_full.py',
            density_cfg='configs/wise/prm-density_r50_voc-aug.py',
            wise_cfg='configs/wise/{}_r50_voc-aug_pseudo{refine}.py',
            train_split='train_aug',
            train_note='SBD train_aug (10,582 images: more data than the paper used)'),
    }


def custom_preset(images: str, labels: str, val: str | None = None,
                  classes: str | None = None, work: str = 'work_dirs/custom',
                  gpus: int = 1, detectors: Sequence[str] = (DEFAULT_DETECTOR,)) -> Preset:
    """The preset of a user's own data: an image folder, a label file over it (csv or
    COCO json, tools/dataset_converters/labels_to_coco.py) and optionally a val label
    file (a COCO json with instance masks also scores). Its configs are derived from
    the data and written into ``<work>/configs/``."""
    names = class_list(classes) or label_classes(labels)
    val_masks = val is not None and has_instances(val)
    data = str(ROOT / work / 'data')
    images = str(Path(images).resolve())
    if not Path(images).is_dir():
        raise DataError(f'{images}: image folder not found')
    cfgs = write_custom_configs(ROOT / work / 'configs', names, data + '/', images,
                                val is not None, val_masks, detectors)
    ann, conv = f'{data}/annotations', 'tools/dataset_converters/labels_to_coco.py'
    common = ['--images', images, '--classes', ','.join(names)]
    make = [_py(conv, str(Path(labels).resolve()), *common, '--out', f'{ann}/train_labels.json')]
    if val is not None:
        make.append(_py(conv, str(Path(val).resolve()), *common, '--out', f'{ann}/val_labels.json',
                        *(['--instances-out', f'{ann}/val_instances.json'] if val_masks else [])))
    return Preset(
        data=data, work=work, convert_args=None, prm_cfg=str(cfgs['prm']), full_cfg=None,
        density_cfg=None,
        wise_cfg=str(cfgs['prm'].parent / WISE_CONFIG), train_split='train',
        train_note=f'{labels} ({len(names)} classes)', make_data=make,
        proposals_root=f'{data}/proposals', proposal_shards=max(gpus, 1),
        proposal_args=['--max-proposals', '1000'], selections=('pseudo_improved',),
        val=val is not None, val_masks=val_masks, img_root=images,
        data_inputs=[labels, *([val] if val else [])])


#: --smoke: every stage's code path with the preset's own configs in minutes: a
#: handful of iterations, no ImageNet weights (nothing is downloaded), no validation
#: during training (the test stages evaluate), no worker processes.
SMOKE_TRAIN = ['model.backbone.init_cfg=None', 'val_cfg=None', 'val_dataloader=None',
               'val_evaluator=None', 'train_dataloader.num_workers=0',
               'train_dataloader.persistent_workers=False']
SMOKE_PRM = ['train_cfg.max_epochs=1', 'train_dataloader.batch_size=2',
             'train_dataloader.dataset.indices=2']
SMOKE_DETECTOR = ['train_cfg.max_iters=1']
SMOKE_TEST = ['test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False']


def _py(script: str, *args: str) -> list[str]:
    return [sys.executable, script, *args]


def _train(cfg: str, work: str, gpus: int, options: list[str]) -> list[str]:
    tail = ['--work-dir', work, *(['--cfg-options', *options] if options else [])]
    if gpus > 1:  # the configs' one-process recipe, kept on N (utils/schedule.py)
        return ['bash', 'tools/dist_train.sh', cfg, str(gpus), '--scale-schedule', *tail]
    return _py('tools/train.py', cfg, *tail)


def _test(cfg: str, work: str, prefix: str, gpus: int, options: list[str] = ()) -> list[str]:
    tail = ['--work-dir', f'{work}/test',
            '--cfg-options', f'test_evaluator.outfile_prefix={prefix}', *options]
    ckpt = f'$(cat {work}/last_checkpoint)'
    if gpus > 1:
        return ['bash', '-c', ' '.join(['bash', 'tools/dist_test.sh', cfg, ckpt, str(gpus), *tail])]
    return ['bash', '-c', ' '.join([sys.executable, 'tools/test.py', cfg, ckpt, *tail])]


def stages(p: Preset, gpus: int, seed: int | None = None, prm_options: list[str] = (),
           smoke: bool = False, detectors: Sequence[str] = (DEFAULT_DETECTOR,)) -> list[Stage]:
    """The preset's stages, WISE's for each of ``detectors``; with ``seed``, the trained
    ones seeded and in ``seed<N>/``; with ``smoke``, cut to a few iterations
    (:data:`SMOKE_TRAIN`)."""
    d = p.data
    w = p.work if seed is None else f'{p.work}/seed{seed}'
    ann = f'{d}/annotations'
    seeded = [] if seed is None else [f'randomness.seed={seed}']
    prm_train = [*seeded, *(SMOKE_TRAIN + SMOKE_PRM if smoke else []), *prm_options]
    det_train = [*seeded, *(SMOKE_TRAIN + SMOKE_DETECTOR if smoke else [])]
    test_opts = SMOKE_TEST if smoke else []
    prm_ckpt = f'$(cat {w}/prm/last_checkpoint)'
    proposals = ['--proposals', 'type=precomputed', f'root={p.proposals_root}']

    def gen(cfg: str, model: str) -> list[str]:
        """gen_pseudo.py with ``cfg`` and the checkpoint of the stage ``model``."""
        return [sys.executable, 'tools/gen_pseudo.py', cfg,
                f'$(cat {w}/{model}/last_checkpoint)',
                *([] if seed is None else ['--seed', str(seed)])]

    shards = p.proposal_shards
    splits = (p.train_split, 'val') if p.val else (p.train_split,)
    img_root = ['--img-root', p.img_root] if p.img_root else []
    # the proposals are done when recall is measured, or (no masks) when every shard is
    proposals_done = [f'{p.proposals_root}/recall.json'] if p.val_masks else [
        f'{p.proposals_root}/{done_name(Path(ann) / f"{split}_labels.json", i, shards)}'
        for split in splits for i in range(shards)]

    def pseudo_json(stage: str) -> str:
        return f'{w}/{stage}/{p.train_split}_pseudo.json'

    def pseudo_stage(stage: str) -> Stage:
        out = pseudo_json(stage)
        return Stage(stage, [['bash', '-c', ' '.join(
                         [*gen(p.prm_cfg, 'prm'), '--out', out, *proposals,
                          *SELECTIONS[stage]])]],
                     inputs=[f'{w}/prm/last_checkpoint', *proposals_done,
                             'projects/wise/pseudo', 'tools/gen_pseudo.py'],
                     outputs=[out])

    def wise_stage(selection: str, detector: str) -> Stage:
        stage, pseudo = wise_stage_name(selection, detector), pseudo_json(selection)
        work = f'{w}/{stage}'
        cfg, refine_cfg = (p.wise_cfg.format(detector, refine=r) for r in ('', '_refine'))
        # the paper's selection trains the paper's detector
        soft = DETECTORS[detector].soft_negatives if p.soft_negatives and \
            selection != 'pseudo' else ()
        options = [*det_train, f'train_dataloader.dataset.ann_file={ROOT / pseudo}', *soft]
        tests = [_test(cfg, work, f'{work}/metrics', gpus, test_opts),
                 _test(refine_cfg, work, f'{work}/refine', gpus, test_opts)]
        return Stage(stage, [_train(cfg, work, gpus, options), *(tests if p.val_masks else [])],
                     inputs=[cfg, refine_cfg, pseudo, 'projects/wise/engine',
                             *(['projects/wise/detection'] if soft else [])],
                     outputs=[f'{work}/metrics.metrics.json', f'{work}/refine.metrics.json']
                     if p.val_masks else [f'{work}/last_checkpoint'])

    def trains_on(detector: str) -> Sequence[str]:
        if detector == DEFAULT_DETECTOR:
            return p.selections
        return ['pseudo_improved'] if 'pseudo_improved' in p.selections else p.selections[-1:]

    wise = [wise_stage(selection, detector) for detector in detectors
            for selection in trains_on(detector)]
    selections = [s for s in p.selections if any(s in trains_on(d) for d in detectors)]
    trained = {'prm_baseline', *(['full'] if p.full_cfg else []), *(s.name for s in wise),
               *(['prm_density_baseline'] if p.density_cfg else [])}
    convert = [] if p.convert_args is None else [
        _py('tools/dataset_converters/voc_to_coco.py', d, *p.convert_args,
            '--splits', p.train_split, 'val')]
    recall = [_py('tools/gen_proposals.py', '--ann-file', f'{ann}/val_instances.json',
                  '--out-dir', p.proposals_root, '--recall', *img_root, *p.proposal_args)]

    def prm_test(cfg: str, ckpt: str, work: str) -> list:
        """Classification, peak and counting metrics on val, and peaks drawn."""
        return [['bash', '-c', ' '.join([sys.executable, 'tools/test.py', cfg, ckpt,
                                         '--work-dir', f'{work}/test',
                                         *(['--cfg-options', *test_opts] if smoke else [])])],
                ['bash', '-c', ' '.join([sys.executable, 'tools/vis_peaks.py', cfg, ckpt,
                                         '--out-dir', f'{work}/vis', '--num', '8'])]]

    def baseline_stage(stage: str, cfg: str, model: str, selector: list[str]) -> list[Stage]:
        """The val split's instance masks retrieved from the peaks of the stage ``model``
        (a table row), where val has masks to score them."""
        out = f'{w}/{stage}/val_prm.json'
        return [Stage(stage, [['bash', '-c', ' '.join(
                    [*gen(cfg, model), '--split', 'val', '--no-image-labels', '--selector',
                     *selector, '--out', out, *proposals])]],
                      inputs=[f'{w}/{model}/last_checkpoint', *proposals_done,
                              'projects/wise/pseudo', 'tools/gen_pseudo.py'],
                      outputs=[out, f'{out}.report.json'])] if p.val_masks else []

    density_ckpt = f'$(cat {w}/prm_density/last_checkpoint)'
    density = [] if p.density_cfg is None else [
        Stage('prm_density', [_train(p.density_cfg, f'{w}/prm_density', gpus, prm_train),
                              *(prm_test(p.density_cfg, density_ckpt, f'{w}/prm_density')
                                if p.val else [])],
              inputs=[p.density_cfg, f'{ann}/{p.train_split}_labels.json',
                      'projects/wise/models'],
              outputs=[f'{w}/prm_density/last_checkpoint']),
        *baseline_stage('prm_density_baseline', p.density_cfg, 'prm_density',
                        DENSITY_RETRIEVAL)]
    return [
        Stage('data', [*p.make_data, *convert],
              inputs=['tools/make_shapes_dataset.py', 'projects/wise/datasets/shapes.py',
                      'tools/dataset_converters', *p.data_inputs],
              outputs=[f'{ann}/{p.train_split}_labels.json',
                       *([] if p.convert_args is None
                         else [f'{ann}/{p.train_split}_instances.json']),
                       *([f'{ann}/val_instances.json'] if p.val_masks else
                         [f'{ann}/val_labels.json'] if p.val else [])]),
        Stage('proposals', [[_py('tools/gen_proposals.py',
                                 '--ann-file', f'{ann}/{split}_labels.json',
                                 '--out-dir', p.proposals_root, '--shard', f'{i}/{shards}',
                                 *img_root, *p.proposal_args)
                             for split in splits for i in range(shards)],
                            *(recall if p.val_masks else [])],
              inputs=[f'{ann}/val_instances.json' if p.val_masks
                      else f'{ann}/{p.train_split}_labels.json', 'projects/wise/proposals'],
              outputs=proposals_done),
        Stage('prm', [_train(p.prm_cfg, f'{w}/prm', gpus, prm_train),
                      *(prm_test(p.prm_cfg, prm_ckpt, f'{w}/prm') if p.val else [])],
              inputs=[p.prm_cfg, f'{ann}/{p.train_split}_labels.json', 'projects/wise/models'],
              outputs=[f'{w}/prm/last_checkpoint']),
        *density,
        *[pseudo_stage(name) for name in selections],
        *baseline_stage('prm_baseline', p.prm_cfg, 'prm', ['type=prm_retrieval']),
        *([Stage('full', [_train(p.full_cfg, f'{w}/full', gpus, det_train),
                          _test(p.full_cfg, f'{w}/full', f'{w}/full/metrics', gpus,
                                test_opts)],
                 inputs=[p.full_cfg, f'{ann}/{p.train_split}_instances.json'],
                 outputs=[f'{w}/full/metrics.metrics.json'])] if p.full_cfg else []),
        *wise,
        *([Stage('table', [], inputs=[f'{w}/{f}' for f in ROW_FILES.values()
                                      if f.split('/')[0] in trained],
                 outputs=[f'{w}/results.md', f'{w}/results.json', f'{w}/results.png'])]
          if p.val_masks else []),
    ]


def _group(cmds: list) -> list[list]:
    """A stage's item as the list of commands it runs side by side."""
    return cmds if cmds and isinstance(cmds[0], list) else [cmds]


def _run(cmds: list, dry_run: bool, threads: int | None = None, log=None) -> None:
    """One command, or a list of commands run side by side; ``threads``: each one's
    OpenMP threads (default: all cores), ``log``: a file for their output."""
    group = _group(cmds)
    for cmd in group:
        print('  $ ' + ' '.join(map(str, cmd)), flush=True, file=log or sys.stdout)
    if dry_run:
        return
    env = {'PYTHON': sys.executable, **os.environ}  # dist_run.sh's interpreter
    if len(group) > 1:  # side by side: one thread each, not N x all cores
        threads = 1
    if threads is not None:
        env['OMP_NUM_THREADS'] = str(threads)
    procs = [subprocess.Popen([str(c) for c in cmd], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT if log else None) for cmd in group]
    codes = [proc.wait() for proc in procs]
    if any(codes):
        raise SystemExit(f'pipeline.py: a command failed (exit codes {codes})')


def _metrics(path: Path) -> tuple:
    data = json.loads(path.read_text())
    m = data['quality'] if 'quality' in data else data['metrics']
    return tuple(m.get(k) for k in ('segm_mAP25', 'segm_mAP50', 'segm_mAP75', 'segm_ABO'))


ROW_FILES = {
    'Mask R-CNN (full)': 'full/metrics.metrics.json',
    'PRM': 'prm_baseline/val_prm.json.report.json',
    'PRM + Density': 'prm_density_baseline/val_prm.json.report.json',
    'WISE': 'wise/metrics.metrics.json',
    'WISE + Refine': 'wise/refine.metrics.json',
    'WISE (improved)': 'wise_improved/metrics.metrics.json',
    'WISE (improved) + Refine': 'wise_improved/refine.metrics.json',
    'WISE + counts': 'wise_counts/metrics.metrics.json',
    'WISE + counts + Refine': 'wise_counts/refine.metrics.json',
    **{f'WISE (improved, {d.title}){tail}': f'wise_{name}/{file}'
       for name, d in DETECTORS.items() if name != DEFAULT_DETECTOR
       for tail, file in (('', 'metrics.metrics.json'), (' + Refine', 'refine.metrics.json'))},
}


def _rows(work: Path) -> dict[str, tuple]:
    """The table's rows whose stage has run (``--only`` may leave some out)."""
    return {name: _metrics(work / f) for name, f in ROW_FILES.items() if (work / f).is_file()}


def _mean_sd(values: list) -> tuple[float | None, float | None]:
    if any(v is None for v in values):
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def write_table(work: Path, seeds: list[int] | None = None, train: str = '',
                improved: str = '') -> None:
    """Results like the paper's table, as markdown, json and a bar chart: of the run
    in ``work``, or the mean +- sd of the runs in ``work/seed<N>`` for ``seeds``;
    ``train`` says which training images they come from, ``improved`` what the
    improved rows are."""
    cols = ('mAP25', 'mAP50', 'mAP75', 'ABO')
    runs = [_rows(work)] if not seeds else [_rows(work / f'seed{s}') for s in seeds]
    rows, sds = {}, {}
    for name in [n for n in runs[0] if all(n in run for run in runs)]:
        stats = [_mean_sd([run[name][j] for run in runs]) for j in range(len(cols))]
        rows[name] = tuple(m for m, _ in stats)
        sds[name] = tuple(sd for _, sd in stats)

    def fmt(v, sd=None):
        if v is None:
            return '-'
        return f'{v:.1f}' if not seeds or sd is None else f'{v:.1f} ± {sd:.1f}'

    lines = ['| method | supervision | ' + ' | '.join(cols) + ' | paper (VOC 2012 val) |',
             '|---|---|' + '---|' * len(cols) + '---|']
    for name, vals in rows.items():
        paper = ' / '.join(fmt(v) for v in PAPER[name]) if name in PAPER else '-'
        supervision = 'masks' if name == 'Mask R-CNN (full)' else \
            'labels + counts' if 'counts' in name or 'Density' in name else 'image labels'
        lines.append(f'| {name} | {supervision} | '
                     + ' | '.join(fmt(v, sd) for v, sd in zip(vals, sds[name]))
                     + f' | {paper} |')
    full = rows.get('Mask R-CNN (full)', (None,) * 4)[1]
    ratio = rows['WISE'][1] / full if full and 'WISE' in rows else 0
    lines.append('')
    if train:
        lines.append(f'Trained on {train}.')
    if improved and any('improved' in name for name in rows):
        lines.append(f'WISE (improved): {improved}.')
    if seeds:
        lines.append(f'Mean ± sd over seeds {", ".join(map(str, seeds))}.')
    if ratio:
        lines.append(f'WISE / fully supervised mAP50: {ratio:.2f} (paper: 40.4 / 51.4 = 0.79)')
    md = '\n'.join(lines) + '\n'
    (work / 'results.md').write_text(md)
    result = dict(columns=cols, rows={k: dict(zip(cols, v)) for k, v in rows.items()},
                  paper={k: dict(zip(cols, v)) for k, v in PAPER.items()},
                  wise_over_full_mAP50=round(ratio, 3), train=train, improved=improved)
    if seeds:
        result.update(seeds=seeds, sd={k: dict(zip(cols, v)) for k, v in sds.items()},
                      runs=[{k: dict(zip(cols, v)) for k, v in run.items()} for run in runs])
    (work / 'results.json').write_text(json.dumps(result, indent=2))
    _bar_chart(rows, cols, work / 'results.png')
    print(md)


def _bar_chart(rows: dict, cols: tuple, path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    width = 0.8 / len(rows)
    for i, (name, vals) in enumerate(rows.items()):
        xs = [j + i * width for j in range(len(cols))]
        ax.bar(xs, [v or 0 for v in vals], width, label=name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(cols))], cols)
    ax.set_ylabel('%')
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, ncol=2)
    ax.set_title('built-in val split' if 'demo' in str(path) else 'val split')
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _records(path: Path) -> dict:
    """A json of one value per stage (none yet: empty)."""
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise SystemExit(f'pipeline.py: error: {path}: not valid JSON ({e}); delete it to '
                         'start its records afresh') from None


def _record(work: Path, name: str, stage: str, value) -> None:
    """``<work>/<name>``: a json of one value per stage, ``stage``'s set to ``value``."""
    path = work / name
    with _RECORD_LOCK:  # stages side by side finish in threads of one process
        values = _records(path)
        values[stage] = value
        with atomic_write(path) as f:  # a kill midway leaves the earlier records
            json.dump(values, f, indent=2)


def _recorded(work: Path, name: str, stage: str):
    return _records(work / name).get(stage)


def _command_lines(stage: Stage) -> list[str]:
    """The stage's commands as text, the interpreter named ``python`` (a venv moved or
    entered another way runs the same commands)."""
    return [' '.join(map(str, cmd)).replace(sys.executable, 'python')
            for cmds in stage.commands for cmd in _group(cmds)]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('preset', choices=[*_presets(1), 'custom'],
                    help='demo: built-in data; demo-hard: its hard variant (photographs, '
                         'distractors); demo-crowded: 4-12 instances an image, with WISE + '
                         "counts; voc: VOC 2012 train (the paper's split); "
                         'voc_aug: SBD train_aug; custom: your own images and labels '
                         '(--data, --labels)')
    ap.add_argument('--from', dest='start',
                    help='rerun this stage and all after it (earlier ones are not touched)')
    ap.add_argument('--only', nargs='+', help='run just these stages (if not fresh)')
    ap.add_argument('--gpus', type=int, default=1, help='processes per training/test (torchrun)')
    ap.add_argument('--jobs', type=int,
                    help='stages run side by side where one does not read what another '
                         'writes, each with cores/JOBS threads and its output in '
                         '<work>/logs/ (default: the built-in demos 3, as on 2 cores '
                         'one-thread trainings side by side finish sooner; others 1)')
    ap.add_argument('--dry-run', action='store_true')
    ap.add_argument('--seeds', nargs='+', type=int,
                    help='run the trained stages once per seed (in <work>/seed<N>/) and '
                         'report the mean and sd')
    ap.add_argument('--work-dir', help="the preset's outputs go here instead")
    ap.add_argument('--prm-cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                    help='--cfg-options for the PRM training, e.g. model.peak_grad=mean')
    ap.add_argument('--data-root', help='the dataset folder (VOC presets: exported as '
                    'VOC_ROOT, which the VOC configs read)')
    ap.add_argument('--sbd-root', default='data/benchmark_RELEASE/dataset',
                    help="voc_aug: SBD's dataset folder (inst/, train.txt, val.txt)")
    ap.add_argument('--detector', nargs='+', choices=list(DETECTORS),
                    default=[DEFAULT_DETECTOR],
                    help="the instance segmenter(s) WISE trains on the pseudo masks (default: "
                         "the paper's mask-rcnn); another than mask-rcnn trains on the "
                         'improved pseudo masks, in stage wise_<name>, and adds its rows')
    ap.add_argument('--soft-negatives', action=argparse.BooleanOptionalAction,
                    help='train WISE on the improved pseudo masks with soft negatives '
                         '(Mask R-CNN: background RoIs far from every pseudo instance weigh '
                         '0.3; default: on for the built-in demos, where it is measured)')
    ap.add_argument('--counts', action='store_true',
                    help='also WISE + counts: pseudo masks keeping as many peaks of a class '
                         "as the train split's counts say (pseudo_counts, wise_counts)")
    ap.add_argument('--smoke', action='store_true',
                    help='a few iterations per training, no ImageNet weights: checks that '
                         "every stage runs with the preset's configs")
    own = ap.add_argument_group('custom: your own data (docs/data.md#your-own-data)')
    own.add_argument('--data', help='the image folder')
    own.add_argument('--labels', help='image-level labels of the training images: a csv '
                     '(image,label1;label2 a row) or a COCO json')
    own.add_argument('--val', help='labels of held-out images, the same forms; a COCO json '
                     'with instance masks also gives the table')
    own.add_argument('--classes', help='a,b,c: the class order (default: the labels sorted)')
    args = ap.parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        ap.error('--jobs takes 1 or more')
    if args.data_root and args.preset.startswith('demo'):
        ap.error('--data-root moves the VOC presets only (the demos write data/shapes*)')
    if (args.preset == 'custom') != bool(args.data and args.labels) or \
            (args.preset != 'custom' and (args.val or args.classes)):
        ap.error('custom takes --data and --labels (and --val, --classes); other presets '
                 'none of them')
    if args.preset == 'custom':
        try:
            preset = custom_preset(args.data, args.labels, args.val, args.classes,
                                   args.work_dir or 'work_dirs/custom', args.gpus,
                                   args.detector)
        except DataError as e:
            raise SystemExit(f'pipeline.py: error: {e}') from None
    else:
        preset = _presets(args.gpus, args.data_root, args.sbd_root)[args.preset]
    if args.work_dir:
        preset.work = args.work_dir
    if args.soft_negatives is not None:
        preset.soft_negatives = args.soft_negatives
    if args.counts and 'pseudo_counts' not in preset.selections:
        preset.selections = (*preset.selections, 'pseudo_counts')
    if not preset.val_masks:
        print('[pipeline] no instance masks of val images: the PRM baseline and WISE are '
              'not scored, no table' + ('' if preset.val else '; no val split: the PRM '
                                        'reports no classification mAP'), flush=True)
    if args.data_root and not args.preset.startswith('demo'):
        os.environ['VOC_ROOT'] = args.data_root  # read by the configs' data_root
    runs = [stages(preset, args.gpus, seed, args.prm_cfg_options, args.smoke, args.detector)
            for seed in (args.seeds or [None])]
    names = [s.name for s in runs[0]]
    for name in [args.start, *(args.only or [])]:
        if name is not None and name not in names:
            raise SystemExit(f'pipeline.py: error: unknown stage {name!r}; stages: {names}')
    forced = set(names[names.index(args.start):]) if args.start else set()
    skipped = set(names[:names.index(args.start)]) if args.start else set()
    shared = {'data', 'proposals'}  # the same for every seed
    t_all = time.perf_counter()
    every = [(i, stage) for i, run in enumerate(runs) for stage in run
             if not (i and stage.name in shared)]
    todo = [(i, stage) for i, stage in every
            if not ((args.only and stage.name not in args.only) or stage.name in skipped)]
    ran: list[bool] = []  # of each stage in todo: whether it ran (was not fresh)
    jobs = 1 if args.dry_run else args.jobs or preset.jobs
    threads = None if jobs == 1 else max(1, (os.cpu_count() or 1) // jobs)

    def run_one(k: int) -> None:
        i, stage = todo[k]
        ran.append(_run_stage(stage, stage.name in forced, args.dry_run, preset, args.seeds,
                              i, threads, jobs > 1))

    run_in_parallel(range(len(todo)), dependencies([s.inputs for _, s in todo],
                                                   [s.outputs for _, s in todo]),
                    run_one, jobs)
    if args.seeds and not args.dry_run and (not args.only or 'table' in args.only):
        write_table(ROOT / preset.work, args.seeds, preset.train_note, preset.improved_note)
    took = time.perf_counter() - t_all
    print(f'[pipeline] all stages in {took:.0f} s')
    if len(todo) == len(every) and all(ran) and not args.dry_run:
        _record_clean_run(ROOT / preset.work, took, args.seeds)


def _record_clean_run(work: Path, seconds: float, seeds: list[int] | None) -> None:
    """The end-to-end time of a run in which every stage ran (none reused): the only
    time that says what the whole chain takes, unlike a sum of stages from reruns."""
    (work / 'clean_run.json').write_text(json.dumps(dict(
        seconds=round(seconds, 1), seeds=seeds, commit=source_commit(),
        date=time.strftime('%Y-%m-%d %H:%M')), indent=2))


def source_commit() -> str:
    """The checkout's commit, '-dirty' if changed (bench/run.py compares against it)."""
    return subprocess.run(['git', 'describe', '--always', '--dirty'], cwd=ROOT,
                          capture_output=True, text=True).stdout.strip() or 'unknown'


#: each stage's commands when it last ran, in its work folder: a stage whose commands
#: changed (options, --soft-negatives) is not fresh, whatever its files' times
COMMANDS = 'stage_commands.json'


def _run_stage(stage: Stage, forced: bool, dry_run: bool, preset: Preset,
               seeds: list[int] | None, i: int, threads: int | None = None,
               to_log: bool = False) -> bool:
    """Run ``stage`` unless it is fresh; whether it ran. ``to_log``: its commands'
    output goes to ``<work>/logs/<stage>.log`` (stages running side by side)."""
    label = stage.name if not seeds or stage.name in ('data', 'proposals') \
        else f'{stage.name} (seed {seeds[i]})'
    work = ROOT / (preset.work if not seeds else f'{preset.work}/seed{seeds[i]}')
    commands = _command_lines(stage)
    if not forced and stage.fresh():
        # None: outputs older than the records
        if _recorded(work, COMMANDS, stage.name) in (None, commands):
            print(f'[pipeline] {label}: fresh, skipped', flush=True)
            return False
        print(f'[pipeline] {label}: its commands changed since it ran', flush=True)
    log_path = work / 'logs' / f'{stage.name}.log'
    if to_log:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f'[pipeline] {label}' + (f' (log: {log_path.relative_to(ROOT)})' if to_log else ''),
          flush=True)
    t0 = time.perf_counter()
    with open(log_path, 'w') if to_log else nullcontext() as log:
        try:
            for cmds in stage.commands:
                _run(cmds, dry_run, threads, log)
        except SystemExit as e:
            where = f'; its log: {log_path}' if to_log else ''
            raise SystemExit(f'{e} in stage {label}{where}') from None
    if stage.name == 'table' and not dry_run:
        write_table(work, train=preset.train_note, improved=preset.improved_note)
    took = time.perf_counter() - t0
    print(f'[pipeline] {label}: done in {took:.0f} s', flush=True)
    if not dry_run:
        _record(work, 'stage_times.json', stage.name, round(took, 1))
        _record(work, COMMANDS, stage.name, commands)
    return True


if __name__ == '__main__':
    main()
