"""ILC's second training stage: the density maps' spatial losses from a given epoch."""
from __future__ import annotations

from typing import Any

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet.registry import HOOKS


@HOOKS.register_module()
class SpatialCountLossHook(Hook):
    """Switch a :class:`~projects.wise.models.PRMDensity`'s ``spatial_loss`` on from
    epoch (or, with ``by_epoch=False``, iteration) ``begin``, 0-based; before it the
    model learns counts from their image-level values only (ILC's first stage).

    The switch is set before every step from the runner's position, so a resumed
    run is in the right stage.
    """

    priority = 'NORMAL'

    def __init__(self, begin: int, by_epoch: bool = True) -> None:
        self.begin = begin
        self.by_epoch = by_epoch

    def before_train_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        now = runner.epoch if self.by_epoch else runner.iter
        model.spatial_loss = now >= self.begin
