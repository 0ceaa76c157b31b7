"""Selection strategies and pseudo instances on crafted peaks and proposals."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from projects.wise.proposals import ProposalError, Proposals
from projects.wise.pseudo import SELECTORS, PeakSet, pseudo_instances, restrict_to_labels


def _proposals() -> Proposals:
    """Three nested squares around (10, 10) and one square elsewhere, 32 x 32."""
    m = np.zeros((4, 32, 32), bool)
    m[0, 8:13, 8:13] = True     # small, objectness 0.1
    m[1, 5:16, 5:16] = True     # medium, 0.6
    m[2, 0:24, 0:24] = True     # large, 0.3
    m[3, 26:31, 26:31] = True   # elsewhere, 0.9
    return Proposals.from_masks(m, [0.1, 0.6, 0.3, 0.9], source='crafted')


def _peaks(points, labels=None, scores=None) -> PeakSet:
    points = np.asarray(points, float)
    return PeakSet(np.asarray(labels if labels is not None else [0] * len(points)), points,
                   np.asarray(scores if scores is not None else [1.0] * len(points)))


def test_best_objectness_takes_the_top_covering_proposal() -> None:
    sel = SELECTORS.build(dict(type='best_objectness'))
    choice = sel(_peaks([[10, 10], [20, 20], [28, 28], [2, 30]]), _proposals(),
                 np.random.default_rng(0))
    # (10,10): 0,1,2 cover -> 1; (20,20): only 2; (28,28): 3; (2,30): none
    assert choice.tolist() == [1, 2, 3, -1]


def test_objectness_sampling_draws_covering_proposals_by_objectness() -> None:
    sel = SELECTORS.build(dict(type='objectness_sampling'))
    props = _proposals()
    rng = np.random.default_rng(0)
    draws = Counter(int(sel(_peaks([[10, 10]]), props, rng)[0]) for _ in range(3000))
    assert set(draws) == {0, 1, 2}  # never the proposal that does not cover the peak
    freq = np.array([draws[i] for i in range(3)]) / 3000
    assert np.allclose(freq, [0.1, 0.6, 0.3], atol=0.03), freq
    # seeded: the same generator state gives the same picks
    a = sel(_peaks([[10, 10]] * 5), props, np.random.default_rng([7, 1]))
    b = sel(_peaks([[10, 10]] * 5), props, np.random.default_rng([7, 1]))
    assert a.tolist() == b.tolist()


def test_prm_retrieval_follows_the_peak_response() -> None:
    sel = SELECTORS.build(dict(type='prm_retrieval'))
    props = _proposals()
    prm = np.zeros((1, 32, 32))
    prm[0, 5:16, 5:16] = 1  # the peak's evidence fills the medium square exactly
    prm /= prm.sum()
    crms = np.zeros((1, 32, 32))
    crms[0, 5:16, 5:16] = 5.0
    peaks = PeakSet(np.array([0]), np.array([[10.0, 10.0]]), np.array([1.0]), prm, crms)
    assert sel(peaks, props, np.random.default_rng(0)).tolist() == [1]
    with pytest.raises(ValueError, match='peak response maps'):
        sel(_peaks([[10, 10]]), props, np.random.default_rng(0))


def test_duplicate_peaks_give_one_instance_and_uncovered_are_counted() -> None:
    props = _proposals()

    def source(image: dict) -> Proposals:
        return props

    peaks = _peaks([[10, 10], [11, 11], [2, 30], [10, 10]], labels=[0, 0, 0, 1],
                   scores=[2.0, 3.0, 1.0, 1.0])
    result = pseudo_instances(peaks, {}, source, SELECTORS.build(dict(type='best_objectness')),
                              np.random.default_rng(0))
    # two class-0 peaks pick proposal 1: one instance, scored by the stronger peak;
    # the class-1 peak on the same proposal is a different instance
    assert [(i['label'], i['score']) for i in result.instances] == [(0, 3.0), (1, 1.0)]
    assert result.events['duplicate_peaks'] == 1
    assert result.events['uncovered_peaks'] == 1
    assert result.events['instances'] == 2


def test_missing_proposals_are_counted_not_raised() -> None:
    def source(image: dict) -> Proposals:
        raise ProposalError('/data/proposals/x.json: file not found')

    result = pseudo_instances(_peaks([[10, 10]]), {}, source,
                              SELECTORS.build(dict(type='best_objectness')),
                              np.random.default_rng(0))
    assert result.instances == [] and result.events['images_without_proposals'] == 1
    assert result.errors == ['/data/proposals/x.json: file not found']


def test_restrict_to_labels_keeps_labelled_classes_and_their_best_peak() -> None:
    peaks = _peaks([[1, 1], [2, 2], [3, 3], [4, 4]], labels=[0, 0, 1, 2],
                   scores=[40.0, 5.0, 7.0, 50.0])
    events: Counter = Counter()
    idx = restrict_to_labels(peaks, [0, 1, 3], 30.0, events)
    # class 0: the 40 peak; class 1: only a weak peak, kept as its best; class 2 is
    # not labelled; class 3 is labelled but has no peak at all
    assert idx.tolist() == [0, 2]
    assert events == Counter(weak_peaks_kept=1, peaks_of_absent_classes=1,
                             labels_without_peak=1)
