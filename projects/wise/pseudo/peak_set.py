"""The peaks of one image, and which of them the image-level labels (or counts) keep.

The bottom of ``pseudo/``: peak extraction (peaks.py), the selectors and the generator
all read a ``PeakSet``; nothing here imports from them.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np


@dataclass
class PeakSet:
    """The peaks of one image at its original resolution.

    ``prms`` (K x H x W, each summing to 1) and ``crms`` (C x H x W class
    response maps) are only filled for selectors with ``needs_maps``, ``density``
    (C x H x W, PRM + Density's maps: their mean is the count) for those with
    ``needs_density``.
    """

    labels: np.ndarray  # (K,) 0-based class
    points: np.ndarray  # (K, 2) x, y pixels
    scores: np.ndarray  # (K,) peak response
    prms: np.ndarray | None = None
    crms: np.ndarray | None = None
    density: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray) -> PeakSet:
        return PeakSet(self.labels[idx], self.points[idx], self.scores[idx],
                       None if self.prms is None else self.prms[idx], self.crms, self.density)


def restrict_to_labels(peaks: PeakSet, image_labels: list[int], peak_thr: float,
                       events: Counter, weak_peaks: bool = True) -> np.ndarray:
    """Indices of the peaks of the image's labelled classes reaching ``peak_thr``; with
    ``weak_peaks``, a labelled class whose peaks all fall short keeps its strongest one
    (it is known to be there; neither released code does: without it, such a class
    counts in ``labels_below_peak_thr``)."""
    labelled = np.isin(peaks.labels, image_labels)
    keep = labelled & (peaks.scores >= peak_thr)
    for c in image_labels:
        mine = np.flatnonzero(peaks.labels == c)
        if not len(mine):
            events['labels_without_peak'] += 1
        elif not keep[mine].any() and weak_peaks:
            keep[mine[peaks.scores[mine].argmax()]] = True
            events['weak_peaks_kept'] += 1
        elif not keep[mine].any():
            events['labels_below_peak_thr'] += 1
    events['peaks_of_absent_classes'] += int((~labelled).sum())
    return np.flatnonzero(keep)


def restrict_to_counts(peaks: PeakSet, counts: dict[int, int], peak_thr: float,
                       events: Counter, max_exact: int = 4,
                       weak_peaks: bool = True) -> np.ndarray:
    """Indices of the peaks of the counted classes, as many as each count says: the
    ``t`` strongest for a count ``t`` up to ``max_exact`` (whatever ``peak_thr``
    says), those reaching ``peak_thr`` but at least ``max_exact + 1`` for a count
    above it (known as "that many or more"). A class counted 0 (count unknown) keeps
    the peaks reaching ``peak_thr`` (:func:`restrict_to_labels`, ``weak_peaks``)."""
    keep = np.zeros(len(peaks), bool)
    uncounted: Counter = Counter()
    keep[restrict_to_labels(peaks, [c for c, t in counts.items() if t <= 0], peak_thr,
                            uncounted, weak_peaks)] = True
    uncounted.pop('peaks_of_absent_classes')
    events.update(uncounted)
    for c, t in counts.items():
        if t <= 0:
            continue
        mine = np.flatnonzero(peaks.labels == c)
        mine = mine[np.argsort(-peaks.scores[mine], kind='stable')]
        if not len(mine):
            events['labels_without_peak'] += 1
        wanted = t if t <= max_exact else max(max_exact + 1,
                                              int((peaks.scores[mine] >= peak_thr).sum()))
        keep[mine[:wanted]] = True
        events['peaks_added_by_count'] += int((peaks.scores[mine[:wanted]] < peak_thr).sum())
        events['peaks_removed_by_count'] += int((peaks.scores[mine[wanted:]] >= peak_thr).sum())
        events['counted_classes_short_of_peaks'] += int(len(mine) < min(t, max_exact + 1))
    events['peaks_of_absent_classes'] += int((~np.isin(peaks.labels, list(counts))).sum())
    return np.flatnonzero(keep)
