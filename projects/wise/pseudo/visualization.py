"""Pseudo masks and peaks drawn over their image, judged against ground truth where
it exists, so that false peaks and duplicate instances are seen at a glance."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_util

#: outline / marker colour of each verdict (RGB)
VERDICT_COLOURS = {'tp': (40, 220, 40), 'duplicate': (255, 160, 0), 'fp': (240, 30, 30)}


def judge_instances(rles: Sequence[dict], labels: Sequence[int], gt_rles: Sequence[dict],
                    gt_labels: Sequence[int], iou_thr: float = 0.5) -> list[str]:
    """'tp', 'duplicate' or 'fp' for each instance, given strongest first, matched as
    VOC's AP matches them: to the same-class object of highest IoU, once."""
    verdicts: list[str] = []
    taken: set[int] = set()
    iou = np.zeros((len(rles), len(gt_rles)))
    if len(rles) and len(gt_rles):
        iou = np.asarray(mask_util.iou(list(rles), list(gt_rles), [0] * len(gt_rles)))
        iou = iou.reshape(len(rles), len(gt_rles))
    for i, label in enumerate(labels):
        same = [j for j, g in enumerate(gt_labels) if g == label]
        j = max(same, key=lambda j: iou[i, j], default=None)
        if j is None or iou[i, j] < iou_thr:
            verdicts.append('fp')
        elif j in taken:
            verdicts.append('duplicate')
        else:
            taken.add(j)
            verdicts.append('tp')
    return verdicts


def judge_peaks(points: np.ndarray, labels: Sequence[int], gt_rles: Sequence[dict],
                gt_labels: Sequence[int]) -> list[str]:
    """'tp' (first peak on an object of its class), 'duplicate' (a later one on the same
    object) or 'fp' (on no object of its class) for each peak, given strongest first."""
    masks = [mask_util.decode(r).astype(bool) for r in gt_rles]
    verdicts: list[str] = []
    hit: set[int] = set()
    for (x, y), label in zip(np.asarray(points).reshape(-1, 2), labels):
        on = [j for j, m in enumerate(masks) if gt_labels[j] == label
              and m[min(int(round(y)), m.shape[0] - 1), min(int(round(x)), m.shape[1] - 1)]]
        if not on:
            verdicts.append('fp')
        elif on[0] in hit:
            verdicts.append('duplicate')
        else:
            hit.add(on[0])
            verdicts.append('tp')
    return verdicts


def tally(verdicts: Sequence[str], num_gts: int | None) -> str:
    """'tp 2 dup 1 fp 1 gt 3' (the header of a drawing; short, for 128 px images)."""
    text = (f'tp {verdicts.count("tp")} dup {verdicts.count("duplicate")} '
            f'fp {verdicts.count("fp")}')
    return text if num_gts is None else f'{text} gt {num_gts}'


def with_header(image: np.ndarray, text: str) -> np.ndarray:
    """``image`` under a black strip carrying ``text``."""
    strip = np.zeros((14, image.shape[1], 3), np.uint8)
    cv2.putText(strip, text, (2, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (255, 255, 255), 1,
                cv2.LINE_AA)
    return np.concatenate([strip, image], 0)


def draw_pseudo_masks(image: np.ndarray, anns: Sequence[dict], classes: Sequence[str],
                      gt: tuple[Sequence[dict], Sequence[int]] | None = None) -> np.ndarray:
    """Each pseudo instance of ``anns`` (COCO, with ``point``) filled in its own colour,
    with its peak and class name, over the RGB ``image``. With ``gt`` (the image's
    object RLEs and 0-based labels) each outline is coloured by its verdict
    (:data:`VERDICT_COLOURS`) and a header tallies them."""
    out = image.astype(np.float32)
    rng = np.random.default_rng(0)
    anns = sorted(anns, key=lambda a: -a['score'])
    verdicts = None
    if gt is not None:
        verdicts = judge_instances([a['segmentation'] for a in anns],
                                   [a['category_id'] - 1 for a in anns], *gt)
    for i, a in enumerate(anns):
        m = mask_util.decode(a['segmentation']).astype(bool)
        colour = rng.integers(60, 256, 3)
        out[m] = 0.45 * out[m] + 0.55 * colour
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_NONE)
        edge = (255, 255, 255) if verdicts is None else VERDICT_COLOURS[verdicts[i]]
        cv2.drawContours(out, contours, -1, edge, 1)
        x, y = (int(round(v)) for v in a['point'])
        cv2.drawMarker(out, (x, y), (0, 0, 0), cv2.MARKER_CROSS, 7, 2)
        cv2.putText(out, classes[a['category_id'] - 1][:4], (x + 3, y - 3),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 0), 1, cv2.LINE_AA)
    out = np.clip(out, 0, 255).astype(np.uint8)
    return out if verdicts is None else with_header(out, tally(verdicts, len(gt[0])))


def save_pseudo_masks(path: Path, image: np.ndarray, anns: Sequence[dict],
                      classes: Sequence[str],
                      gt: tuple[Sequence[dict], Sequence[int]] | None = None) -> None:
    """:func:`draw_pseudo_masks` written as a PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), draw_pseudo_masks(image, anns, classes, gt)[..., ::-1])
