"""The tool command lines the stages run: training, testing, gen_pseudo.

One process trains with ``tools/train.py``; several with ``tools/dist_train.sh`` and
``--scale-schedule`` (the config's one-process recipe kept on N,
utils/batch_scaling.py); tests and gen_pseudo likewise run under torchrun on several
(``dist_test.sh``, ``dist_gen_pseudo.sh``). A checkpoint is read from the
``last_checkpoint`` file mmengine writes, so such commands run under ``bash -c``.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from .stage import Command

#: --smoke: every stage's code path with the preset's own configs in minutes: a
#: handful of iterations, no ImageNet weights (nothing is downloaded), no validation
#: during training (the test stages evaluate), no worker processes, checkpoints without
#: the optimizer's state (half an R-50 Mask R-CNN's 350 MB; nothing resumes them).
SMOKE_TRAIN = ('model.backbone.init_cfg=None', 'val_cfg=None', 'val_dataloader=None',
               'val_evaluator=None', 'train_dataloader.num_workers=0',
               'train_dataloader.persistent_workers=False',
               'default_hooks.checkpoint.save_optimizer=False')
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


def _with_checkpoint(tool: str, cfg: str, work: str, gpus: int) -> list[str]:
    """``tools/<tool>.py cfg <last checkpoint in work>`` by this interpreter, or on
    several GPUs under torchrun (``tools/dist_<tool>.sh``, which takes NPROC next)."""
    if gpus > 1:
        return ['bash', f'tools/dist_{tool}.sh', cfg, checkpoint(work), str(gpus)]
    return [sys.executable, f'tools/{tool}.py', cfg, checkpoint(work)]


def test(cfg: str, work: str, prefix: str, gpus: int, options: Sequence[str] = ()) -> Command:
    """The last checkpoint in ``work`` tested, its metrics written to ``<prefix>.*``."""
    return shell(*_with_checkpoint('test', cfg, work, gpus), '--work-dir', f'{work}/test',
                 '--cfg-options', f'test_evaluator.outfile_prefix={prefix}', *options)


def gen_pseudo(cfg: str, model_work: str, seed: int | None, gpus: int, *args: str) -> Command:
    """tools/gen_pseudo.py with ``cfg`` and the last checkpoint in ``model_work``; on
    several GPUs each rank labels every N-th image and the last to finish merges."""
    return shell(*_with_checkpoint('gen_pseudo', cfg, model_work, gpus),
                 *([] if seed is None else ['--seed', str(seed)]), *args)


def relabel(cfg: str, model_work: str, gpus: int, *args: str) -> Command:
    """tools/relabel.py with the detector ``cfg`` and the last checkpoint in
    ``model_work``; sharded over several GPUs as gen_pseudo is."""
    return shell(*_with_checkpoint('relabel', cfg, model_work, gpus), *args)


def prm_test(cfg: str, work: str, gpus: int, options: Sequence[str]) -> list[Command]:
    """A PRM's classification, peak and counting metrics on val (on several GPUs under
    torchrun, as its validation during training), and its peaks drawn (8 images, one
    process)."""
    return [shell(*_with_checkpoint('test', cfg, work, gpus), '--work-dir', f'{work}/test',
                  *(['--cfg-options', *options] if options else [])),
            shell(sys.executable, 'tools/vis_peaks.py', cfg, checkpoint(work), '--out-dir',
                  f'{work}/vis', '--num', '8')]
