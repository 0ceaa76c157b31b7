"""Configs for a user's own data, derived from it: the VOC recipes (inherited, not
copied) with the data's classes, class counts, files and image folder.

``tools/pipeline.py custom`` writes them into its work dir, where they can be read,
edited and rerun with the ordinary tools/train.py and tools/test.py.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..datasets.shapes_config import replace_in
from .paths import CONFIGS


@dataclass(frozen=True)
class Detector:
    """An mmdet instance segmenter that WISE trains on the pseudo masks."""

    title: str  # its name in the results table
    recipe: str  # the project's VOC config of it on pseudo masks, in configs/wise/
    num_classes: str  # the model override giving it K classes (K: the config's variable)
    #: the --cfg-options that train it with soft negatives (projects/wise/detection);
    #: empty: it samples no negatives to soften
    soft_negatives: tuple[str, ...] = ()


#: a two-stage detector's soft negatives: a sampled background RoI overlapping no pseudo
#: instance (IoU < 0.1) weighs 0.3 in the classification loss (docs/over_firing.md)
RCNN_SOFT_NEGATIVES = ('model.roi_head.bbox_head.type=SoftNegativeBBoxHead',
                       'model.train_cfg.rcnn.sampler.type=FarNegativeSampler',
                       'model.train_cfg.rcnn.sampler.iou_thr=0.1',
                       'model.train_cfg.rcnn.sampler.far_weight=0.3')


#: --detector name -> the segmenter; its configs are named <name>_<backbone>_<data>_pseudo.py
DETECTORS = {
    'mask-rcnn': Detector('Mask R-CNN', 'mask-rcnn_r50_voc_pseudo.py',
                          'dict(roi_head=dict(bbox_head=dict(num_classes=len(classes)), '
                          'mask_head=dict(num_classes=len(classes))))',
                          RCNN_SOFT_NEGATIVES),
    'solov2': Detector('SOLOv2', 'solov2_r50_voc_pseudo.py',
                       'dict(mask_head=dict(num_classes=len(classes)))'),
}
#: the paper's detector (tools/pipeline.py's unless --detector says otherwise)
DEFAULT_DETECTOR = 'mask-rcnn'

#: the PRM's recipe in configs/wise/, inherited by a custom prm.py
PRM_RECIPE = 'prm_r50_voc.py'
#: a custom WISE config's file name: '{}' the detector, '{refine}' '' or '_refine'
WISE_CONFIG = 'wise_{}{refine}.py'


def _data_lines(classes: Sequence[str], data_root: str, images: str) -> list[str]:
    return [f'classes = {tuple(classes)!r}',
            f'data_root = {data_root!r}',
            f'data_prefix = dict(img={images!r})',
            'metainfo = dict(classes=classes)']


def _loader(ann_file: str) -> str:
    return (f'dict(dataset=dict(data_root=data_root, data_prefix=data_prefix, '
            f'metainfo=metainfo, ann_file={ann_file!r}))')


#: no split to validate or test on: mmengine's runner takes a loop only with its
#: dataloader and evaluator, so each of the three goes (an inherited test_cfg with no
#: test_dataloader fails the runner's check)
NO_VAL = ['val_cfg = None', 'val_dataloader = None', 'val_evaluator = None',
          'test_cfg = None', 'test_dataloader = None', 'test_evaluator = None']


def prm_config(classes: Sequence[str], data_root: str, images: str, val: bool,
               val_masks: bool) -> str:
    lines = [f'_base_ = {str(CONFIGS / PRM_RECIPE)!r}', *_data_lines(classes, data_root, images),
             'model = dict(num_classes=len(classes))',
             f'train_dataloader = {_loader("annotations/train_labels.json")}']
    if not val:
        return '\n'.join([*lines, '# no val split: nothing to validate or test on',
                          *NO_VAL]) + '\n'
    metrics = ["dict(type='MultiLabelMAP', ann_file=data_root + "
               "'annotations/val_labels.json')"]
    if val_masks:
        metrics.append("dict(type='PeakLocalisationMetric', ann_file=data_root + "
                       "'annotations/val_instances.json')")
    return '\n'.join([*lines, f'val_dataloader = {_loader("annotations/val_labels.json")}',
                      'test_dataloader = val_dataloader',
                      f'val_evaluator = [{", ".join(metrics)}]',
                      'test_evaluator = val_evaluator']) + '\n'


def wise_config(detector: Detector, classes: Sequence[str], data_root: str, images: str,
                val_masks: bool) -> str:
    lines = [f'_base_ = {str(CONFIGS / detector.recipe)!r}',
             *_data_lines(classes, data_root, images),
             f'model = {detector.num_classes}',
             f'train_dataloader = {_loader("annotations/train_pseudo.json")}']
    if not val_masks:
        return '\n'.join([*lines, '# no val masks: nothing to score against', *NO_VAL]) + '\n'
    return '\n'.join([*lines, f'val_dataloader = {_loader("annotations/val_instances.json")}',
                      'test_dataloader = val_dataloader',
                      "val_evaluator = dict(ann_file=data_root + "
                      "'annotations/val_instances.json')",
                      'test_evaluator = val_evaluator']) + '\n'


def refine_config(name: str) -> str:
    return (f"_base_ = './{name}.py'\n"
            '# WISE + Refine: proposals from <data_root>/proposals/ (tools/gen_proposals.py)\n'
            "custom_hooks = [dict(type='ProposalRefineHook')]\n")


def write_custom_configs(out_dir: str | os.PathLike, classes: Sequence[str], data_root: str,
                         images: str, val: bool, val_masks: bool,
                         detectors: Sequence[str] = (DEFAULT_DETECTOR,)) -> dict[str, Path]:
    """Write prm.py and, per detector, :data:`WISE_CONFIG`: wise_<name>.py and
    wise_<name>_refine.py (the same with refinement) into ``out_dir`` (:func:`_write`).

    Args:
        classes: the class names, category ids 1..K in this order.
        data_root: the folder holding ``annotations/`` (and ``proposals/``).
        images: the image folder (absolute, or relative to ``data_root``).
        val: a val split's labels exist (``annotations/val_labels.json``).
        val_masks: its instance masks exist too (``annotations/val_instances.json``).
        detectors: names in :data:`DETECTORS`.
    """
    images = images if images.endswith('/') else images + '/'
    texts = {'prm.py': prm_config(classes, data_root, images, val, val_masks)}
    for detector in detectors:
        name, refine = (WISE_CONFIG.format(detector, refine=r) for r in ('', '_refine'))
        texts[name] = wise_config(DETECTORS[detector], classes, data_root, images, val_masks)
        texts[refine] = refine_config(Path(name).stem)
    return _write(out_dir, texts)


#: a drawn variant's configs (stem) -> the demo config they inherit, in configs/wise/demo/:
#: the demo's recipes with only the data root and class names changed
VARIANT_BASES = {'prm': 'prm_r18_shapes.py', 'full': 'mask-rcnn_r18_shapes_full.py',
                 **{Path(WISE_CONFIG.format(DEFAULT_DETECTOR, refine=r)).stem:
                    f'mask-rcnn_r18_shapes_pseudo{r}.py' for r in ('', '_refine')}}


def variant_config(base: Path, data_root: str, classes: Sequence[str]) -> str:
    """``base`` reading another built-in data root with other class names; its metrics'
    ground truth moved there too."""
    from mmengine.config import Config
    cfg = Config.fromfile(base)
    loader = 'dict(dataset=dict(data_root=data_root, metainfo=metainfo))'
    return '\n'.join([f'_base_ = {str(base)!r}', f'data_root = {data_root!r}',
                      f'metainfo = dict(classes={tuple(classes)!r})',
                      *(f'{split}_dataloader = {loader}' for split in ('train', 'val', 'test')),
                      *(f'{k} = {replace_in(cfg[k], cfg.data_root, data_root)!r}'
                        for k in ('val_evaluator', 'test_evaluator'))]) + '\n'


def write_variant_configs(out_dir: str | os.PathLike, data_root: str,
                          classes: Sequence[str]) -> dict[str, Path]:
    """Write the :data:`VARIANT_BASES` configs of a drawn built-in variant into
    ``out_dir`` (unchanged texts left alone); their paths by stem."""
    return _write(out_dir, {f'{stem}.py': variant_config(CONFIGS / 'demo' / base, data_root,
                                                          classes)
                            for stem, base in VARIANT_BASES.items()})


def _write(out_dir: str | os.PathLike, texts: dict[str, str]) -> dict[str, Path]:
    """Each text into its file in ``out_dir``; a file whose text is unchanged is left
    alone, so the stages reading it stay fresh. The paths by stem."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, text in texts.items():
        path = paths[Path(name).stem] = out_dir / name
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
    return paths
