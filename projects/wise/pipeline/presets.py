"""The presets: where each data set, its configs and its outputs are, and which
pseudo-mask selections run on it.

``demo``, ``demo-hard`` and ``demo-crowded`` make their data; ``voc`` and ``voc_aug``
read PASCAL VOC 2012 (and SBD) that the user downloads (docs/data.md); ``custom``
(:func:`custom_preset`) is a user's image folder and label file, with configs derived
from them.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..datasets.label_files import class_list, has_instances, label_classes
from ..datasets.variants import SWEEP, variant_by_name
from ..errors import DataError
from .commands import python
from .custom_configs import (DEFAULT_DETECTOR, WISE_CONFIG, write_custom_configs,
                             write_variant_configs)
from .paths import ROOT
from .stage import Command

#: the selection that survives an over-firing PRM best of those measured on both demos
#: (docs/over_firing.md): the proposal of highest objectness (the authors' code) among
#: those within 2 px of the peak (about a response-map cell: the demos' maps are x4
#: sub-pixel at stride 16 or 8), then mask NMS among one class's instances
IMPROVED = ('type=best_objectness', 'cover_radius=2', 'class_nms_iou=0.5')
#: pseudo-mask stage -> its gen_pseudo selection arguments (none: the paper's, the default);
#: ``pseudo_counts``: the improved selection keeping as many peaks of a class as the
#: train split's counts say (WISE + counts, docs/counts.md)
SELECTIONS = {'pseudo': (), 'pseudo_improved': ('--selector', *IMPROVED),
              'pseudo_counts': ('--selector', *IMPROVED, '--counts', 'given')}
#: the WISE stage trained on each pseudo-mask stage
WISE_OF = {'pseudo': 'wise', 'pseudo_improved': 'wise_improved', 'pseudo_counts': 'wise_counts'}
#: a self-training round's relabelling options: tools/relabel.py's defaults, chosen on
#: the built-in variants' val splits (docs/self_training.md)
RELABEL: tuple[str, ...] = ()
#: where a round's detector starts: 'init', the config's own initialisation as WISE's,
#: or 'previous', the previous round's weights (chosen on val: docs/self_training.md)
ROUND_WEIGHTS = 'previous'
#: at most this many WISE trainings in a self-training chain (--rounds)
MAX_ROUNDS = 5
#: PRM + Density's instance masks: PRM's retrieval with ILC's density term
DENSITY_RETRIEVAL = ('type=prm_retrieval', 'density_weight=0.2')
#: at most this many proposal shards a split: each is a process of ~0.45 GB (torch
#: imported), and every split's shards run at once
MAX_PROPOSAL_SHARDS = 64


def wise_stage_name(selection: str, detector: str) -> str:
    """The WISE stage of a pseudo-mask stage and a detector: Mask R-CNN's per selection;
    another detector trains on the improved selection only, in wise_<name>."""
    return WISE_OF[selection] if detector == DEFAULT_DETECTOR else f'wise_{detector}'


@dataclass
class Preset:
    """Where a preset's data, configs and outputs are (paths relative to the checkout)."""

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
    make_data: list[Command]
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
    #: the split the table reports: the built-in data's held-out test split (val chooses
    #: options, thresholds, checkpoints); VOC's val, as the authors reported it
    test_split: str = 'val'

    @property
    def splits(self) -> tuple[str, ...]:
        """Every split the chain reads: train, val where there is one, test."""
        return tuple(dict.fromkeys([self.train_split, *(['val'] if self.val else []),
                                    *([self.test_split] if self.val else [])]))

    @property
    def annotations(self) -> str:
        return f'{self.data}/annotations'

    @property
    def improved_note(self) -> str:
        """What the table's improved rows are."""
        return ('pseudo masks of the improved selection (' + ', '.join(IMPROVED) + ')'
                + ('; Mask R-CNN trained on them with soft negatives (RoIs far from every '
                   'pseudo instance weigh 0.3)' if self.soft_negatives else ''))


