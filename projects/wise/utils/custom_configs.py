"""Configs for a user's own data, derived from it: the VOC recipes (inherited, not
copied) with the data's classes, class counts, files and image folder.

tools/pipeline.py custom writes them into its work dir, where they can be read,
edited and rerun with the ordinary tools/train.py and tools/test.py.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

#: config name -> the project recipe it inherits
RECIPES = {'prm': 'configs/wise/prm_r50_voc.py',
           'wise': 'configs/wise/mask-rcnn_r50_voc_pseudo.py'}


def _data_lines(classes: Sequence[str], data_root: str, images: str) -> list[str]:
    return [f'classes = {tuple(classes)!r}',
            f'data_root = {data_root!r}',
            f'data_prefix = dict(img={images!r})',
            'metainfo = dict(classes=classes)']


def _loader(ann_file: str) -> str:
    return (f'dict(dataset=dict(data_root=data_root, data_prefix=data_prefix, '
            f'metainfo=metainfo, ann_file={ann_file!r}))')


NO_VAL = ['val_cfg = None', 'val_dataloader = None', 'val_evaluator = None',
          'test_dataloader = None', 'test_evaluator = None']


def prm_config(classes: Sequence[str], data_root: str, images: str, val: bool,
               val_masks: bool) -> str:
    lines = [f'_base_ = {str(ROOT / RECIPES["prm"])!r}', *_data_lines(classes, data_root, images),
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


def wise_config(classes: Sequence[str], data_root: str, images: str, val_masks: bool) -> str:
    lines = [f'_base_ = {str(ROOT / RECIPES["wise"])!r}', *_data_lines(classes, data_root, images),
             'model = dict(roi_head=dict(bbox_head=dict(num_classes=len(classes)),',
             '                           mask_head=dict(num_classes=len(classes))))',
             f'train_dataloader = {_loader("annotations/train_pseudo.json")}']
    if not val_masks:
        return '\n'.join([*lines, '# no val masks: nothing to score against', *NO_VAL]) + '\n'
    return '\n'.join([*lines, f'val_dataloader = {_loader("annotations/val_instances.json")}',
                      'test_dataloader = val_dataloader',
                      "val_evaluator = dict(ann_file=data_root + "
                      "'annotations/val_instances.json')",
                      'test_evaluator = val_evaluator']) + '\n'


REFINE = ("_base_ = './wise.py'\n"
          '# WISE + Refine: proposals from <data_root>/proposals/ (tools/gen_proposals.py)\n'
          "custom_hooks = [dict(type='ProposalRefineHook')]\n")


def write_custom_configs(out_dir: str | os.PathLike, classes: Sequence[str], data_root: str,
                         images: str, val: bool, val_masks: bool) -> dict[str, Path]:
    """Write prm.py, wise.py and wise_refine.py into ``out_dir`` (a file whose text is
    unchanged is left alone, so later stages stay fresh); their paths by name.

    Args:
        classes: the class names, category ids 1..K in this order.
        data_root: the folder holding ``annotations/`` (and ``proposals/``).
        images: the image folder (absolute, or relative to ``data_root``).
        val: a val split's labels exist (``annotations/val_labels.json``).
        val_masks: its instance masks exist too (``annotations/val_instances.json``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    images = images if images.endswith('/') else images + '/'
    texts = {'prm': prm_config(classes, data_root, images, val, val_masks),
             'wise': wise_config(classes, data_root, images, val_masks),
             'wise_refine': REFINE}
    paths = {}
    for name, text in texts.items():
        path = paths[name] = out_dir / f'{name}.py'
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
    return paths
