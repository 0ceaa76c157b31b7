"""A trained PRM and its peaks on one image, as pseudo-mask generation uses them."""
from __future__ import annotations

import copy
import os.path as osp
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner import CheckpointLoader, load_state_dict

from mmdet.registry import MODELS

from ..utils.io import DataError
from .generator import restrict_to_labels
from .selectors import PeakSet


def load_prm(cfg: Config, checkpoint: str, num_classes: int, device: torch.device | str,
             with_crm: bool = False) -> torch.nn.Module:
    """The config's PRM classifier with ``checkpoint``'s weights, in eval mode.

    Its ``test_cfg`` reports every class and every peak: thresholds are applied by
    :func:`prm_peaks`, which must see the peaks that miss them. A checkpoint of
    another class count is refused before the model is built.
    """
    if not osp.isfile(checkpoint):
        raise DataError(f'{checkpoint}: checkpoint not found')
    state = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    state = state.get('state_dict', state)
    weight = state.get('classifier.weight')
    if weight is None:
        raise DataError(f'{checkpoint}: not a PRM classifier checkpoint (no classifier.weight)')
    if weight.shape[0] != num_classes:
        raise DataError(f'{checkpoint}: trained for {weight.shape[0]} classes, the dataset has '
                        f'{num_classes}')
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.test_cfg = {**model_cfg.get('test_cfg', {}), 'score_thr': -float('inf'),
                          'peak_thr': -float('inf'), 'with_prm': False, 'with_crm': with_crm}
    model = MODELS.build(model_cfg)
    load_state_dict(model, state, strict=True)
    return model.to(device).eval()


def prm_peaks(model: torch.nn.Module, item: dict, image_labels: Sequence[int] | None,
              score_thr: float, peak_thr: float, with_maps: bool, events: Counter) -> PeakSet:
    """The peaks of the labelled classes (``image_labels``), or else of the classes the
    PRM scores ``>= score_thr``, at the original resolution; with ``with_maps`` also
    the kept peaks' response maps and the class response maps."""
    device = next(model.parameters()).device
    data = model.data_preprocessor(pseudo_collate([item]), False)
    inputs = data['inputs'].to(device)
    with torch.no_grad():
        [sample] = model.predict(inputs, data['data_samples'])
    if image_labels is None:
        image_labels = torch.nonzero(sample.pred_scores >= score_thr)[:, 0].tolist()
    p = sample.pred_peaks
    peaks = PeakSet(p.labels.cpu().numpy(), p.points.cpu().numpy().astype(np.float64),
                    p.scores.cpu().numpy().astype(np.float64))
    idx = restrict_to_labels(peaks, list(image_labels), peak_thr, events)
    peaks = peaks.subset(idx)
    if with_maps:  # backprop per kept peak only: all peaks would cost ~10x more
        keep = torch.from_numpy(idx).to(p.labels.device)
        peaks.prms = model.peak_maps(inputs, p.labels[keep], p.cells[keep], sample).cpu().numpy()
        peaks.crms = sample.pred_crms.cpu().numpy()
    return peaks
