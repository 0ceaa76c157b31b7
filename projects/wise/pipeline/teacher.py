"""Whether the PRM has learned its classes, before anything trains on its peaks; and
whether a self-training round's labels are no worse than the round's before.

A PRM that cannot tell its classes apart still gives peaks: gen_pseudo keeps the
strongest one of each labelled class however weak (``weak_peaks``), and WISE trains on
what it makes of them. Two figures say so without ground-truth masks: the PRM's val
classification mAP (where there is a val split) and the share of the train split's
peaks that were kept below the peak threshold (every preset, own data included). On
the built-in variants a PRM that learned scores 97-99 mAP with 3-8 % weak peaks; one
that did not (classes told apart by shape alone, the demo's 8 from-scratch epochs)
54-58 mAP with every peak weak (docs/sweep.md).
"""
from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_util

from ..utils.io import atomic_write, load_coco_json
from ..utils.masks import bytes_counts

#: below this val classification mAP the PRM has not learned its classes
MIN_CLS_MAP = 80.0
#: above this share of weak peaks (kept below the peak threshold) likewise
MAX_WEAK_SHARE = 0.5
#: below this mean best IoU of the previous round's instances with the new ones, a round
#: has drifted from its teacher rather than refined it
MIN_AGREEMENT = 0.5
ADVICE = ('a longer PRM schedule (train_cfg.max_epochs), an ImageNet-pretrained backbone '
          '(model.backbone.init_cfg), more training images; --ignore-teacher goes on anyway')


@dataclass
class Verdict:
    """The figures read, and why they say the PRM has not learned (none: it has)."""

    figures: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def learned(self) -> bool:
        return not self.failures


def val_figures(prm_work: Path) -> dict[str, float] | None:
    """The PRM's last validation figures (mmengine's ``vis_data/scalars.json`` of the
    newest run that validated); None where none did."""
    runs = sorted(prm_work.glob('*/vis_data/scalars.json'), key=lambda p: p.stat().st_mtime)
    for path in reversed(runs):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        val = [line for line in lines if 'prm/mAP' in line]
        if val:
            return val[-1]
    return None


def judge(val: dict[str, float] | None, reports: Sequence[Path] = ()) -> Verdict:
    """The verdict of the val figures and of gen_pseudo's reports (``.report.json``)."""
    verdict = Verdict()
    if val is not None:
        cls_map = verdict.figures['val classification mAP'] = float(val['prm/mAP'])
        if cls_map < MIN_CLS_MAP:
            verdict.failures.append(f'val classification mAP {cls_map:.1f} < {MIN_CLS_MAP:g}')
    for report in reports:
        events = json.loads(Path(report).read_text())['events']
        share = events.get('weak_peaks_kept', 0) / max(events.get('peaks', 0), 1)
        verdict.figures[f'weak peak share ({Path(report).parent.name})'] = round(share, 4)
        if share > MAX_WEAK_SHARE:
            verdict.failures.append(
                f'{share:.0%} of the train peaks are weak (kept below the peak threshold, '
                f'> {MAX_WEAK_SHARE:.0%}) in {report}')
    return verdict


def _by_image_class(coco: dict) -> dict[tuple[int, int], list[dict]]:
    found: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for a in coco['annotations']:
        found[a['image_id'], a['category_id']].append(bytes_counts(a['segmentation']))
    return found


def count_error(coco: dict, labels: dict) -> float | None:
    """Mean |instances - objects| over the labelled (image, class) pairs, where the
    labels give counts (``label_counts``); None where they do not."""
    found = _by_image_class(coco)
    errors = [abs(len(found[im['id'], c]) - n) for im in labels['images']
              for c, n in zip(im['labels'], im.get('label_counts') or [])]
    counted = all(len(im.get('label_counts') or []) == len(im['labels'])
                  for im in labels['images'])
    return float(np.mean(errors)) if counted and errors else None


def agreement(previous: dict, new: dict) -> float:
    """Mean over the previous labels' instances of their best IoU with a new instance of
    the same image and class (0 where there is none)."""
    old, now = _by_image_class(previous), _by_image_class(new)
    best = []
    for key, rles in old.items():
        if now[key]:
            iou = np.asarray(mask_util.iou(rles, now[key], [0] * len(now[key])))
            best += list(iou.reshape(len(rles), -1).max(axis=1))
        else:
            best += [0.0] * len(rles)
    return float(np.mean(best)) if best else 1.0


def judge_round(labels: dict, previous: dict, new: dict) -> Verdict:
    """A round's labels against the previous round's, on figures that need no masks."""
    verdict = Verdict()
    before, after = count_error(previous, labels), count_error(new, labels)
    if after is not None:
        verdict.figures.update({'count error, previous round': round(before, 4),
                                'count error': round(after, 4)})
        if after > before:
            verdict.failures.append(f'instances per labelled class are further from the '
                                    f'counts ({after:.3f} off, against {before:.3f})')
    agree = verdict.figures['agreement with the previous round'] = round(
        agreement(previous, new), 4)
    if agree < MIN_AGREEMENT:
        verdict.failures.append(f'the labels agree with the previous round\'s by a mean IoU '
                                f'of {agree:.2f} < {MIN_AGREEMENT:g}')
    return verdict


def _write(verdict: Verdict, out: Path, go_on: bool, what: str, advice: str) -> None:
    """Write the verdict to ``out``; one that fails stops the pipeline with what was
    measured and what to try (``go_on``: a warning instead)."""
    text = json.dumps(dict(asdict(verdict), learned=verdict.learned), indent=1)
    if (verdict.learned or go_on) and not (out.is_file() and out.read_text() == text):
        out.parent.mkdir(parents=True, exist_ok=True)  # unchanged: what it guards stays fresh
        with atomic_write(out) as f:
            f.write(text)
    if verdict.learned:
        return
    message = f'{what}: ' + '; '.join(verdict.failures) + f'. {advice}.'
    if not go_on:
        raise SystemExit(f'pipeline.py: stopped: {message}')
    print(f'[pipeline] WARNING: {message} Going on (--ignore-teacher).', flush=True)


def check_teacher(prm_work: Path, reports: Sequence[Path], out: Path, go_on: bool) -> None:
    """The PRM's verdict (of the reports that exist: ``--only`` may leave a selection
    out), written to ``out``; a PRM that has not learned stops the pipeline."""
    verdict = judge(val_figures(prm_work), [r for r in reports if Path(r).is_file()])
    _write(verdict, out, go_on, f'the PRM in {prm_work} has not learned its classes',
           f'Try {ADVICE}')


def check_round(labels: Path, previous: Path, new: Path, out: Path, go_on: bool) -> None:
    """A self-training round's verdict, written to ``out``; labels worse than the
    previous round's stop the pipeline before a detector trains on them."""
    verdict = judge_round(load_coco_json(labels), load_coco_json(previous),
                          load_coco_json(new))
    _write(verdict, out, go_on, f'the labels of {new} are worse than the previous round\'s',
           'Stop at the round before (--rounds), or --ignore-teacher to go on')
