"""Precompute object proposals for every image of a COCO json, one file per image.

Each image gets one file in ``<out-dir>``, read by the ``precomputed`` source:
``<file stem>.segments`` for the built-in source (its proposals as sets of superpixels,
~30 KB for 1000 proposals of a 500x375 image), ``<file stem>.json`` for sources of
arbitrary masks (SAM): a JSON list of ``{"segmentation": <COCO RLE>, "score": float}``,
best first (the per-image format of DeepMask/SharpMask). Files are written
atomically and existing ones are skipped, so a killed run resumes; run
``--shard i/N`` in N processes to split the work.

    python tools/gen_proposals.py --ann-file data/shapes/annotations/val_instances.json \\
        --out-dir data/shapes/proposals/builtin --recall
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from mmengine.config import DictAction

from projects.wise.errors import DataError
from projects.wise.proposals import PrecomputedProposals, Proposals, ProposalSource
from projects.wise.proposals.precomputed import done_name, image_file
from projects.wise.proposals.recall import gt_rles, proposal_recall
from projects.wise.registry import PROPOSAL_SOURCES
from projects.wise.utils.cli import run_tool
from projects.wise.utils.io import dump_json, load_coco_json, load_json, safe_join
from projects.wise.utils.launch import parse_shard

RECALL_KS = (100, 500, 1000)
PROGRESS_EVERY = 50


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--ann-file', type=Path, required=True,
                   help='COCO json of the split (images[] with file_name, height, width, id)')
    p.add_argument('--img-root', type=Path,
                   help='image folder (default: JPEGImages/ beside the json\'s annotations/)')
    p.add_argument('--out-dir', type=Path, required=True)
    p.add_argument('--source', default='builtin', help='a registered proposal source')
    p.add_argument('--source-opts', nargs='+', action=DictAction, default={},
                   help='source arguments, key=value (e.g. scales="(50,100)")')
    p.add_argument('--max-proposals', type=int, help='shorthand for --source-opts '
                   'max_proposals=N')
    p.add_argument('--shard', type=parse_shard, default=(0, 1),
                   help='i/N: only images i, i+N, i+2N, ... (0 <= i < N)')
    p.add_argument('--recall', action='store_true',
                   help=f'report best-IoU recall at 0.5 for the top {RECALL_KS} proposals '
                   'against the json\'s instances; saved as <out-dir>/recall.json')
    return p.parse_args(argv)


class RecallMeter:
    """Best-IoU recall summed over images: hits and instances for each top k."""

    def __init__(self) -> None:
        self.hits = dict.fromkeys(RECALL_KS, 0)
        self.num_gt = self.num_images = 0

    def add(self, proposals: Proposals, segmentations: list) -> None:
        r = proposal_recall(proposals, gt_rles(segmentations, proposals.hw), RECALL_KS)
        self.num_gt += r['num_gt']
        self.num_images += 1
        for k in RECALL_KS:
            self.hits[k] += r['hits'][k]

    def recall(self) -> dict[int, float]:
        return {k: h / max(self.num_gt, 1) for k, h in self.hits.items()}


def build_source(args: argparse.Namespace) -> tuple[ProposalSource, dict]:
    opts = dict(args.source_opts)
    if args.max_proposals is not None:
        opts['max_proposals'] = args.max_proposals
    try:
        return PROPOSAL_SOURCES.build(dict(type=args.source, **opts)), opts
    except (KeyError, TypeError, ValueError) as e:  # unknown source or bad arguments
        raise SystemExit(f'gen_proposals.py: error: --source {args.source} {opts}: {e}') from None


def claim_out_dir(out_dir: Path, made_by: dict) -> None:
    """Record which source and options fill ``out_dir``; refuse to resume, into it, a run
    with others (its files would be skipped as done, silently mixing two kinds)."""
    record = out_dir / '.source.json'
    if record.is_file():
        found = load_json(record)
        if found != made_by:
            raise DataError(f'{record}: {out_dir} holds proposals of {found}, not of '
                            f'{made_by}; use another --out-dir')
    else:
        dump_json(made_by, record, indent=2)


def run(args: argparse.Namespace) -> None:
    shard, num_shards = args.shard
    data = load_coco_json(args.ann_file)
    img_root = args.img_root or args.ann_file.resolve().parent.parent / 'JPEGImages'
    source, opts = build_source(args)
    images = data['images']
    stems = [Path(im['file_name']).stem for im in images]
    [(dup, times)] = Counter(stems).most_common(1) or [('', 0)]
    if times > 1:
        raise DataError(f'{args.ann_file}: two images share the file stem {dup!r}; '
                        'their proposal files would collide')
    claim_out_dir(args.out_dir, dict(source=args.source, options=opts))
    anns: dict = {}
    for a in data.get('annotations', []):
        if not a.get('iscrowd', 0):
            anns.setdefault(a['image_id'], []).append(a['segmentation'])
    meter = RecallMeter() if args.recall and anns else None
    if args.recall and not anns:
        print(f'[gen_proposals] {args.ann_file} has no instances: no recall', flush=True)
    todo = list(zip(images, stems))[shard::num_shards]
    written = PrecomputedProposals(root=str(args.out_dir))  # reads what this tool wrote
    made = 0
    t0 = time.perf_counter()
    for n, (im, stem) in enumerate(todo, 1):
        hw = (int(im['height']), int(im['width']))
        if image_file(args.out_dir, stem) is None:
            img_path = safe_join(img_root, im['file_name'], args.ann_file)
            props = source(dict(img_path=str(img_path), height=hw[0], width=hw[1],
                                img_id=im['id']))
            if props.hw != hw:
                raise DataError(f'{img_path}: proposals are {props.hw[1]}x{props.hw[0]} but '
                                f'{args.ann_file} says {hw[1]}x{hw[0]}')
            props.save(args.out_dir / f'{stem}{props.FILE_SUFFIX}')
            made += 1
        elif meter is not None:
            props = written(dict(img_path=f'{stem}.jpg', height=hw[0], width=hw[1]))
        if meter is not None:
            meter.add(props, anns.get(im['id'], []))
        if n % PROGRESS_EVERY == 0 or n == len(todo):
            rate = (time.perf_counter() - t0) / max(made, 1)
            print(f'[gen_proposals] {n}/{len(todo)} images ({n - made} already done, '
                  f'{rate:.2f} s/image) -> {args.out_dir}', flush=True)
    dump_json(dict(ann_file=str(args.ann_file), images=len(todo), made=made),
              args.out_dir / done_name(args.ann_file, shard, num_shards))
    if meter is not None:
        name = 'recall.json' if num_shards == 1 else f'recall_{shard}of{num_shards}.json'
        dump_json(dict(ann_file=str(args.ann_file), source=args.source, source_opts=opts,
                       shard=f'{shard}/{num_shards}', num_images=meter.num_images,
                       num_gt=meter.num_gt, iou_thr=0.5, recall=meter.recall()),
                  args.out_dir / name, indent=2)
        print('[gen_proposals] recall at IoU 0.5: ' + ', '.join(
            f'top {k}: {v:.3f}' for k, v in meter.recall().items())
            + f' ({meter.num_gt} instances) -> {args.out_dir / name}', flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry; bad data gives one ``gen_proposals.py: error: ...`` line and exit status 1."""
    args = parse_args(argv)
    return run_tool('gen_proposals.py', lambda: run(args))


if __name__ == '__main__':
    sys.exit(main())
