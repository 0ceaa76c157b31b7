"""How a peak picks its proposal: the registered selection strategies.

WISE's paper samples among the proposals covering a peak with probability
proportional to objectness (a de-noising of the pseudo masks); the authors'
code takes the most objectness; PRM scores proposals against the peak's
response map. All see the same ``PeakSet`` and return one proposal index per
peak (-1 where no proposal covers it, :data:`SUPPRESSED` where a selector's own
NMS removed the peak's instance).
"""
from __future__ import annotations

from abc import ABCMeta, abstractmethod

import cv2
import numpy as np
from pycocotools import mask as mask_util

from ..errors import OptionError
from ..proposals import Proposals
from ..registry import PROPOSAL_SELECTORS
from .peak_set import PeakSet

#: a selector's choice for a peak whose instance its own NMS removed
SUPPRESSED = -2


def mask_nms(chosen: np.ndarray, proposals: Proposals, iou_thr: float) -> np.ndarray:
    """Greedy mask NMS over proposal indices given best first: which are kept (a mask
    overlapping a kept one at IoU >= ``iou_thr`` is not)."""
    keep = np.ones(len(chosen), bool)
    if len(chosen) < 2:
        return keep
    rles = [proposals.rles[i] for i in chosen]
    iou = np.asarray(mask_util.iou(rles, rles, [0] * len(rles))).reshape(len(rles), -1)
    for a in range(1, len(chosen)):
        keep[a] = not (iou[a, :a][keep[:a]] >= iou_thr).any()
    return keep


