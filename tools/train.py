"""Train a model from a config (mmdet's tools/train.py, CPU-distributed aware)."""
import argparse
import sys

import torch
from mmengine.runner import Runner

from mmdet.registry import RUNNERS
from projects.wise.errors import NonFiniteLossError, OptionError
from projects.wise.utils.batch_scaling import scale_schedule, world_size
from projects.wise.utils.cli import add_runner_arguments, parse_runner_args, run_tool
from projects.wise.utils.launch import load_tool_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the actual batch size')
    parser.add_argument('--scale-schedule', action='store_true',
                        help="keep the config's one-process recipe on all processes: the "
                             'total batch (epoch-based) or the images seen at a linearly '
                             'scaled lr (iteration-based); prints what runs')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint, or without a path from the latest '
        'checkpoint in the work dir')
    add_runner_arguments(parser, 'train_cfg.max_iters=100')
    return parse_runner_args(parser, argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = load_tool_config(args)

    if args.amp:
        if not torch.cuda.is_available():  # mmengine's AmpOptimWrapper would assert deep inside
            raise OptionError('--amp: mixed precision trains on a GPU, and none is visible')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise RuntimeError('--auto-scale-lr needs auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.scale_schedule:  # after --auto-scale-lr, which it refuses to stack on
        print(f'train.py: {scale_schedule(cfg, world_size(args.launcher))}', flush=True)
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()


if __name__ == '__main__':
    sys.exit(run_tool('train.py', main, expected=(NonFiniteLossError,)))
