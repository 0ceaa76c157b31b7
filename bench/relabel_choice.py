"""Choose a self-training round's relabelling options on val (docs/self_training.md).

For each built-in variant and seed whose WISE (improved) Mask R-CNN the pipeline has
trained, the val split is labelled as a round would label train: round 1's pseudo masks
of val (gen_pseudo, the improved selection), then the detector's predictions held to
the image labels by every rule of the grid. Each is scored against val's ground truth
as gen_pseudo's report scores pseudo masks. The detector runs once per image; every
rule reuses its predictions.

    python bench/relabel_choice.py --presets demo demo-hard --seeds 0 1 2

writes bench/tables/relabel_choice.json (every variant's and seed's figures, the means
and the choice: ``projects.wise.pipeline.self_training.summarize_choice``).
"""
from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from projects.wise.pipeline import presets
from projects.wise.pipeline.presets import SELECTIONS
from projects.wise.pipeline.self_training import FIGURES, choice_lines, summarize_choice
from projects.wise.pseudo import Relabeller, RelabelRule, summarize
from projects.wise.pseudo.labeller import RECALL_KS

ROOT = Path(__file__).resolve().parents[1]
SCORE_THRS = (0.3, 0.5, 0.7, 0.9)
#: refinement on: in a first grid it raised mAP75 and ABO in every variant and cut
#: (docs/self_training.md)
GRID = [dict(rule=RelabelRule(score_thr=t, nms_iou=n, keep_unmatched=k), refine=True)
        for t, n, k in itertools.product(SCORE_THRS, (None, 0.5), (False, True))]


def val_round1(preset, seed: int) -> Path:
    """Round 1's pseudo masks of val: gen_pseudo with the seed's PRM, improved selection."""
    work = ROOT / preset.work / f'seed{seed}'
    out = work / 'relabel_choice' / 'val_pseudo.json'
    if not out.is_file():
        ckpt = (work / 'prm/last_checkpoint').read_text().strip()
        subprocess.run([sys.executable, 'tools/gen_pseudo.py', preset.prm_cfg, ckpt,
                        '--split', 'val', '--seed', str(seed), '--out', str(out),
                        '--proposals', 'type=precomputed', f'root={preset.proposals_root}',
                        *SELECTIONS['pseudo_improved']], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    return out


def figures(relabeller: Relabeller, gt: str) -> dict:
    records = [relabeller(i) for i in range(len(relabeller))]
    report = summarize(records, relabeller.classes, gt, RECALL_KS, relabeller.quality_thr)
    return {**{k: report['quality'][k] for k in FIGURES},
            'instances_per_object': report['instances_per_object']}


def study(preset_name: str, seed: int) -> dict:
    preset = presets()[preset_name]
    work = ROOT / preset.work / f'seed{seed}'
    previous = val_round1(preset, seed)
    ann = ROOT / preset.annotations
    gt = str(ann / 'val_instances.json')
    ckpt = (work / 'wise_improved/last_checkpoint').read_text().strip()
    proposals = dict(type='precomputed', root=str(ROOT / preset.proposals_root))
    relabeller = Relabeller.from_config(preset.wise_cfg.format('mask-rcnn', refine=''), ckpt,
                                        str(ann / 'val_labels.json'), str(previous),
                                        proposals=proposals, gt_ann_file=gt)
    cache: dict[str, list[dict]] = {}
    predict = relabeller.predict
    relabeller.predict = lambda path: cache[path] if path in cache else \
        cache.setdefault(path, predict(path))
    source = relabeller.source
    previous_report = json.loads(Path(f'{previous}.report.json').read_text())
    out = dict(round1={**{k: previous_report['quality'][k] for k in FIGURES},
                       'instances_per_object': previous_report['instances_per_object']},
               checkpoint=ckpt, rules=[])
    for option in GRID:
        relabeller.rule, relabeller.source = option['rule'], source if option['refine'] else None
        out['rules'].append(dict(**asdict(option['rule']), refine=option['refine'],
                                 **figures(relabeller, gt)))
        print(preset_name, seed, out['rules'][-1], flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--presets', nargs='+', default=['demo', 'demo-hard'])
    ap.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    ap.add_argument('--out', type=Path, default=ROOT / 'bench/tables/relabel_choice.json')
    args = ap.parse_args()
    results = {p: {str(s): study(p, s) for s in args.seeds
                   if (ROOT / presets()[p].work / f'seed{s}/wise_improved/last_checkpoint')
                   .is_file()} for p in args.presets}
    table = summarize_choice(results, [dict(**asdict(o['rule']), refine=o['refine'])
                                       for o in GRID])
    args.out.write_text(json.dumps(dict(table, runs=results), indent=1) + '\n')
    print('\n'.join(choice_lines(table)))


if __name__ == '__main__':
    main()
