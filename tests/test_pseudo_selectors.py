"""Selection strategies and pseudo instances on crafted peaks and proposals."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from pycocotools import mask as mask_util

from projects.wise.errors import DataError, OptionError, ProposalError
from projects.wise.proposals import Proposals
from projects.wise.pseudo import SUPPRESSED, GTPoints, PeakSet, pseudo_instances, restrict_to_labels
from projects.wise.registry import PROPOSAL_SELECTORS


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
    sel = PROPOSAL_SELECTORS.build(dict(type='best_objectness'))
    choice = sel(_peaks([[10, 10], [20, 20], [28, 28], [2, 30]]), _proposals(),
                 np.random.default_rng(0))
    # (10,10): 0,1,2 cover -> 1; (20,20): only 2; (28,28): 3; (2,30): none
    assert choice.tolist() == [1, 2, 3, -1]


def test_objectness_sampling_draws_covering_proposals_by_objectness() -> None:
    sel = PROPOSAL_SELECTORS.build(dict(type='objectness_sampling'))
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
    sel = PROPOSAL_SELECTORS.build(dict(type='prm_retrieval'))
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
    result = pseudo_instances(peaks, {}, source,
                              PROPOSAL_SELECTORS.build(dict(type='best_objectness')),
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
                              PROPOSAL_SELECTORS.build(dict(type='best_objectness')),
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


def test_weak_peaks_off_leaves_a_labelled_class_below_the_threshold_out() -> None:
    """``weak_peaks=False`` (``model.test_cfg.weak_peaks``; the released codes') keeps only
    peaks reaching the threshold. Catches the key ignored (class 1's weak peak kept)."""
    peaks = _peaks([[1, 1], [2, 2], [3, 3]], labels=[0, 0, 1], scores=[40.0, 5.0, 7.0])
    events: Counter = Counter()
    assert restrict_to_labels(peaks, [0, 1], 30.0, events, weak_peaks=False).tolist() == [0]
    assert events == Counter(labels_below_peak_thr=1)


# PRM retrieval: one crafted case per term and rule, where it alone decides.
# The peak's response map is uniform on R = rows/cols 10..19 of a 32 x 32 image.
R = (slice(10, 20), slice(10, 20))


def _boxes(*boxes: tuple[int, int, int, int], objectness=None) -> Proposals:
    """Square proposals (y0, y1, x0, x1), objectness falling in the given order."""
    m = np.zeros((len(boxes), 32, 32), bool)
    for i, (y0, y1, x0, x1) in enumerate(boxes):
        m[i, y0:y1, x0:x1] = True
    scores = objectness if objectness is not None else np.linspace(0.9, 0.1, len(boxes))
    return Proposals.from_masks(m, scores, source='crafted')


def _prm_peak(crm: np.ndarray | None = None, point=(15.0, 15.0), label: int = 0) -> PeakSet:
    prm = np.zeros((1, 32, 32))
    prm[(0, *R)] = 1 / 100
    crms = np.zeros((1, 32, 32)) if crm is None else crm
    return PeakSet(np.array([label]), np.array([point]), np.array([1.0]), prm, crms)


def _retrieve(peaks: PeakSet, props: Proposals, **cfg) -> list[int]:
    sel = PROPOSAL_SELECTORS.build(dict(type='prm_retrieval', **cfg))
    return sel(peaks, props, np.random.default_rng(0)).tolist()


A = (10, 20, 10, 20)   # R exactly: inside 1.0, inner contour band 0.64
B = (6, 24, 6, 24)     # R with a margin: inside 1.0, contour misses R
C = (12, 18, 12, 18)   # inside R: inside 0.36, its contour covers all of R (0.96)
E = (5, 25, 5, 25)     # like B, 76 pixels more background


def test_prm_retrieval_contour_term_decides() -> None:
    """A proposal hugging the response beats a looser one only through the contour term
    (a dropped or mis-sized contour picks the looser, higher-objectness B)."""
    props = _boxes(B, A)
    assert _retrieve(_prm_peak(), props) == [1]
    assert _retrieve(_prm_peak(), props, contour_width=1) == [0]  # no contour: a tie


def test_prm_retrieval_balance_decides() -> None:
    """A - C = balance * 0.64 - 0.32: balance 0.8 takes A, 0.3 takes C (a balance
    ignored or applied to the contour instead fails one of them)."""
    props = _boxes(A, C)
    assert _retrieve(_prm_peak(), props) == [0]
    assert _retrieve(_prm_peak(), props, balance=0.3) == [1]


def _offset_crm() -> np.ndarray:
    """A class map whose raw values never fall under 0.95 of the mean (no background)
    but whose 0..255 rescaled map is background outside R and S."""
    crm = np.full((1, 32, 32), 100.0)
    crm[0, 0:10, 0:10] = 109.6     # S: strong, away from R
    crm[(0, *R)] = 110.0
    return crm


def test_prm_retrieval_penalty_and_background_decide() -> None:
    """B and E tie on the response map; E holds 76 more background pixels. The
    penalty (subtracted) picks B; a penalty added picks E; so does a background that
    is never found (no rescaling of the class map, as scipy's imresize did, or
    bg_threshold 0): then objectness breaks the tie towards E."""
    props = _boxes(E, B)
    peak = _prm_peak(_offset_crm())
    assert _retrieve(peak, props) == [1]
    assert _retrieve(peak, props, penalty=-1e-5) == [0]
    assert _retrieve(peak, props, rescale_crm=False) == [0]
    assert _retrieve(peak, props, bg_threshold=0.0) == [0]


def test_prm_retrieval_uses_the_map_of_the_peaks_class() -> None:
    """Two classes, the same response: the class-1 map has background, the class-0
    map (constant) has none, so the two peaks pick differently (a background taken
    from the wrong class, or from class 0 for all, gives the same pick twice)."""
    crms = np.concatenate([np.full((1, 32, 32), 3.0), _offset_crm()])
    prm = _prm_peak().prms
    peaks = PeakSet(np.array([0, 1]), np.array([[15.0, 15.0]] * 2), np.ones(2),
                    np.concatenate([prm, prm]), crms)
    assert _retrieve(peaks, _boxes(E, B), nms_iou=None) == [0, 1]


def test_prm_retrieval_density_term_decides() -> None:
    """PRM + Density: B holds one object's worth of the class's density (mass 1), A,
    the contour's pick, 0.31 of it. A - B = 0.64 - w * 0.69: ILC's w = 0.2 keeps A,
    w = 1 takes B (a term never applied, added, or taken from the sum of the map
    instead of its share of the count keeps A at w = 1 or loses it at 0.2)."""
    peak = _prm_peak()
    peak.density = np.zeros((1, 32, 32))
    peak.density[0, 6:24, 6:24] = 32 * 32 / 18 ** 2
    props = _boxes(B, A)
    assert _retrieve(peak, props, density_weight=0.2) == [1]
    assert _retrieve(peak, props, density_weight=1.0) == [0]
    with pytest.raises(ValueError, match='density maps'):
        _retrieve(_prm_peak(), props, density_weight=0.2)


def test_prm_retrieval_scans_max_candidates_by_objectness() -> None:
    """Only the first max_candidates proposals by objectness are scored (PRM: 100):
    A, the best match, ranks last, so max_candidates=2 settles for C, and 1 for B."""
    props = _boxes(B, A, C, objectness=[0.9, 0.1, 0.5])
    assert _retrieve(_prm_peak(), props) == [1]
    assert _retrieve(_prm_peak(), props, max_candidates=2) == [2]
    assert _retrieve(_prm_peak(), props, max_candidates=1) == [0]


def test_prm_retrieval_size_limits() -> None:
    """Proposals outside the size limits (fractions of the image) are never taken:
    A covers 100 / 1024 of the image, B 324 / 1024, the whole image 1.0 (dropped by
    the released upper limit 0.85 though it holds all of the response)."""
    whole = (0, 32, 0, 32)
    props = _boxes(whole, B, A)
    assert _retrieve(_prm_peak(), props, contour_width=1) == [1]  # B before A on a tie
    assert _retrieve(_prm_peak(), props, contour_width=1, size_limits=(0, 1.01)) == [0]
    assert _retrieve(_prm_peak(), props, size_limits=(0.0, 0.09)) == [-1]
    assert _retrieve(_prm_peak(), props, size_limits=(0.1, 0.85), contour_width=1) == [1]


def test_prm_retrieval_scores_proposals_that_miss_the_peak() -> None:
    """The released retrieval scores proposals whether or not they contain the peak;
    require_cover keeps only those that do (here: none)."""
    peak = _prm_peak(point=(2.0, 30.0))
    assert _retrieve(peak, _boxes(B, A)) == [1]
    assert _retrieve(peak, _boxes(B, A), require_cover=True) == [-1]


def test_prm_retrieval_work_size_scales_the_contour() -> None:
    """``work_size`` (PRM's released retrieval works at its 448 x 448 input) counts the
    contour's 5 px there: at the image's size C's contour covers nearly all of R and C
    wins; at 64 x 64, twice the image, it covers less of R than B holds, and B wins.
    Catches the key ignored."""
    assert _retrieve(_prm_peak(), _boxes(C, B)) == [0]
    assert _retrieve(_prm_peak(), _boxes(C, B), work_size=(64, 64)) == [1]
    with pytest.raises(OptionError, match=r'work_size=448: give \(h, w\)'):
        _retrieve(_prm_peak(), _boxes(C, B), work_size=448)


def test_prm_retrieval_instance_nms_is_class_agnostic() -> None:
    """Peaks whose retrieved masks overlap at IoU >= nms_iou keep only the best-scored
    one, whatever their classes (PRM's instance_nms); the other is SUPPRESSED and
    counted as such."""
    prm = _prm_peak().prms
    weak = prm.copy()
    weak[0, 10:20, 15:20] = 0  # half of the response: A scores lower for this peak
    weak /= weak.sum()
    crms = np.zeros((2, 32, 32))
    peaks = PeakSet(np.array([1, 0]), np.array([[15.0, 15.0]] * 2), np.array([1.0, 2.0]),
                    np.concatenate([weak, prm]), crms)
    props = _boxes(A, (24, 32, 24, 32))
    assert _retrieve(peaks, props, nms_iou=None) == [0, 0]
    assert _retrieve(peaks, props) == [SUPPRESSED, 0]
    result = pseudo_instances(peaks, {}, lambda image: props,
                              PROPOSAL_SELECTORS.build(dict(type='prm_retrieval')),
                              np.random.default_rng(0))
    assert [i['label'] for i in result.instances] == [0]
    assert result.events['suppressed_peaks'] == 1 and result.events['uncovered_peaks'] == 0


def test_oracle_maps_categories_by_name(tmp_path) -> None:
    """GT centres get their class by category name, not by the category's position in
    the json: a file listing its categories in another order must label the same (the
    old mapping by position labelled a 'square' as 'circle'); a category outside the
    classes names the file."""
    mask = np.zeros((20, 20), np.uint8, order='F')
    mask[2:9, 3:12] = 1
    rle = mask_util.encode(mask)
    seg = dict(size=[20, 20], counts=rle['counts'].decode())
    data = dict(images=[dict(id=1, height=20, width=20, file_name='a.jpg')],
                categories=[dict(id=7, name='square'), dict(id=3, name='circle')],
                annotations=[dict(id=1, image_id=1, category_id=7, segmentation=seg,
                                  iscrowd=0)])
    ann = tmp_path / 'gt.json'
    ann.write_text(json.dumps(data))
    peaks = GTPoints(str(ann), ('circle', 'square'))(1, (20, 20))
    assert peaks.labels.tolist() == [1]
    (x, y), = peaks.points.tolist()
    assert 5 <= x <= 9 and y == 5  # an innermost pixel of the box
    with pytest.raises(DataError, match=r'gt\.json: category id 7 is not one of the classes'):
        GTPoints(str(ann), ('circle', 'star'))(1, (20, 20))


def _long_object() -> Proposals:
    """An elongated object (a 4 x 24 bar) and its two halves as proposals, plus a blob."""
    m = np.zeros((4, 32, 32), bool)
    m[0, 4:8, 4:28] = True      # the whole bar, objectness 0.5
    m[1, 4:8, 4:16] = True      # left half, 0.6
    m[2, 4:8, 16:28] = True     # right half, 0.6
    m[3, 20:28, 20:28] = True   # a blob, 0.9
    return Proposals.from_masks(m, [0.5, 0.6, 0.6, 0.9], source='crafted')


@pytest.mark.parametrize('options', [{}, dict(peak_ratio=0.2), dict(class_nms_iou=0.5)])
def test_options_off_or_idle_keep_the_papers_draws(options: dict) -> None:
    """Bug caught: an option that changes the random draws of peaks it keeps (the
    paper's sampling would then differ run to run with an idle option)."""
    peaks = _peaks([[10, 10], [28, 28], [20, 20]], labels=[0, 1, 2], scores=[3.0, 2.0, 1.0])
    plain = PROPOSAL_SELECTORS.build(dict(type='objectness_sampling'))
    with_option = PROPOSAL_SELECTORS.build(dict(type='objectness_sampling', **options))
    for seed in range(20):
        a = plain(peaks, _proposals(), np.random.default_rng([seed, 0]))
        b = with_option(peaks, _proposals(), np.random.default_rng([seed, 0]))
        assert a.tolist() == b.tolist()


def test_peak_ratio_drops_weak_peaks_of_a_class_only() -> None:
    """Bug caught: a relative threshold taken over all classes (a class whose peaks
    are all weaker than another class's would lose its only instance)."""
    sel = PROPOSAL_SELECTORS.build(dict(type='best_objectness', peak_ratio=0.5))
    peaks = _peaks([[10, 10], [28, 28], [20, 20]], labels=[0, 0, 1], scores=[10.0, 4.0, 1.0])
    # class 0: 4 < 0.5 * 10 -> suppressed; class 1's only (weak) peak stays
    assert sel(peaks, _proposals(), np.random.default_rng(0)).tolist() == [1, SUPPRESSED, 2]


def test_absorb_merges_peaks_along_one_object_not_other_classes() -> None:
    """Bug caught: several peaks on one elongated object each becoming an instance, or
    a peak of another class inside the mask being absorbed too."""
    props = _long_object()
    peaks = _peaks([[6, 5], [22, 5], [14, 6]], labels=[0, 0, 1], scores=[3.0, 2.0, 1.0])
    choice = PROPOSAL_SELECTORS.build(dict(type='best_objectness', absorb=True))(
        peaks, props, np.random.default_rng(0))
    # each peak's best proposal is its half (0.6 > 0.5); the halves do not contain
    # each other's peaks: both kept
    assert choice.tolist()[:2] == [1, 2]

    class Whole(type(PROPOSAL_SELECTORS.build(dict(type='best_objectness')))):
        def select(self, peaks, proposals, rng):
            return np.zeros(len(peaks), np.int64)  # every peak takes the whole bar

    choice = Whole(absorb=True)(peaks, props, np.random.default_rng(0))
    # the weaker class-0 peak lies inside the stronger one's bar: absorbed; the
    # class-1 peak inside the same bar is another class: kept
    assert choice.tolist() == [0, SUPPRESSED, 0]


def test_class_nms_removes_overlapping_instances_of_one_class() -> None:
    """Bug caught: NMS across classes (two classes on one proposal are two instances)
    or keeping the weaker of two overlapping same-class instances."""
    props = _proposals()

    class Fixed(type(PROPOSAL_SELECTORS.build(dict(type='best_objectness')))):
        def select(self, peaks, proposals, rng):
            return np.array([1, 2, 1])  # medium, large, medium

    peaks = _peaks([[10, 10], [20, 20], [10, 10]], labels=[0, 0, 1], scores=[1.0, 2.0, 1.0])
    # IoU(medium 11x11, large 24x24) = 121 / 576 = 0.21
    assert Fixed(class_nms_iou=0.2)(peaks, props, np.random.default_rng(0)).tolist() == \
        [SUPPRESSED, 2, 1]
    assert Fixed(class_nms_iou=0.3)(peaks, props, np.random.default_rng(0)).tolist() == [1, 2, 1]


@pytest.mark.parametrize('selector', ['best_objectness', 'objectness_sampling'])
def test_cover_radius_reaches_a_thin_object_next_to_the_peak(selector: str) -> None:
    """Bug caught: a peak that lands a pixel off a thin object (in a ring's hole, beside
    a bar: the response map only knows the peak to a cell) finds only the background
    region around it, or the radius is ignored by a strategy."""
    m = np.zeros((2, 32, 32), bool)
    m[0, 10:12, 4:28] = True    # a bar 2 px high, objectness 0.8
    m[1] = ~m[0]                # the background around it, 0.01
    props = Proposals.from_masks(m, [0.8, 0.01], source='crafted')
    peaks = _peaks([[16, 13]])  # two rows below the bar
    rng = np.random.default_rng(0)
    assert PROPOSAL_SELECTORS.build(dict(type=selector))(peaks, props, rng).tolist() == [1]
    near = PROPOSAL_SELECTORS.build(dict(type=selector, cover_radius=2))
    assert Counter(int(near(peaks, props, rng)[0]) for _ in range(200))[0] > 190
    far = PROPOSAL_SELECTORS.build(dict(type=selector, cover_radius=1))
    assert far(peaks, props, rng).tolist() == [1]


def test_drawings_judge_peaks_and_instances_as_voc_matches_them() -> None:
    """Bug caught: a second peak or instance on one object judged a hit (the drawings of
    gen_pseudo --show-dir and vis_peaks would hide the over-firing they are for), or a
    hit on an object of another class."""
    from projects.wise.pseudo.visualization import draw_pseudo_masks, judge_instances, judge_peaks
    props = _proposals()
    gt_rles, gt_labels = [props.rles[1], props.rles[3]], [0, 1]  # medium square, far square
    assert judge_peaks(np.array([[10, 10], [11, 11], [28, 28], [20, 20]]), [0, 0, 0, 0],
                       gt_rles, gt_labels) == ['tp', 'duplicate', 'fp', 'fp']
    assert judge_instances([props.rles[1], props.rles[1], props.rles[2], props.rles[3]],
                           [0, 0, 0, 1], gt_rles, gt_labels) == ['tp', 'duplicate', 'fp', 'tp']
    anns = [dict(segmentation=props.rles[i], category_id=1, score=s, point=[10, 10])
            for i, s in ((1, 0.9), (1, 0.5))]
    image = np.zeros((32, 32, 3), np.uint8)
    drawn = draw_pseudo_masks(image, anns, ['a', 'b'], (gt_rles, gt_labels))
    assert drawn.shape == (32 + 14, 32, 3)  # the header with the tally


def test_instance_score_selection_is_the_selectors_own_score() -> None:
    """``instance_score='selection'`` (``model.test_cfg.instance_score``) scores an instance
    by what chose it: PRM's retrieval score (ILC's confidence: 0.8 x 1.0 inside + 0.64 on
    the contour of A, no background) or the objectness; 'peak' by the peak's value.
    Catches the key ignored (1.0, the peak's value, every time)."""
    props = _boxes(A, B)

    def score(selector: str, instance_score: str) -> float:
        [inst] = pseudo_instances(_prm_peak(), {}, lambda image: props,
                                  PROPOSAL_SELECTORS.build(dict(type=selector)),
                                  np.random.default_rng(0), instance_score).instances
        return inst['score']

    assert score('prm_retrieval', 'peak') == score('best_objectness', 'peak') == 1.0
    assert score('prm_retrieval', 'selection') == pytest.approx(0.8 + 0.64)
    assert score('best_objectness', 'selection') == pytest.approx(0.9)
