"""The tool command lines the stages run: training, testing, gen_pseudo.

One process trains with ``tools/train.py``; several with ``tools/dist_train.sh`` and
``--scale-schedule`` (the config's one-process recipe kept on N,
utils/batch_scaling.py). A checkpoint is read from the ``last_checkpoint`` file
mmengine writes, so such commands run under ``bash -c``.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from .stage import Command

#: --smoke: every stage's code path with the preset's own configs in minutes: a
#: handful of iterations, no ImageNet weights (nothing is downloaded), no validation
#: during training (the test stages evaluate), no worker processes.
SMOKE_TRAIN = ('model.backbone.init_cfg=None', 'val_cfg=None', 'val_dataloader=None',
               'val_evaluator=None', 'train_dataloader.num_workers=0',
               'train_dataloader.persistent_workers=False')
SMOKE_DETECTOR = ('train_cfg.max_iters=1',)
SMOKE_TEST = ('test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False')


def smoke_prm(gpus: int) -> tuple[str, ...]:
    """--smoke's PRM: one epoch of one batch that ``--scale-schedule`` can split over
    ``gpus`` processes (an epoch loop keeps its total batch, which must divide): the
    smallest multiple of ``gpus`` from 2, as many images."""
    batch = gpus * -(-2 // gpus)
    return ('train_cfg.max_epochs=1', f'train_dataloader.batch_size={batch}',
            f'train_dataloader.dataset.indices={batch}')


def python(script: str, *args: str) -> Command:
    """A project tool run by this interpreter."""
    return [sys.executable, script, *args]


def shell(*words: str) -> Command:
    """One ``bash -c`` line (it expands ``$(cat <work>/last_checkpoint)``)."""
    return ['bash', '-c', ' '.join(words)]


def checkpoint(work: str) -> str:
    """The last checkpoint of the training in ``work``, as the shell reads it."""
    return f'$(cat {work}/last_checkpoint)'


def train(cfg: str, work: str, gpus: int, options: Sequence[str]) -> Command:
    tail = ['--work-dir', work, *(['--cfg-options', *options] if options else [])]
    if gpus > 1:
        return ['bash', 'tools/dist_train.sh', cfg, str(gpus), '--scale-schedule', *tail]
    return python('tools/train.py', cfg, *tail)


def test(cfg: str, work: str, prefix: str, gpus: int, options: Sequence[str] = ()) -> Command:
    """The last checkpoint in ``work`` tested, its metrics written to ``<prefix>.*``."""
    tail = ['--work-dir', f'{work}/test',
            '--cfg-options', f'test_evaluator.outfile_prefix={prefix}', *options]
    if gpus > 1:
        return shell('bash', 'tools/dist_test.sh', cfg, checkpoint(work), str(gpus), *tail)
    return shell(sys.executable, 'tools/test.py', cfg, checkpoint(work), *tail)


def gen_pseudo(cfg: str, model_work: str, seed: int | None, *args: str) -> Command:
    """tools/gen_pseudo.py with ``cfg`` and the last checkpoint in ``model_work``."""
    return shell(sys.executable, 'tools/gen_pseudo.py', cfg, checkpoint(model_work),
                 *([] if seed is None else ['--seed', str(seed)]), *args)


def prm_test(cfg: str, work: str, options: Sequence[str]) -> list[Command]:
    """A PRM's classification, peak and counting metrics on val, and its peaks drawn."""
    ckpt = checkpoint(work)
    return [shell(sys.executable, 'tools/test.py', cfg, ckpt, '--work-dir', f'{work}/test',
                  *(['--cfg-options', *options] if options else [])),
            shell(sys.executable, 'tools/vis_peaks.py', cfg, ckpt, '--out-dir', f'{work}/vis',
                  '--num', '8')]
