"""A trained PRM and its peaks on one image, as pseudo-mask generation uses them."""
from __future__ import annotations

import copy
import os.path as osp
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner import CheckpointLoader, load_state_dict

from mmdet.registry import MODELS

from ..errors import DataError
from ..models.inference_rules import kept_classes, peak_value_threshold
from ..models.peak_points import peak_point_fn
from .peak_set import PeakSet, restrict_to_counts, restrict_to_labels

#: ``prm_peaks(counts=PREDICTED)``: the model's own counts (PRM + Density)
PREDICTED = 'predicted'


@dataclass(frozen=True)
class PeakRules:
    """Which of a PRM's peaks gen_pseudo keeps, and where they are: the keys of the
    config's ``model.test_cfg`` (docs/fidelity.md, docs/counts.md).

    ``score_thr`` (classes the PRM reports, without image labels), ``peak_thr``,
    ILC's ``score_fallback`` and ``cap_peak_thr`` (``models/inference_rules.py``),
    ``weak_peaks`` (a kept class whose peaks all miss ``peak_thr`` keeps its strongest,
    :func:`restrict_to_labels`) and ``peak_point`` (``models/peak_points.py``).
    """

    score_thr: float = 0.0
    peak_thr: float = 0.0
    score_fallback: bool = False
    cap_peak_thr: bool = False
    weak_peaks: bool = True
    peak_point: str = 'cell'

    @classmethod
    def from_test_cfg(cls, test_cfg: Mapping, peak_thr: float | None = None) -> PeakRules:
        """The rules a config's ``test_cfg`` states (``peak_thr``: overrides its own)."""
        peak_point_fn(test_cfg.get('peak_point', cls.peak_point))  # a typo fails here
        return cls(score_thr=float(test_cfg.get('score_thr', cls.score_thr)),
                   peak_thr=float(test_cfg.get('peak_thr', cls.peak_thr)
                                  if peak_thr is None else peak_thr),
                   **{k: test_cfg[k] for k in ('score_fallback', 'cap_peak_thr', 'weak_peaks',
                                               'peak_point') if k in test_cfg})


def load_prm(cfg: Config, checkpoint: str, num_classes: int, device: torch.device | str,
             with_crm: bool = False, with_density: bool = False) -> torch.nn.Module:
    """The config's PRM classifier with ``checkpoint``'s weights, in eval mode.

    Its ``test_cfg`` reports every class and every peak at its cell: thresholds and
    points are :func:`prm_peaks`' (:class:`PeakRules`), which must see the peaks that
    miss them, and places only those kept. A checkpoint of
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
                          'peak_thr': -float('inf'), 'peak_point': 'cell', 'with_prm': False,
                          'with_crm': with_crm,
                          **({'with_density': True} if with_density else {})}
    model = MODELS.build(model_cfg)
    load_state_dict(model, state, strict=True)
    return model.to(device).eval()


def prm_peaks(model: torch.nn.Module, item: dict, image_labels: Sequence[int] | None,
              rules: PeakRules, with_maps: bool, events: Counter,
              counts: Mapping[int, int] | str | None = None,
              with_density: bool = False) -> PeakSet:
    """The peaks of the labelled classes (``image_labels``), or else of the classes the
    PRM reports (``rules.score_thr``, ``rules.score_fallback``), at the original
    resolution: those reaching the peak threshold (``rules``), or as many as ``counts``
    says (class -> objects, or :data:`PREDICTED`: the model's ``pred_counts``;
    :func:`restrict_to_counts`), each at its ``rules.peak_point``. With ``with_maps``
    also the kept peaks' response maps and the class response maps, with
    ``with_density`` the density maps."""
    device = next(model.parameters()).device
    data = model.data_preprocessor(pseudo_collate([item]), False)
    inputs = data['inputs'].to(device)
    with torch.no_grad():
        [sample] = model.predict(inputs, data['data_samples'])
    if image_labels is None:
        image_labels = torch.nonzero(kept_classes(sample.pred_scores, rules.score_thr,
                                                  rules.score_fallback))[:, 0].tolist()
    p = sample.pred_peaks
    peaks = PeakSet(p.labels.cpu().numpy(), p.points.cpu().numpy().astype(np.float64),
                    p.scores.cpu().numpy().astype(np.float64))
    peak_thr = peak_value_threshold(peaks.scores[np.isin(peaks.labels, list(image_labels))],
                                    rules.peak_thr, rules.cap_peak_thr)
    if counts == PREDICTED:
        if 'pred_counts' not in sample:
            raise DataError(f'{type(model).__name__} predicts no counts (PRMDensity does)')
        counts = {int(c): int(sample.pred_counts[c]) for c in image_labels}
    if counts is None:
        idx = restrict_to_labels(peaks, list(image_labels), peak_thr, events, rules.weak_peaks)
    else:
        idx = restrict_to_counts(peaks, {int(c): int(counts.get(c, 0)) for c in image_labels},
                                 peak_thr, events, weak_peaks=rules.weak_peaks)
    peaks = peaks.subset(idx)
    keep = torch.from_numpy(idx).to(p.labels.device)
    points = peak_point_fn(rules.peak_point)(model, inputs, p.labels[keep], p.cells[keep],
                                             p.points[keep], sample)
    peaks.points = points.cpu().numpy().astype(np.float64)
    if with_maps:  # backprop per kept peak only: all peaks would cost ~10x more
        peaks.prms = model.peak_maps(inputs, p.labels[keep], p.cells[keep], sample).cpu().numpy()
        peaks.crms = sample.pred_crms.cpu().numpy()
    if with_density:
        peaks.density = sample.pred_density.cpu().numpy()
    return peaks
