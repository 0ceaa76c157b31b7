"""Test (and evaluate) a checkpoint (mmdet's tools/test.py, CPU-distributed aware)."""
import argparse
import sys

from mmengine.runner import Runner

from mmdet.engine.hooks.utils import trigger_visualization_hook
from mmdet.evaluation import DumpDetResults
from mmdet.registry import RUNNERS
from projects.wise.engine import enable_refinement
from projects.wise.utils.cli import add_runner_arguments, parse_runner_args, run_tool
from projects.wise.utils.launch import load_tool_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where to save the evaluation metrics')
    parser.add_argument('--out', type=str,
                        help='dump predictions to a pickle file for offline evaluation')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='save painted images under work_dir/timestamp/')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--refine', nargs='?', const='', metavar='PROPOSALS',
        help="refine predicted masks with object proposals (WISE + Refine): switches on the "
             "config's ProposalRefineHook, or adds one; PROPOSALS: their folder (default: "
             '<data_root>/proposals/ of the test data)')
    add_runner_arguments(parser, 'test_evaluator.score_thr=0.3')
    return parse_runner_args(parser, argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = load_tool_config(args)
    cfg.load_from = args.checkpoint
    if args.refine is not None:
        enable_refinement(cfg, args.refine or None)
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)

    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise SystemExit('test.py: error: --out must end with .pkl or .pickle')
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    return runner.test()


if __name__ == '__main__':
    sys.exit(run_tool('test.py', main))