def proposal_shards() -> int:
    """Proposal shards a split for the presets that make 1000 proposals an image: one
    single-thread process per core this process may use (its affinity: a slurm job's or
    container's share, not the node's count), capped; proposals are CPU work, whatever
    --gpus is."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else \
        os.cpu_count() or 1
    return min(cores, MAX_PROPOSAL_SHARDS)


def _builtin(name: str, variant: str | None, **kwargs) -> Preset:
    """A built-in data set: ``tools/make_shapes_dataset.py`` writes it."""
    data = 'data/shapes' + (f'-{variant}' if variant else '')
    tag = 'shapes' + (f'-{variant}' if variant else '')
    return Preset(
        data=data, work=f'work_dirs/{name}',
        convert_args=['--classes-file', f'{data}/classes.txt'],
        prm_cfg=f'configs/wise/demo/prm_r18_{tag}.py',
        full_cfg=f'configs/wise/demo/mask-rcnn_r18_{tag}_full.py',
        wise_cfg=f'configs/wise/demo/{{}}_r18_{tag}_pseudo{{refine}}.py',
        train_split='train',
        train_note=f'the {variant + " " if variant else ""}built-in train split (2,000 images)',
        make_data=[python('tools/make_shapes_dataset.py', data,
                          *(['--variant', variant] if variant else []), '--seed', '0')],
        proposals_root=f'{data}/proposals', proposal_shards=2, jobs=3, test_split='test',
        **kwargs)


def sweep_preset(name: str, work: str | None = None) -> Preset:
    """A drawn built-in variant (``sweep<N>``, :func:`~..datasets.variants.draw_variant`)
    under the demo's recipes with only its data root and class names changed: what a
    user gets on data nobody chose the defaults on. Its outputs and configs go in
    ``work`` (default ``work_dirs/sweep/<name>``)."""
    if not SWEEP.fullmatch(name):
        raise DataError(f'{name!r} is no sweep variant (sweep<N>)')
    preset = _builtin(name, name, density_cfg=None, soft_negatives=True)
    preset.work = work or f'work_dirs/sweep/{name}'
    cfgs = write_variant_configs(ROOT / preset.work / 'configs', preset.data + '/',
                                 variant_by_name(name).classes)
    preset.prm_cfg, preset.full_cfg = str(cfgs['prm']), str(cfgs['full'])
    preset.wise_cfg = str(cfgs['prm'].parent / WISE_CONFIG)
    return preset


def _voc(name: str, data_root: str | None, tag: str, **kwargs) -> Preset:
    """PASCAL VOC 2012 with the paper's configs and 1000 proposals an image, as the
    paper's SharpMask; VOC 2012 and SBD are downloaded by the user (docs/data.md)."""
    voc = data_root or os.environ.get('VOC_ROOT', 'data/VOCdevkit/VOC2012')
    return Preset(
        data=voc, work=f'work_dirs/{name}', make_data=[], proposals_root=f'{voc}/proposals',
        proposal_shards=proposal_shards(), proposal_args=['--max-proposals', '1000'],
        prm_cfg=f'configs/wise/prm_r50_{tag}.py',
        full_cfg=f'configs/wise/mask-rcnn_r50_{tag}_full.py',
        density_cfg=f'configs/wise/prm-density_r50_{tag}.py',
        wise_cfg=f'configs/wise/{{}}_r50_{tag}_pseudo{{refine}}.py', **kwargs)


def presets(data_root: str | None = None,
            sbd_root: str = 'data/benchmark_RELEASE/dataset') -> dict[str, Preset]:
    """The presets by name; ``data_root`` / ``sbd_root``: where VOC 2012 and SBD are."""
    return {
        'demo': _builtin('demo', None, density_cfg='configs/wise/demo/prm-density_r18_shapes.py',
                         soft_negatives=True),
        'demo-hard': _builtin('demo-hard', 'hard', density_cfg=None, soft_negatives=True),
        'demo-crowded': _builtin(
            'demo-crowded', 'crowded',
            density_cfg='configs/wise/demo/prm-density_r18_shapes-crowded.py',
            selections=('pseudo_improved', 'pseudo_counts')),
        'voc': _voc('voc', data_root, 'voc', convert_args=[], train_split='train',
                    train_note="VOC 2012 train (1,464 images), the split of the authors' code"),
        'voc_aug': _voc('voc_aug', data_root, 'voc-aug',
                        convert_args=['--sbd-root', sbd_root], train_split='train_aug',
                        train_note='SBD train_aug (10,582 images: more data than the paper '
                                   'used)'),
    }


def custom_preset(images: str, labels: str, val: str | None = None,
                  classes: str | None = None, work: str = 'work_dirs/custom',
                  detectors: Sequence[str] = (DEFAULT_DETECTOR,)) -> Preset:
    """The preset of a user's own data: an image folder, a label file over it (csv or
    COCO json, tools/dataset_converters/labels_to_coco.py) and optionally a val label
    file (a COCO json with instance masks also scores). Its configs are derived from
    the data and written into ``<work>/configs/``."""
    if not Path(images).is_dir():
        raise DataError(f'{Path(images).resolve()}: image folder not found')
    names = class_list(classes) or label_classes(labels)
    val_masks = val is not None and has_instances(val)
    data = str(ROOT / work / 'data')
    images = str(Path(images).resolve())
    cfgs = write_custom_configs(ROOT / work / 'configs', names, data + '/', images,
                                val is not None, val_masks, detectors)
    ann, conv = f'{data}/annotations', 'tools/dataset_converters/labels_to_coco.py'
    common = ['--images', images, '--classes', ','.join(names)]
    make = [python(conv, str(Path(labels).resolve()), *common,
                   '--out', f'{ann}/train_labels.json')]
    if val is not None:
        make.append(python(conv, str(Path(val).resolve()), *common,
                           '--out', f'{ann}/val_labels.json',
                           *(['--instances-out', f'{ann}/val_instances.json']
                             if val_masks else [])))
    return Preset(
        data=data, work=work, convert_args=None, prm_cfg=str(cfgs['prm']), full_cfg=None,
        density_cfg=None, wise_cfg=str(cfgs['prm'].parent / WISE_CONFIG), train_split='train',
        train_note=f'{labels} ({len(names)} classes)', make_data=make,
        proposals_root=f'{data}/proposals', proposal_shards=proposal_shards(),
        proposal_args=['--max-proposals', '1000'], selections=('pseudo_improved',),
        val=val is not None, val_masks=val_masks, img_root=images,
        data_inputs=[labels, *([val] if val else [])])

