"""The GPU path, checked on a GPU box with the env built: offline, in minutes, one line
a check (ok / FAILED with its log / skipped and why).

    bash tools/setup/gpu_check.sh [OUT]      # default work_dirs/gpu_check

mmcv's CUDA NMS and RoIAlign against their CPU results; the demo PRM trained a few
iterations with and without --amp; gen_pseudo with it; a few Mask R-CNN iterations on
its pseudo masks; tools/test.py with the refine hook; two ranks on one GPU (gloo, DDP).
Everything runs in OUT on a small generated shapes set. Without a GPU the same checks
run on the CPU, less the two that need one: that is how the test suite keeps it working.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from projects.wise.pipeline.commands import SMOKE_TRAIN  # noqa: E402
from tools.setup.mmcv_plan import cuda_ops_problem  # noqa: E402

DEMO = ROOT / 'configs/wise/demo'
PROPOSALS = 'type=precomputed root=data/shapes/proposals'
#: enough images for two batches of 8 an epoch and a few for the refine hook
SPLITS = dict(train=16, val=2, test=4)


class Skipped(Exception):
    """A check that cannot run here; its message says why."""


class Check:
    """Runs tools in ``out`` (where the configs' ``data/shapes/`` resolves), each
    command's output in ``out/logs/<check>.log``."""

    def __init__(self, out: Path) -> None:
        self.out = out
        (out / 'logs').mkdir(parents=True, exist_ok=True)
        self.log: Path = out / 'logs/none.log'

    def tool(self, script: str, *args: object, torchrun: int = 0) -> str:
        launcher = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node',
                    str(torchrun)] if torchrun else [sys.executable]
        cmd = [*launcher, str(ROOT / script), *map(str, args)]
        with self.log.open('a') as log:
            log.write('$ ' + ' '.join(cmd) + '\n')
            log.flush()
            proc = subprocess.run(cmd, cwd=self.out, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
            log.write(proc.stdout)
        if proc.returncode:
            raise RuntimeError(f'{Path(script).name} exited {proc.returncode}')
        return proc.stdout

    def checkpoint(self, work: str) -> str:
        return (self.out / work / 'last_checkpoint').read_text().strip()


def cuda_ops(c: Check) -> str:
    import torch
    if not torch.cuda.is_available():
        raise Skipped('no GPU visible')
    problem = cuda_ops_problem()
    if problem:
        raise RuntimeError(problem)
    return f'NMS and RoIAlign agree with the CPU ops on {torch.cuda.get_device_name()}'


def data(c: Check) -> str:
    root = 'data/shapes'
    c.tool('tools/make_shapes_dataset.py', root, '--num-train', SPLITS['train'],
           '--num-val', SPLITS['val'], '--num-test', SPLITS['test'], '--seed', 0)
    c.tool('tools/dataset_converters/voc_to_coco.py', root, '--classes-file',
           f'{root}/classes.txt', '--splits', *SPLITS)
    for split in ('train', 'test'):  # what gen_pseudo and the refine hook read
        c.tool('tools/gen_proposals.py', '--ann-file', f'{root}/annotations/{split}_labels.json',
               '--out-dir', f'{root}/proposals')
    return f'{sum(SPLITS.values())} images, their labels and instances; proposals of train, test'


def _train_prm(c: Check, work: str, *extra: str) -> str:
    c.tool('tools/train.py', DEMO / 'prm_r18_shapes.py', '--work-dir', work, *extra,
           '--cfg-options', *SMOKE_TRAIN, 'train_cfg.max_epochs=2',
           'train_dataloader.batch_size=8')
    return f'2 epochs of {SPLITS["train"]} images, {Path(c.checkpoint(work)).name}'


def prm(c: Check) -> str:
    return _train_prm(c, 'prm')


def prm_amp(c: Check) -> str:
    import torch
    if not torch.cuda.is_available():
        raise Skipped('--amp trains on a GPU')
    return _train_prm(c, 'prm_amp', '--amp') + ' (finite losses: FiniteLossHook)'


def gen_pseudo(c: Check) -> str:
    out = 'pseudo/train_pseudo.json'
    c.tool('tools/gen_pseudo.py', DEMO / 'prm_r18_shapes.py', c.checkpoint('prm'), '--out', out,
           '--proposals', *PROPOSALS.split())
    coco = json.loads((c.out / out).read_text())
    return f'{len(coco["annotations"])} pseudo masks on {len(coco["images"])} images'


def mask_rcnn(c: Check) -> str:
    c.tool('tools/train.py', DEMO / 'mask-rcnn_r18_shapes_pseudo.py', '--work-dir', 'wise',
           '--cfg-options', *SMOKE_TRAIN, 'train_cfg.max_iters=4',
           'train_dataloader.dataset.ann_file=' + str(c.out / 'pseudo/train_pseudo.json'))
    return f'4 iterations, {Path(c.checkpoint("wise")).name}'


def test_refine(c: Check) -> str:
    log = c.tool('tools/test.py', DEMO / 'mask-rcnn_r18_shapes_pseudo_refine.py',
                 c.checkpoint('wise'), '--work-dir', 'wise/test')
    line = next((x for x in log.splitlines() if 'ProposalRefineHook (test): ' in x), None)
    if line is None:
        raise RuntimeError('the refine hook did not report')
    return line.split('ProposalRefineHook (test): ')[1]


def two_ranks(c: Check) -> str:
    import torch
    if not torch.cuda.is_available():
        raise Skipped('two ranks on one GPU need one')
    return c.tool('tools/setup/gpu_check.py', '--ranks', torchrun=2).strip().splitlines()[-1]


def ranks() -> None:
    """One of two torchrun ranks on GPU 0: DDP over gloo gives both the same gradient."""
    import torch
    import torch.distributed as dist
    dist.init_process_group('gloo')
    rank = dist.get_rank()
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 1).cuda(0))
    model(torch.full((2, 4), float(rank + 1), device='cuda:0')).sum().backward()
    grads = [torch.zeros(4) for _ in range(2)]
    dist.all_gather(grads, model.module.weight.grad[0].cpu())
    assert torch.equal(grads[0], grads[1]) and torch.allclose(grads[0], torch.full((4,), 3.))
    if rank == 0:
        print('2 ranks on cuda:0, gloo: DDP gradients averaged and equal')
    dist.destroy_process_group()


