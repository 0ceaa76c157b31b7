"""A trained PRM and its peaks on one image, as pseudo-mask generation uses them."""
from __future__ import annotations

import copy
import os.path as osp
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner import CheckpointLoader, load_state_dict

from mmdet.registry import MODELS

from ..errors import DataError
from .peak_set import PeakSet, restrict_to_counts, restrict_to_labels

#: ``prm_peaks(counts=PREDICTED)``: the model's own counts (PRM + Density)
PREDICTED = 'predicted'


def load_prm(cfg: Config, checkpoint: str, num_classes: int, device: torch.device | str,
             with_crm: bool = False, with_density: bool = False) -> torch.nn.Module:
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
                          'peak_thr': -float('inf'), 'with_prm': False, 'with_crm': with_crm,
                          **({'with_density': True} if with_density else {})}
    model = MODELS.build(model_cfg)
    load_state_dict(model, state, strict=True)
    return model.to(device).eval()


def prm_peaks(model: torch.nn.Module, item: dict, image_labels: Sequence[int] | None,
              score_thr: float, peak_thr: float, with_maps: bool, events: Counter,
              counts: Mapping[int, int] | str | None = None,
              with_density: bool = False) -> PeakSet:
    """The peaks of the labelled classes (``image_labels``), or else of the classes the
    PRM scores ``>= score_thr``, at the original resolution: those reaching
    ``peak_thr``, or as many as ``counts`` says (class -> objects, or
    :data:`PREDICTED`: the model's ``pred_counts``; :func:`restrict_to_counts`).
    With ``with_maps`` also the kept peaks' response maps and the class response
    maps, with ``with_density`` the density maps."""
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
    if counts == PREDICTED:
        if 'pred_counts' not in sample:
            raise DataError(f'{type(model).__name__} predicts no counts (PRMDensity does)')
        counts = {int(c): int(sample.pred_counts[c]) for c in image_labels}
    if counts is None:
        idx = restrict_to_labels(peaks, list(image_labels), peak_thr, events)
    else:
        idx = restrict_to_counts(peaks, {int(c): int(counts.get(c, 0)) for c in image_labels},
                                 peak_thr, events)
    peaks = peaks.subset(idx)
    if with_maps:  # backprop per kept peak only: all peaks would cost ~10x more
        keep = torch.from_numpy(idx).to(p.labels.device)
        peaks.prms = model.peak_maps(inputs, p.labels[keep], p.cells[keep], sample).cpu().numpy()
        peaks.crms = sample.pred_crms.cpu().numpy()
    if with_density:
        peaks.density = sample.pred_density.cpu().numpy()
    return peaks
