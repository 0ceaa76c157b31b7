"""Pseudo masks of one image: peaks -> one proposal each -> instances.

Every way an image can fall short (no image-level label, proposals missing or
unusable, a peak no proposal covers, a labelled class without a peak) is
counted in ``events``, so the report says what happened to every image and no
label is ever invented or silently dropped.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import ProposalError
from ..proposals import Proposals, ProposalSource
from .peak_set import PeakSet
from .selectors import SUPPRESSED, ProposalSelector

#: An instance's score (its confidence, by which a test ranks it), from the peaks and
#: the selector's own score of its choices (``ProposalSelector.choose``): 'peak', the
#: peak's value (PRM's and WISE's released code), or 'selection', that score (ILC's
#: ``instance_seg2`` returns the retrieval score; objectness for the other selectors).
INSTANCE_SCORES: dict[str, Callable[[PeakSet, np.ndarray], np.ndarray]] = {
    'peak': lambda peaks, selected: peaks.scores,
    'selection': lambda peaks, selected: selected,
}


@dataclass
class ImageResult:
    """What gen_pseudo keeps of one image: its instances and its events."""

    instances: list[dict] = field(default_factory=list)
    events: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    proposals: Proposals | None = None  # for the proposal-recall report


def pseudo_instances(peaks: PeakSet, image: dict, source: ProposalSource,
                     selector: ProposalSelector, rng: np.random.Generator,
                     instance_score: str = 'peak') -> ImageResult:
    """One instance per (class, chosen proposal), scored by ``instance_score``
    (:data:`INSTANCE_SCORES`); ``peaks`` are already filtered."""
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
    choice, selected = selector.choose(peaks, proposals, rng)
    score = INSTANCE_SCORES[instance_score](peaks, selected)
    result.events['uncovered_peaks'] += int((choice == -1).sum())
    result.events['suppressed_peaks'] += int((choice == SUPPRESSED).sum())
    seen: set[tuple[int, int]] = set()
    for k in np.argsort(-score, kind='stable'):  # the best-scored peak speaks for its mask
        key = (int(peaks.labels[k]), int(choice[k]))
        if key[1] < 0:
            continue
        if key in seen:
            result.events['duplicate_peaks'] += 1
            continue
        seen.add(key)
        result.instances.append(dict(
            label=key[0], rle=proposals.rles[key[1]], score=float(score[k]),
            objectness=float(proposals.scores[key[1]]),
            point=[round(float(v), 2) for v in peaks.points[k]]))
    result.events['instances'] += len(result.instances)
    return result
