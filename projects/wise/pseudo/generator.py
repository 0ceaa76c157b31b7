"""Pseudo masks of one image: peaks -> one proposal each -> instances.

Every way an image can fall short (no image-level label, proposals missing or
unusable, a peak no proposal covers, a labelled class without a peak) is
counted in ``events``, so the report says what happened to every image and no
label is ever invented or silently dropped.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..proposals import ProposalError, Proposals, ProposalSource
from .selectors import SUPPRESSED, PeakSet, ProposalSelector


@dataclass
class ImageResult:
    """What gen_pseudo keeps of one image: its instances and its events."""

    instances: list[dict] = field(default_factory=list)
    events: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    proposals: Proposals | None = None  # for the proposal-recall report


def restrict_to_labels(peaks: PeakSet, image_labels: list[int], peak_thr: float,
                       events: Counter) -> np.ndarray:
    """Indices of the peaks of the image's labelled classes reaching ``peak_thr``; a
    labelled class whose peaks all fall short keeps its strongest one (it is known
    to be there)."""
    labelled = np.isin(peaks.labels, image_labels)
    keep = labelled & (peaks.scores >= peak_thr)
    for c in image_labels:
        mine = np.flatnonzero(peaks.labels == c)
        if not len(mine):
            events['labels_without_peak'] += 1
        elif not keep[mine].any():
            keep[mine[peaks.scores[mine].argmax()]] = True
            events['weak_peaks_kept'] += 1
    events['peaks_of_absent_classes'] += int((~labelled).sum())
    return np.flatnonzero(keep)


def restrict_to_counts(peaks: PeakSet, counts: dict[int, int], peak_thr: float,
                       events: Counter, max_exact: int = 4) -> np.ndarray:
    """Indices of the peaks of the counted classes, as many as each count says: the
    ``t`` strongest for a count ``t`` up to ``max_exact`` (whatever ``peak_thr``
    says), those reaching ``peak_thr`` but at least ``max_exact + 1`` for a count
    above it (known as "that many or more"). A class counted 0 (count unknown) keeps
    the peaks reaching ``peak_thr`` (:func:`restrict_to_labels`)."""
    keep = np.zeros(len(peaks), bool)
    uncounted: Counter = Counter()
    keep[restrict_to_labels(peaks, [c for c, t in counts.items() if t <= 0], peak_thr,
                            uncounted)] = True
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


def pseudo_instances(peaks: PeakSet, image: dict, source: ProposalSource,
                     selector: ProposalSelector, rng: np.random.Generator) -> ImageResult:
    """One instance per (class, chosen proposal); ``peaks`` are already filtered."""
    result = ImageResult()
    result.events['images'] += 1
    result.events['peaks'] += len(peaks)
    try:
        proposals = source(image)
    except ProposalError as e:
        result.events['images_without_proposals'] += 1
        result.errors.append(str(e))
        return result
    result.proposals = proposals
    if not len(peaks):
        return result
    choice = selector(peaks, proposals, rng)
    result.events['uncovered_peaks'] += int((choice == -1).sum())
    result.events['suppressed_peaks'] += int((choice == SUPPRESSED).sum())
    seen: set[tuple[int, int]] = set()
    for k in np.argsort(-peaks.scores, kind='stable'):  # the strongest peak speaks for its mask
        key = (int(peaks.labels[k]), int(choice[k]))
        if key[1] < 0:
            continue
        if key in seen:
            result.events['duplicate_peaks'] += 1
            continue
        seen.add(key)
        result.instances.append(dict(
            label=key[0], rle=proposals.rles[key[1]], score=float(peaks.scores[k]),
            objectness=float(proposals.scores[key[1]]),
            point=[round(float(v), 2) for v in peaks.points[k]]))
    result.events['instances'] += len(result.instances)
    return result
