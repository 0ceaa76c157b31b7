"""Whether the PRM has learned its classes, before anything trains on its peaks.

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
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..utils.io import atomic_write

#: below this val classification mAP the PRM has not learned its classes
MIN_CLS_MAP = 80.0
#: above this share of weak peaks (kept below the peak threshold) likewise
MAX_WEAK_SHARE = 0.5
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


def check_teacher(prm_work: Path, reports: Sequence[Path], out: Path, go_on: bool) -> None:
    """Write the verdict to ``out`` (of the reports that exist: ``--only`` may leave a
    selection out); a PRM that has not learned stops the pipeline with what was
    measured and what to try (``go_on``: a warning instead)."""
    verdict = judge(val_figures(prm_work), [r for r in reports if Path(r).is_file()])
    text = json.dumps(dict(asdict(verdict), learned=verdict.learned), indent=1)
    if (verdict.learned or go_on) and not (out.is_file() and out.read_text() == text):
        out.parent.mkdir(parents=True, exist_ok=True)  # unchanged: what it guards stays fresh
        with atomic_write(out) as f:
            f.write(text)
    if verdict.learned:
        return
    message = (f'the PRM in {prm_work} has not learned its classes: '
               + '; '.join(verdict.failures) + f'. Try {ADVICE}.')
    if not go_on:
        raise SystemExit(f'pipeline.py: stopped: {message}')
    print(f'[pipeline] WARNING: {message} Going on (--ignore-teacher).', flush=True)
