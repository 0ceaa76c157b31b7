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

from ..errors import ProposalError
from ..proposals import Proposals, ProposalSource
from .peak_set import PeakSet
from .selectors import SUPPRESSED, ProposalSelector


@dataclass
class ImageResult:
    """What gen_pseudo keeps of one image: its instances and its events."""

    instances: list[dict] = field(default_factory=list)
    events: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    proposals: Proposals | None = None  # for the proposal-recall report


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
