"""``ProposalRefineHook``: WISE's proposal refinement of test predictions.

Switched on from a config::

    custom_hooks = [dict(type='ProposalRefineHook')]

or, by its type, from the command line: ``tools/test.py CONFIG CKPT --refine [DIR]``
(``enable_refinement``), which switches on the hook a config lists off (as the WISE
configs do) or adds one. By default the proposals are read from
``<data_root>/proposals/`` of the dataset under test, where tools/gen_proposals.py
writes them, so configs name no path and follow the test data wherever it is moved.

mmengine's test loop hands the model's outputs to the evaluator *before* any
``after_test_iter`` hook runs, so the refinement cannot be a hook step on the
outputs. Instead, ``before_test`` wraps the ``test_step`` of the (unwrapped)
model instance so that the DetDataSamples it returns are already refined, and
``after_test`` takes the wrapper off. DDP's ``test_step`` calls
``module.test_step``, so this works the same under ``tools/dist_test.sh``.
"""
from __future__ import annotations

import logging
import os.path as osp
import time
from typing import Any

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.dist import get_comm_device, is_distributed
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmdet.registry import HOOKS

from ..errors import DataError, ProposalError
from ..proposals import ProposalSource
from ..registry import PROPOSAL_SOURCES
from .proposal_refiner import refine


@HOOKS.register_module()
class ProposalRefineHook(Hook):
    """Replace each predicted mask by the object proposal of highest IoU with it.

    Args:
        proposals: a proposal source (config dict for ``PROPOSAL_SOURCES``, e.g.
            ``dict(type='precomputed', root=...)``, or an instance) giving the
            proposals of an image at its original size. None (the default): the
            precomputed proposals in ``<data_root>/proposals/`` of the dataset
            being evaluated, looked up when a run starts.
        min_iou: a prediction whose best IoU is below this (or 0) is kept as is.
        min_objectness: only proposals of objectness above this are candidates
            (WISE's released code: 0.75); None (the default): every proposal.
        apply_on_val: refine the validation runs during training too.
        enabled: False keeps the hook listed but idle, for ``tools/test.py --refine``
            to switch on.

    An image whose proposals cannot be had (missing file, ...) keeps its
    predictions, with one warning per image; a summary of refined / kept /
    proposal-less predictions is logged after each run.
    """

    priority = 'NORMAL'
    _STEPS = {'test': 'test_step', 'val': 'val_step'}

    def __init__(self, proposals: dict | ProposalSource | None = None, min_iou: float = 0.0,
                 min_objectness: float | None = None, apply_on_val: bool = False,
                 enabled: bool = True) -> None:
        if not 0.0 <= float(min_iou) <= 1.0:
            raise ValueError(f'min_iou must be in [0, 1], got {min_iou}')
        self._default_proposals = proposals is None
        self.source = PROPOSAL_SOURCES.build(proposals) if isinstance(proposals, dict) \
            else proposals
        self.min_iou = float(min_iou)
        self.min_objectness = None if min_objectness is None else float(min_objectness)
        self.apply_on_val = apply_on_val
        self.enabled = enabled
        self._installed: dict[str, tuple[Any, bool, Any]] = {}
        self._warned: set[str] = set()
        self._reset_counts()

    # ------------------------------------------------------------- the hooks
    def before_test(self, runner) -> None:
        if self.enabled:
            self._install(runner, 'test')

    def after_test(self, runner) -> None:
        self._uninstall('test', runner)

    def before_val(self, runner) -> None:
        if self.enabled and self.apply_on_val:
            self._install(runner, 'val')

    def after_val(self, runner) -> None:
        self._uninstall('val', runner)

    # --------------------------------------------------------- the machinery
    def _reset_counts(self) -> None:
        self.counts = dict(refined=0, kept=0, missing=0, missing_images=0, images=0, cpu_us=0)

    def _install(self, runner, mode: str) -> None:
        if self._default_proposals:
            loop = runner.test_loop if mode == 'test' else runner.val_loop
            self.source = proposals_under(loop.dataloader.dataset)
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        name = self._STEPS[mode]
        had_own = name in vars(model)  # an instance attribute to put back later
        original = getattr(model, name)

        def step_and_refine(data, *args, **kwargs):
            samples = original(data, *args, **kwargs)
            start = time.thread_time()  # this thread's CPU: the hook's own work only
            refined = [self.refine_sample(s) for s in samples]
            self.counts['images'] += len(refined)
            self.counts['cpu_us'] += round(1e6 * (time.thread_time() - start))
            return refined

        setattr(model, name, step_and_refine)
        self._installed[mode] = (model, had_own, original)
        self._reset_counts()

    def _uninstall(self, mode: str, runner) -> None:
        if mode not in self._installed:
            return
        model, had_own, original = self._installed.pop(mode)
        name = self._STEPS[mode]
        if had_own:
            setattr(model, name, original)
        else:
            delattr(model, name)
        self._log_summary(mode)

    def refine_sample(self, sample):
        """Refine one DetDataSample's ``pred_instances`` in place; returns it."""
        pred = sample.pred_instances
        if 'masks' not in pred:
            raise ValueError('ProposalRefineHook needs predicted masks (pred_instances.masks); '
                             'this model predicts none')
        n = len(pred)
        if not n:
            return sample
        h, w = (int(v) for v in sample.ori_shape)
        if tuple(pred.masks.shape[-2:]) != (h, w):
            raise ValueError(
                f'{sample.get("img_path", "")}: predicted masks are '
                f'{pred.masks.shape[-2]}x{pred.masks.shape[-1]} but the image is {h}x{w} '
                '(ori_shape); ProposalRefineHook needs masks at the original size '
                '(predict with rescale=True)')
        image = dict(img_path=sample.get('img_path'), height=h, width=w,
                     img_id=sample.get('img_id'))
        try:
            proposals = self.source(image)
        except ProposalError as e:
            key = str(image['img_path'] or image['img_id'])
            if key not in self._warned:
                self._warned.add(key)
                print_log(f'ProposalRefineHook: {e}; keeping the {n} predictions of this '
                          'image unrefined', logger='current', level=logging.WARNING)
            self.counts['missing'] += n
            self.counts['missing_images'] += 1
            return sample
        sample.pred_instances, refined = refine(pred, proposals, self.min_iou,
                                                return_refined=True,
                                                min_objectness=self.min_objectness)
        self.counts['refined'] += int(refined.sum())
        self.counts['kept'] += int((~refined).sum())
        return sample

    def _log_summary(self, mode: str) -> None:
        keys = list(self.counts)
        total = torch.tensor([self.counts[k] for k in keys], dtype=torch.int64,
                             device=get_comm_device() if is_distributed() else None)
        if is_distributed():  # over all ranks (NCCL's on the GPU)
            # Held by the hook: the last reference to a collective's work drops its
            # tensors, which takes the GIL; on a gloo worker thread while the interpreter
            # exits right after the test, that aborts the process (SIGABRT).
            self._summed = dist.all_reduce(total, async_op=True)
            self._summed.wait()
        c = dict(zip(keys, total.tolist()))
        why = f'best IoU < {self.min_iou:g} or no overlap' if self.min_iou > 0 else 'no overlap'
        if self.min_objectness is not None:
            why += f' with a proposal of objectness > {self.min_objectness:g}'
        print_log(f'ProposalRefineHook ({mode}): {c["refined"]} predictions refined, '
                  f'{c["kept"]} kept ({why}), '
                  f'{c["missing"]} kept on {c["missing_images"]} images without proposals; '
                  f'{c["cpu_us"] / 1e3:.1f} ms of CPU over {c["images"]} images',
                  logger='current',
                  level=logging.WARNING if c['missing_images'] else logging.INFO)


