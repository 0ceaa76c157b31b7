"""A self-training round's labels: the train split labelled again by a trained detector.

The detector's predictions of each image's labelled classes that reach ``--score-thr``
become its new pseudo instances (refined onto proposals with ``--proposals``, as the
Refine hook does); a labelled class it does not find keeps the previous round's
instances, and no absent class gets one (``projects.wise.pseudo.RelabelRule``).

    python tools/relabel.py configs/wise/demo/mask-rcnn_r18_shapes_pseudo.py \\
        work_dirs/demo/wise_improved/iter_2000.pth \\
        --labels data/shapes/annotations/train_labels.json \\
        --previous work_dirs/demo/pseudo_improved/train_pseudo.json \\
        --out work_dirs/demo/relabel_round2/train_pseudo.json \\
        --proposals type=precomputed root=data/shapes/proposals

Resumable, sharded (``--shard i/N``, ``--launcher pytorch``) and reported as
tools/gen_pseudo.py is: rerun the same command after a kill to continue.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmengine.config import DictAction

from projects.wise.pseudo import Relabeller, RelabelRule, label_split
from projects.wise.utils.cli import add_labelling_arguments, labelling_setup, run_tool

DEFAULT = RelabelRule()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog='relabel.py', description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='the detector config')
    p.add_argument('checkpoint', help='the trained detector checkpoint')
    p.add_argument('--labels', required=True, help="the split's image labels json")
    p.add_argument('--previous', required=True,
                   help="the previous round's pseudo instances json (the images to label)")
    p.add_argument('--out', required=True, type=Path, help='the new pseudo instances json')
    p.add_argument('--proposals', nargs='+', action=DictAction,
                   help='refine each kept prediction onto these proposals, e.g. '
                        'type=precomputed root=data/shapes/proposals')
    p.add_argument('--score-thr', type=float, default=DEFAULT.score_thr,
                   help='predictions scoring less are dropped (the defaults were chosen on '
                        'val: docs/self_training.md)')
    p.add_argument('--nms-iou', type=float, default=DEFAULT.nms_iou,
                   help='of kept predictions overlapping by this mask IoU, the best-scored '
                        'stays, whatever its class (1: only identical masks)')
    p.add_argument('--keep-unmatched', action=argparse.BooleanOptionalAction,
                   default=DEFAULT.keep_unmatched,
                   help='also keep previous instances that no kept prediction overlaps')
    p.add_argument('--gt-ann-file', help='ground-truth instances json for the quality report '
                   '(default: the *_instances.json beside --labels, if any)')
    add_labelling_arguments(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cfg, shard, num_shards = labelling_setup(args)
    rule = RelabelRule(score_thr=args.score_thr, nms_iou=args.nms_iou,
                       keep_unmatched=args.keep_unmatched)
    relabeller = Relabeller.from_config(cfg, args.checkpoint, args.labels, args.previous, rule,
                                        args.proposals, args.gt_ann_file)
    label_split(relabeller, args.out, shard, num_shards, 'relabel',
                args.config, args.checkpoint)


if __name__ == '__main__':
    sys.exit(run_tool('relabel.py', main))