class ProposalSelector(metaclass=ABCMeta):
    """Picks one proposal per peak, with options any strategy takes against a PRM
    that over-fires or misplaces its peaks (all off by default: the paper's pipeline).

    Args:
        cover_radius: a proposal is a candidate for a peak when it has a pixel within
            this many pixels of it (0: it contains the peak's pixel). A peak is known
            to a cell of the response map only (``stride / sub_pixel_scale`` pixels),
            and on thin or hollow objects the nearest pixel of that cell is often
            background or the hole.
        peak_ratio: keep only the peaks reaching this fraction of their class's
            strongest peak in the image, before selection: false peaks on background
            in a present class's colour are weaker than the object's own (a fixed
            ``peak_thr`` cannot tell, as responses differ per image).
        absorb: strongest peak first, a peak inside a stronger same-class peak's
            chosen mask is the same object (CIM's redundant instances: several peaks
            along one elongated object) and adds no instance.
        class_nms_iou: mask NMS among one class's instances, strongest peak first
            (PRM's own retrieval merges at 0.3, class-agnostic).

    Peaks these remove get :data:`SUPPRESSED`.
    """

    needs_maps = False
    needs_density = False

    def __init__(self, cover_radius: int = 0, peak_ratio: float | None = None,
                 absorb: bool = False, class_nms_iou: float | None = None) -> None:
        self.cover_radius = cover_radius
        self.peak_ratio = peak_ratio
        self.absorb = absorb
        self.class_nms_iou = class_nms_iou

    def __call__(self, peaks: PeakSet, proposals: Proposals,
                 rng: np.random.Generator) -> np.ndarray:
        """(K,) index into ``proposals`` for each peak, -1 where none covers it
        (or none qualifies), :data:`SUPPRESSED` where an option removed it."""
        return self.choose(peaks, proposals, rng)[0]

    def choose(self, peaks: PeakSet, proposals: Proposals,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``__call__``'s choices and the strategy's own (K,) score of each (see
        :meth:`select_scored`; the peak's value where it chose nothing)."""
        keep = np.flatnonzero(self._strong(peaks))
        choice = np.full(len(peaks), SUPPRESSED, dtype=np.int64)
        score = peaks.scores.astype(np.float64)
        if len(keep):
            choice[keep], score[keep] = self.select_scored(peaks.subset(keep), proposals, rng)
        order = np.argsort(-peaks.scores, kind='stable')
        if self.absorb:
            choice = self._absorb(choice, order, peaks, proposals)
        if self.class_nms_iou is not None:
            choice = self._class_nms(choice, order, peaks.labels, proposals)
        return choice, score

    def select_scored(self, peaks: PeakSet, proposals: Proposals,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`select` and the score the strategy chose by: the chosen proposal's
        objectness (PRM's retrieval: its retrieval score); the peak's value where
        none was chosen."""
        choice = self.select(peaks, proposals, rng)
        chosen = choice >= 0
        score = peaks.scores.astype(np.float64)
        score[chosen] = proposals.scores[choice[chosen]]
        return choice, score

    def cover(self, peaks: PeakSet, proposals: Proposals) -> np.ndarray:
        """K x N bool: the proposals peak k may pick (see ``cover_radius``)."""
        return proposals.covering(peaks.points, self.cover_radius)

    @abstractmethod
    def select(self, peaks: PeakSet, proposals: Proposals,
               rng: np.random.Generator) -> np.ndarray:
        """The strategy itself: (K,) proposal index per peak, -1 where none covers it,
        :data:`SUPPRESSED` where its own NMS removed it."""

    def _strong(self, peaks: PeakSet) -> np.ndarray:
        if self.peak_ratio is None or not len(peaks):
            return np.ones(len(peaks), bool)
        best = np.zeros(len(peaks))
        for c in np.unique(peaks.labels):
            mine = peaks.labels == c
            best[mine] = peaks.scores[mine].max()
        return peaks.scores >= self.peak_ratio * best

    @staticmethod
    def _absorb(choice: np.ndarray, order: np.ndarray, peaks: PeakSet,
                proposals: Proposals) -> np.ndarray:
        chosen = np.flatnonzero(choice >= 0)
        if len(chosen) < 2:
            return choice
        inside = proposals[choice[chosen]].covering(peaks.points)  # K x chosen
        column = {k: j for j, k in enumerate(chosen)}
        out = choice.copy()
        kept: list[int] = []
        for k in order:
            if choice[k] < 0:
                continue
            if any(peaks.labels[j] == peaks.labels[k] and inside[k, column[j]] for j in kept):
                out[k] = SUPPRESSED
            else:
                kept.append(k)
        return out

    def _class_nms(self, choice: np.ndarray, order: np.ndarray, labels: np.ndarray,
                   proposals: Proposals) -> np.ndarray:
        out = choice.copy()
        for c in np.unique(labels):
            mine = np.array([k for k in order if labels[k] == c and choice[k] >= 0], np.int64)
            out[mine[~mask_nms(choice[mine], proposals, self.class_nms_iou)]] = SUPPRESSED
        return out


@PROPOSAL_SELECTORS.register_module(name='objectness_sampling')
class ObjectnessSampling(ProposalSelector):
    """The paper's choice: a covering proposal drawn with p ~ objectness."""

    def select(self, peaks: PeakSet, proposals: Proposals,
               rng: np.random.Generator) -> np.ndarray:
        cover = self.cover(peaks, proposals)
        weights = np.where(cover, np.clip(proposals.scores, 0, None)[None], 0.0)
        choice = np.full(len(peaks), -1, dtype=np.int64)
        for k in np.flatnonzero(cover.any(1)):
            w = weights[k]
            # all-zero objectness among the candidates: uniform over them
            p = w / w.sum() if w.sum() > 0 else cover[k] / cover[k].sum()
            choice[k] = rng.choice(len(p), p=p)
        return choice


@PROPOSAL_SELECTORS.register_module(name='best_objectness')
class BestObjectness(ProposalSelector):
    """The authors' released code: the covering proposal of highest objectness."""

    def select(self, peaks: PeakSet, proposals: Proposals,
               rng: np.random.Generator) -> np.ndarray:
        cover = self.cover(peaks, proposals)
        scores = np.where(cover, proposals.scores[None], -np.inf)
        return np.where(cover.any(1), scores.argmax(1) if len(proposals) else -1, -1)


@PROPOSAL_SELECTORS.register_module(name='prm_retrieval')
class PRMRetrieval(ProposalSelector):
    """PRM's instance retrieval, as its released ``instance_seg`` runs it.

    Each peak scores the first ``max_candidates`` proposals by objectness whose
    area is within ``size_limits`` (fractions of the image) and takes the best:
    ``balance * PRM inside + PRM on the contour - penalty * background inside``,
    the contour being the mask's morphological gradient (``contour_width``) and
    the background where the peak's class response map is under ``bg_threshold``
    times its mean, after rescaling the map to 0..255 (``rescale_crm``: scipy's
    ``imresize`` did so; the raw map's mean sits near 0). The released code scores
    proposals whether or not they contain the peak; ``require_cover`` keeps only
    those that do. The retrieved instances then go through a class-agnostic mask
    NMS (``nms_iou``; None: off), strongest retrieval score first; a suppressed
    peak gets :data:`SUPPRESSED`. (The released NMS also adds the suppressed peaks'
    response maps to the kept one's; masks do not depend on that.)

    ``density_weight`` > 0 is PRM + Density's retrieval (ILC's released
    ``instance_seg2``: 0.2): each score also loses ``density_weight * |1 - m|``, m
    being the density mass of the peak's class inside the proposal (its share of
    the count: one object's worth for a whole instance).

    The scores are taken at the image's size, or at ``work_size`` (h, w): PRM's and ILC's
    released retrieval runs at the network's 448 x 448 input, the maps resampled there
    and the proposals resized (nearest), so ``contour_width`` counts its pixels.
    """

    needs_maps = True

    def __init__(self, balance: float = 0.8, penalty: float = 1e-5, bg_threshold: float = 0.95,
                 contour_width: int = 5, max_candidates: int | None = 100,
                 size_limits: tuple[float, float] = (0.00002, 0.85), rescale_crm: bool = True,
                 require_cover: bool = False, nms_iou: float | None = 0.3,
                 density_weight: float = 0.0, work_size: tuple[int, int] | None = None,
                 **options) -> None:
        super().__init__(**options)
        self.balance = balance
        self.penalty = penalty
        self.bg_threshold = bg_threshold
        self.kernel = np.ones((contour_width, contour_width), np.uint8)
        self.max_candidates = max_candidates
        self.size_limits = tuple(size_limits)
        self.rescale_crm = rescale_crm
        self.require_cover = require_cover
        self.nms_iou = nms_iou
        self.density_weight = density_weight
        self.needs_density = density_weight > 0
        if work_size is not None and (np.ndim(work_size) != 1 or len(work_size) != 2):
            raise OptionError(f'prm_retrieval work_size={work_size!r}: give (h, w), e.g. '
                              'work_size=448,448')
        self.work_size = None if work_size is None else tuple(work_size)

    def select(self, peaks: PeakSet, proposals: Proposals,
               rng: np.random.Generator) -> np.ndarray:
        return self.select_scored(peaks, proposals, rng)[0]

    def select_scored(self, peaks: PeakSet, proposals: Proposals,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The choices and their retrieval scores (ILC's instance confidence)."""
        if peaks.prms is None or peaks.crms is None:
            raise ValueError('prm_retrieval needs peak response maps and class response maps')
        choice = np.full(len(peaks), -1, dtype=np.int64)
        confidence = peaks.scores.astype(np.float64)
        used = self.candidates(proposals)
        if not len(used) or not len(peaks):
            return choice, confidence
        prm = self.at_work_size(peaks.prms, sums=True).reshape(len(peaks), -1).astype(np.float32)
        classes, of_peak = np.unique(peaks.labels, return_inverse=True)  # only their maps
        background = self.background(self.at_work_size(peaks.crms[classes]))[of_peak]
        background = background.astype(np.float32)
        density = None
        if self.needs_density:
            if peaks.density is None:
                raise ValueError('density_weight needs density maps (a PRMDensity model)')
            flat = self.at_work_size(peaks.density[classes]).reshape(len(classes), -1)
            density = (flat / flat.shape[1])[of_peak].astype(np.float32)
        score = np.concatenate([self._scores(prm, background,
                                             self.at_work_size(proposals[chunk].decode()),
                                             density)
                                for chunk in np.array_split(used, -(-len(used) // 64))], 1)
        if self.require_cover:
            score = np.where(self.cover(peaks, proposals[used]), score, -np.inf)
        found = np.isfinite(score).any(1)
        best = score.argmax(1)
        choice[found] = used[best[found]]
        best_score = score[np.arange(len(peaks)), best]
        confidence[found] = best_score[found]
        if self.nms_iou is not None:
            choice = self._nms(choice, best_score, proposals)
        return choice, confidence

    def candidates(self, proposals: Proposals) -> np.ndarray:
        """Indices of the proposals scanned: the first ``max_candidates`` by objectness,
        less those outside the size limits."""
        order = np.argsort(-proposals.scores, kind='stable')[:self.max_candidates]
        if not len(order):
            return order
        area = mask_util.area([proposals.rles[i] for i in order]).astype(np.float64)
        lo, hi = (f * proposals.hw[0] * proposals.hw[1] for f in self.size_limits)
        return order[(area >= lo) & (area < hi)]

    def at_work_size(self, maps: np.ndarray, sums: bool = False) -> np.ndarray:
        """N x H x W maps at ``work_size`` (as they are without one): masks resized
        nearest, other maps bilinearly, those that ``sums`` to 1 (PRMs) again so."""
        if self.work_size is None:
            return maps
        h, w = self.work_size
        if maps.dtype == bool:
            return np.stack([cv2.resize(m.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
                             for m in maps]).astype(bool).reshape(-1, h, w)
        out = np.stack([cv2.resize(m.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
                        for m in maps]).reshape(-1, h, w)
        if sums:
            out /= np.maximum(out.sum((1, 2), keepdims=True), np.finfo(np.float32).tiny)
        return out

    def background(self, crms: np.ndarray) -> np.ndarray:
        """C x H*W bool: where each class response map is under ``bg_threshold`` of its
        mean (on the 0..255 rescaled map with ``rescale_crm``)."""
        crm = crms.reshape(len(crms), -1).astype(np.float64)
        if self.rescale_crm:  # scipy's bytescale: min -> 0, max -> 255, rounded
            lo, hi = crm.min(1, keepdims=True), crm.max(1, keepdims=True)
            crm = np.floor((crm - lo) * (255.0 / np.maximum(hi - lo, 1e-12)) + 0.5)
        return crm < self.bg_threshold * crm.mean(1, keepdims=True)

    def _scores(self, prm: np.ndarray, background: np.ndarray, masks: np.ndarray,
                density: np.ndarray | None = None) -> np.ndarray:
        """K x U retrieval scores of U decoded masks (chunked: U x H x W floats add up);
        ``density``: K x H*W, each peak's class density over H*W (sums to its count)."""
        inside = masks.reshape(len(masks), -1).astype(np.float32)
        contour = np.stack([cv2.morphologyEx(m.astype(np.uint8), cv2.MORPH_GRADIENT, self.kernel)
                            for m in masks]).reshape(len(masks), -1).astype(np.float32)
        score = (self.balance * prm @ inside.T + prm @ contour.T
                 - self.penalty * background @ inside.T)
        if density is not None:
            score -= self.density_weight * np.abs(1 - density @ inside.T)
        return score

    def _nms(self, choice: np.ndarray, score: np.ndarray, proposals: Proposals) -> np.ndarray:
        """Class-agnostic mask NMS over the peaks' chosen proposals: a peak whose mask
        overlaps a better-scored kept one at IoU >= ``nms_iou`` is suppressed."""
        found = np.flatnonzero(choice >= 0)
        order = found[np.argsort(-score[found], kind='stable')]
        out = choice.copy()
        out[order[~mask_nms(choice[order], proposals, self.nms_iou)]] = SUPPRESSED
        return out
