"""Which classes and peaks of an image a PRM reports: ``test_cfg``'s thresholds, with
ILC's two fallbacks as options (docs/counts.md).

The functions take one image's class scores and peak values, as torch tensors (the
model's ``predict``) or numpy arrays (gen_pseudo's peak sets).
"""
from __future__ import annotations

from typing import Any


def class_threshold(scores: Any, score_thr: float, score_fallback: bool = False) -> float:
    """The class score a class needs. With ``score_fallback`` (ILC's released
    ``forward``), an image where no class reaches ``score_thr`` lowers it to its lowest
    class score: every class passes, and only the peak threshold decides."""
    if score_fallback and len(scores) and float(scores.max()) < score_thr:
        return float(scores.min())
    return score_thr


def peak_value_threshold(values: Any, peak_thr: float, cap_peak_thr: bool = False) -> float:
    """The value a peak needs, given the ``values`` of the peaks of the classes kept.
    With ``cap_peak_thr`` (ILC's) it is at most the strongest of them, so that an
    image keeps at least one peak."""
    if cap_peak_thr and len(values):
        return min(peak_thr, float(values.max()))
    return peak_thr


def kept_classes(scores: Any, score_thr: float, score_fallback: bool = False) -> Any:
    """Boolean per class: its score reaches :func:`class_threshold`."""
    return scores >= class_threshold(scores, score_thr, score_fallback)


def kept_peaks(scores: Any, labels: Any, values: Any, score_thr: float, peak_thr: float,
               score_fallback: bool = False, cap_peak_thr: bool = False) -> Any:
    """Boolean per peak (class ``labels``, ``values``) of one image with class
    ``scores``: of a kept class (:func:`kept_classes`) and reaching
    :func:`peak_value_threshold` of the kept classes' peaks."""
    of_kept = kept_classes(scores, score_thr, score_fallback)[labels]
    return of_kept & (values >= peak_value_threshold(values[of_kept], peak_thr, cap_peak_thr))
