"""How a peak picks its proposal: the registered selection strategies.

WISE's paper samples among the proposals covering a peak with probability
proportional to objectness (a de-noising of the pseudo masks); the authors'
code takes the most objectness; PRM scores proposals against the peak's
response map. All see the same ``PeakSet`` and return one proposal index per
peak (-1 where no proposal covers it).
"""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from dataclasses import dataclass

import cv2
import numpy as np
from mmengine.registry import Registry

from ..proposals import Proposals

SELECTORS = Registry('wise proposal selector', scope='mmdet',  # as PROPOSAL_SOURCES
                     locations=['projects.wise.pseudo'])


@dataclass
class PeakSet:
    """The peaks of one image at its original resolution.

    ``prms`` (K x H x W, each summing to 1) and ``crms`` (C x H x W class
    response maps) are only filled for selectors with ``needs_maps``.
    """

    labels: np.ndarray  # (K,) 0-based class
    points: np.ndarray  # (K, 2) x, y pixels
    scores: np.ndarray  # (K,) peak response
    prms: np.ndarray | None = None
    crms: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray) -> PeakSet:
        return PeakSet(self.labels[idx], self.points[idx], self.scores[idx],
                       None if self.prms is None else self.prms[idx], self.crms)


class ProposalSelector(metaclass=ABCMeta):
    """Picks one proposal per peak."""

    needs_maps = False

    @abstractmethod
    def __call__(self, peaks: PeakSet, proposals: Proposals,
                 rng: np.random.Generator) -> np.ndarray:
        """(K,) index into ``proposals`` for each peak, -1 where none covers it."""


@SELECTORS.register_module(name='objectness_sampling')
class ObjectnessSampling(ProposalSelector):
    """The paper's choice: a covering proposal drawn with p ~ objectness."""

    def __call__(self, peaks: PeakSet, proposals: Proposals,
                 rng: np.random.Generator) -> np.ndarray:
        cover = proposals.covering(peaks.points)
        weights = np.where(cover, np.clip(proposals.scores, 0, None)[None], 0.0)
        choice = np.full(len(peaks), -1, dtype=np.int64)
        for k in np.flatnonzero(cover.any(1)):
            w = weights[k]
            # all-zero objectness among the candidates: uniform over them
            p = w / w.sum() if w.sum() > 0 else cover[k] / cover[k].sum()
            choice[k] = rng.choice(len(p), p=p)
        return choice


@SELECTORS.register_module(name='best_objectness')
class BestObjectness(ProposalSelector):
    """The authors' released code: the covering proposal of highest objectness."""

    def __call__(self, peaks: PeakSet, proposals: Proposals,
                 rng: np.random.Generator) -> np.ndarray:
        cover = proposals.covering(peaks.points)
        scores = np.where(cover, proposals.scores[None], -np.inf)
        return np.where(cover.any(1), scores.argmax(1) if len(proposals) else -1, -1)


@SELECTORS.register_module(name='prm_retrieval')
class PRMRetrieval(ProposalSelector):
    """PRM's retrieval score per proposal, among those covering the peak:
    ``balance * PRM inside + PRM on the contour - penalty * background inside``,
    background being where the class response map is under ``bg_threshold`` of
    its mean. Only covering proposals are decoded.
    """

    needs_maps = True

    def __init__(self, balance: float = 0.8, penalty: float = 1e-5, bg_threshold: float = 0.95,
                 contour_width: int = 5, max_candidates: int | None = None) -> None:
        self.balance = balance
        self.penalty = penalty
        self.bg_threshold = bg_threshold
        self.kernel = np.ones((contour_width, contour_width), np.uint8)
        self.max_candidates = max_candidates

    def __call__(self, peaks: PeakSet, proposals: Proposals,
                 rng: np.random.Generator) -> np.ndarray:
        if peaks.prms is None or peaks.crms is None:
            raise ValueError('prm_retrieval needs peak response maps and class response maps')
        cover = proposals.covering(peaks.points)
        choice = np.full(len(peaks), -1, dtype=np.int64)
        used = np.flatnonzero(cover.any(0))
        if self.max_candidates is not None:  # PRM scanned only the best-ranked ones
            used = used[np.argsort(-proposals.scores[used], kind='stable')[:self.max_candidates]]
        if not len(used):
            return choice
        crm = peaks.crms.reshape(len(peaks.crms), -1)
        background = (crm < self.bg_threshold * crm.mean(1, keepdims=True))[peaks.labels]
        prm = peaks.prms.reshape(len(peaks), -1).astype(np.float32)
        score = np.concatenate([self._scores(prm, background.astype(np.float32),
                                             proposals[chunk].decode())
                                for chunk in np.array_split(used, -(-len(used) // 64))], 1)
        score = np.where(cover[:, used], score, -np.inf)  # K x U
        return np.where(cover[:, used].any(1), used[score.argmax(1)], -1)

    def _scores(self, prm: np.ndarray, background: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """K x U retrieval scores of U decoded masks (chunked: U x H x W floats add up)."""
        inside = masks.reshape(len(masks), -1).astype(np.float32)
        contour = np.stack([cv2.morphologyEx(m.astype(np.uint8), cv2.MORPH_GRADIENT, self.kernel)
                            for m in masks]).reshape(len(masks), -1).astype(np.float32)
        return (self.balance * prm @ inside.T + prm @ contour.T
                - self.penalty * background @ inside.T)