CHECKS: dict[str, Callable[[Check], str]] = dict(
    cuda_ops=cuda_ops, data=data, prm=prm, prm_amp=prm_amp, gen_pseudo=gen_pseudo,
    mask_rcnn=mask_rcnn, test_refine=test_refine, two_ranks=two_ranks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out', nargs='?', default=str(ROOT / 'work_dirs/gpu_check'))
    parser.add_argument('--only', nargs='+', choices=CHECKS, default=list(CHECKS),
                        help='run these checks again (each reads what earlier ones made)')
    parser.add_argument('--ranks', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ranks:
        ranks()
        return 0
    check = Check(Path(args.out).resolve())
    failed = 0
    for name in args.only:
        run = CHECKS[name]
        check.log = check.out / f'logs/{name}.log'
        check.log.write_text('')
        start = time.time()
        try:
            verdict = f'ok      {run(check)}'
        except Skipped as e:
            verdict = f'skipped {e}'
        except Exception as e:  # one line a check; the traceback is in its log
            failed += 1
            with check.log.open('a') as log:
                log.write(f'{type(e).__name__}: {e}\n')
            verdict = f'FAILED  {e} (log: {check.log})'
        print(f'[gpu_check] {name:<12} {time.time() - start:6.1f} s  {verdict}', flush=True)
    return 1 if failed else 0


if __name__ == '__main__':
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    sys.exit(main())
