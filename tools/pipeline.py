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
    python tools/pipeline.py demo --seeds 0 1 2 --publish  # -> bench/tables, README
    python tools/pipeline.py sweep --seeds 0 1 2  # the defaults on drawn variants
    python tools/pipeline.py sweep3 --seeds 0     # the whole chain on drawn variant 3

The stages, presets and table are projects/wise/pipeline/ (graph.py lists the stages);
a stage whose outputs are newer than its inputs and whose commands are unchanged is
skipped, so a second run only re-tests what changed.
"""
from __future__ import annotations

import argparse
import os

from projects.wise.datasets.variants import SWEEP
from projects.wise.errors import DataError
from projects.wise.pipeline import (DEFAULT_DETECTOR, DETECTORS, ROOT, Preset, RunOptions,
                                    build_stages, custom_preset, presets, run_pipeline)
from projects.wise.pipeline.presets import MAX_ROUNDS, ROUND_WEIGHTS, sweep_preset
from projects.wise.pipeline.publish import publish
from projects.wise.pipeline.sweep import DEFAULT_VARIANTS, WORK, run_sweep


def _preset_name(name: str) -> str:
    if name in (*presets(), 'custom', 'sweep') or SWEEP.fullmatch(name):
        return name
    raise argparse.ArgumentTypeError(f"unknown preset {name!r}: {', '.join(presets())}, "
                                     'custom, sweep or sweep<N>')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('preset', type=_preset_name,
                    help='demo: built-in data; demo-hard: its hard variant (photographs, '
                         'distractors); demo-crowded: 4-12 instances an image, with WISE + '
                         "counts; voc: VOC 2012 train (the paper's split); "
                         'voc_aug: SBD train_aug; custom: your own images and labels '
                         '(--data, --labels); sweep: the PRM and pseudo masks on drawn '
                         'variants (--variants); sweep<N>: every stage on drawn variant N')
    ap.add_argument('--variants', nargs='+', type=int, default=list(DEFAULT_VARIANTS),
                    help='sweep: the drawn variants (seeds of tools/make_shapes_dataset.py '
                         '--variant sweep<N>)')
    ap.add_argument('--from', dest='start',
                    help='rerun this stage and all after it (earlier ones are not touched)')
    ap.add_argument('--only', nargs='+', default=[],
                    help='run just these stages (if not fresh)')
    ap.add_argument('--gpus', type=int, default=1,
                    help='processes per training, test and gen_pseudo (torchrun)')
    ap.add_argument('--jobs', type=int,
                    help='stages run side by side where one does not read what another '
                         'writes, each with cores/JOBS threads and its output in '
                         '<work>/logs/; with --gpus N > 1 each torchrun of them on its own '
                         'port (PORT, default 29500, + 0..JOBS-1) and its own N GPUs, so '
                         'JOBS x N must not exceed the GPUs (8 GPUs: --gpus 4 --jobs 2). '
                         'Default: the built-in demos 3 on --gpus 1, as on 2 cores '
                         'one-thread trainings side by side finish sooner; otherwise 1')
    ap.add_argument('--dry-run', action='store_true')
    ap.add_argument('--seeds', nargs='+', type=int, default=[],
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
    ap.add_argument('--rounds', type=int, default=1,
                    help='WISE and ROUNDS - 1 self-training rounds after it: the train split '
                         'labelled again by the last Mask R-CNN, which trains the next '
                         '(relabel_round<r>, wise_round<r>; docs/self_training.md)')
    ap.add_argument('--round-weights', choices=['init', 'previous'], default=ROUND_WEIGHTS,
                    help="where a round's detector starts: the config's initialisation, or "
                         f"the previous round's weights (default: {ROUND_WEIGHTS})")
    ap.add_argument('--publish', action='store_true',
                    help='with --seeds: commit-ready bench/tables/<preset>.json (every '
                         "seed's figures, the stages' records) and README / docs results "
                         'blocks written from it')
    ap.add_argument('--ignore-teacher', action='store_true',
                    help='go on with a warning when the PRM has not learned its classes '
                         '(val classification mAP, share of weak peaks: '
                         'projects/wise/pipeline/teacher.py), instead of stopping')
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
    if args.gpus < 1:
        ap.error('--gpus takes 1 or more')
    if not 1 <= args.rounds <= MAX_ROUNDS:
        ap.error(f'--rounds takes 1 to {MAX_ROUNDS}')
    if args.rounds > 1 and DEFAULT_DETECTOR not in args.detector:
        ap.error(f'--rounds relabels with {DEFAULT_DETECTOR}: list it in --detector')
    if args.publish and not args.seeds:
        ap.error('--publish takes --seeds (the table of every seed)')
    if args.preset == 'sweep' and not args.seeds:
        args.seeds = [0]
    if args.data_root and args.preset.startswith(('demo', 'sweep')):
        ap.error('--data-root moves the VOC presets only (the demos write data/shapes*)')
    if (args.preset == 'custom') != bool(args.data and args.labels) or \
            (args.preset != 'custom' and (args.val or args.classes)):
        ap.error('custom takes --data and --labels (and --val, --classes); other presets '
                 'none of them')
    return args


def make_preset(args: argparse.Namespace) -> Preset:
    """The preset named on the command line, with the options that change it."""
    if args.preset == 'custom':
        try:
            preset = custom_preset(args.data, args.labels, args.val, args.classes,
                                   args.work_dir or 'work_dirs/custom', args.detector)
        except DataError as e:
            raise SystemExit(f'pipeline.py: error: {e}') from None
    elif SWEEP.fullmatch(args.preset):
        preset = sweep_preset(args.preset, args.work_dir)
    else:
        preset = presets(args.data_root, args.sbd_root)[args.preset]
    if args.work_dir:
        preset.work = args.work_dir
    if args.soft_negatives is not None:
        preset.soft_negatives = args.soft_negatives
    if args.counts and 'pseudo_counts' not in preset.selections:
        preset.selections = (*preset.selections, 'pseudo_counts')
    return preset


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.preset == 'sweep':
        work = args.work_dir or WORK
        run_sweep([f'sweep{k}' for k in args.variants],
                  RunOptions(dry_run=args.dry_run, jobs=args.jobs or 3, seeds=args.seeds), work)
        if args.publish and not args.dry_run:
            print(f"[pipeline] published {publish('sweep', ROOT / work, args.seeds)}")
        return
    preset = make_preset(args)
    if not preset.val_masks:
        print('[pipeline] no instance masks of val images: the PRM baseline and WISE are '
              'not scored, no table' + ('' if preset.val else '; no val split: the PRM '
                                        'reports no classification mAP'), flush=True)
    if args.data_root and not args.preset.startswith('demo'):
        os.environ['VOC_ROOT'] = args.data_root  # read by the configs' data_root
    runs = [build_stages(preset, args.gpus, seed, args.prm_cfg_options, args.smoke,
                         args.detector, args.ignore_teacher, args.rounds, args.round_weights)
            for seed in (args.seeds or [None])]
    jobs = args.jobs or (preset.jobs if args.gpus == 1 else 1)
    run_pipeline(preset, runs, RunOptions(args.start, args.only, args.dry_run, jobs,
                                          args.seeds, args.gpus))
    if args.publish and not args.dry_run:
        print(f'[pipeline] published {publish(args.preset, ROOT / preset.work, args.seeds)}')


if __name__ == '__main__':
    main()
