"""Pseudo instance masks from a trained PRM classifier and object proposals.

For every image of a split (image-level labels only), the PRM's peaks of the
labelled classes each pick one class-agnostic proposal that covers them
(``--selector``); the picks become COCO instance annotations that mmdet's
CocoDataset loads as they are.

    python tools/gen_pseudo.py configs/wise/demo/prm_r18_shapes.py \\
        work_dirs/demo/prm/epoch_8.pth --out data/shapes/annotations/train_pseudo.json \\
        --proposals type=precomputed root=data/shapes/proposals

Progress is kept per image in ``<out>.parts/`` (rerun the same command after a
kill to continue; the result is byte-identical). ``--shard i/N`` or torchrun
(``tools/dist_gen_pseudo.sh``) split the images; the last worker to finish
merges. A report (events, proposal recall, and where a ground-truth instances
json exists the test metric of the pseudo masks) is printed and saved as
``<out>.report.json``. ``--oracle`` uses ground-truth instance centres instead
of PRM peaks: the upper bound of a selection strategy; ``--counts`` keeps as many
peaks of each class as it has objects. The work is done by
``projects.wise.pseudo`` (``PseudoLabeller``, ``label_split``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmengine.config import DictAction

from projects.wise.pseudo import PseudoLabeller, label_split
from projects.wise.utils.cli import add_labelling_arguments, labelling_setup, run_tool


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog='gen_pseudo.py', description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='the PRM config')
    p.add_argument('checkpoint', help='the trained PRM checkpoint')
    p.add_argument('--out', required=True, type=Path, help='the pseudo instances json')
    p.add_argument('--proposals', nargs='+', action=DictAction, required=True,
                   help='proposal source, e.g. type=precomputed root=data/proposals')
    p.add_argument('--selector', nargs='+', action=DictAction,
                   default=dict(type='objectness_sampling'),
                   help='objectness_sampling (paper), best_objectness (authors\' code), '
                        'prm_retrieval (PRM; its released defaults, e.g. max_candidates=100 '
                        'nms_iou=0.3: docs/fidelity.md)')
    p.add_argument('--split', choices=['train', 'val', 'test'], default='train',
                   help="which dataloader's dataset of the config to label")
    p.add_argument('--ann-file', help="override that dataset's ann_file")
    p.add_argument('--gt-ann-file', help='ground-truth instances json for the quality report '
                   '(default: the *_instances.json beside a *_labels.json, if any)')
    p.add_argument('--peak-thr', type=float,
                   help="peak response a peak must reach (default: the model's test_cfg)")
    p.add_argument('--image-labels', action=argparse.BooleanOptionalAction, default=True,
                   help='keep the peaks of the labelled classes (weak supervision, for '
                        'train); --no-image-labels: of the classes the PRM scores present '
                        '(score_thr), as at test time (the PRM baseline)')
    p.add_argument('--oracle', action='store_true',
                   help='ground-truth instance centres instead of PRM peaks')
    p.add_argument('--counts', choices=['given', 'predicted'],
                   help='as many peaks of a class as it has objects (WISE + counts): the '
                        "split's counts, or a PRM + Density model's (docs/counts.md)")
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--show-dir', type=Path, help='draw the pseudo masks of each image here')
    add_labelling_arguments(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cfg, shard, num_shards = labelling_setup(args)
    labeller = PseudoLabeller.from_config(
        cfg, args.checkpoint, args.proposals, args.selector, split=args.split,
        ann_file=args.ann_file, gt_ann_file=args.gt_ann_file, peak_thr=args.peak_thr,
        image_labels=args.image_labels, oracle=args.oracle, counts=args.counts, seed=args.seed,
        show_dir=args.show_dir)
    label_split(labeller, args.out, shard, num_shards, 'gen_pseudo',
                args.config, args.checkpoint)


if __name__ == '__main__':
    sys.exit(run_tool('gen_pseudo.py', main))