def precomputed_proposals(root: str) -> dict:
    """The source config of the proposals in folder ``root``, refused if it is missing
    (it would leave every prediction unrefined, with only warnings to say so)."""
    if not osp.isdir(root):
        raise DataError(f'{root}: no such folder of proposals (tools/gen_proposals.py writes '
                        'them; tools/test.py --refine DIR reads another)')
    return dict(type='precomputed', root=root)


def proposals_under(dataset: Any) -> ProposalSource:
    """The precomputed proposals in ``<data_root>/proposals/`` of ``dataset``."""
    data_root = getattr(dataset, 'data_root', None)
    if not data_root:
        raise DataError(f'ProposalRefineHook: the {type(dataset).__name__} under test has no '
                        'data_root to find proposals/ in; give the hook proposals=... '
                        '(tools/test.py --refine DIR)')
    return PROPOSAL_SOURCES.build(precomputed_proposals(osp.join(data_root, 'proposals')))


def enable_refinement(cfg: Config, proposals: str | None = None) -> None:
    """Switch on the ProposalRefineHook of ``cfg.custom_hooks``, found by its type (an
    index would hit whatever hook is listed first), or add one where none is listed.

    Args:
        cfg: the config, changed in place.
        proposals: a folder of precomputed proposals (one json per image) to read
            instead of the hook's own, by default ``<data_root>/proposals/``.
    """
    hooks = list(cfg.get('custom_hooks') or [])
    refine_hooks = [h for h in hooks if isinstance(h, dict)
                    and h.get('type') in ('ProposalRefineHook', ProposalRefineHook)]
    if not refine_hooks:
        refine_hooks = [dict(type='ProposalRefineHook')]
        hooks += refine_hooks
    for hook in refine_hooks:
        hook['enabled'] = True
        if proposals is not None:
            hook['proposals'] = precomputed_proposals(proposals)
    cfg.custom_hooks = hooks
