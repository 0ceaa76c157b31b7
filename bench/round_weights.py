"""Choose where a self-training round's detector starts, on val, and record the round.

Reads two runs of round 2 after the same WISE (improved) (``tools/pipeline.py PRESET
--seeds N --rounds 2``, once with ``--round-weights init`` and once with ``previous`` in
another work dir that links the first one's earlier stages), and optionally a control
(round 1's weights trained again on round 1's labels): each detector's val figures
(its validation at the end of training), its test rows with and without Refine, the PRM
baseline and round 1 beside them, and both rounds' train pseudo labels. The start whose
round-2 detector has the higher mean of val mAP50, mAP75 and ABO is chosen.

    python bench/round_weights.py demo-hard 0 work_dirs/demo-hard work_dirs/demo-hard-prev

writes bench/tables/round_weights.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from projects.wise.pipeline.self_training import FIGURES, rounds_lines

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ('segm_mAP25', 'segm_mAP50', 'segm_mAP75', 'segm_ABO')


def val_figures(stage: Path) -> dict:
    """The last validation of the newest training in ``stage`` (mmengine's scalars)."""
    runs = sorted(stage.glob('*/vis_data/scalars.json'), key=lambda p: p.stat().st_mtime)
    lines = [json.loads(line) for line in runs[-1].read_text().splitlines() if line.strip()]
    last = [line for line in lines if 'wise/segm_mAP50' in line][-1]
    return {k: last[f'wise/{k}'] for k in COLUMNS}


def test_figures(path: Path) -> dict:
    data = json.loads(path.read_text())
    m = data['quality'] if 'quality' in data else data['metrics']
    return {k: m[k] for k in COLUMNS}


def pseudo_figures(path: Path) -> dict:
    report = json.loads(Path(f'{path}.report.json').read_text())
    return {**{k: report['quality'][k] for k in COLUMNS},
            'instances_per_object': report['instances_per_object'],
            'checkpoint': report.get('checkpoint')}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('preset')
    ap.add_argument('seed', type=int)
    ap.add_argument('init_work', type=Path, help='the run with --round-weights init')
    ap.add_argument('previous_work', type=Path, help='the run with --round-weights previous')
    ap.add_argument('--control', type=Path,
                    help="a run that trained round 1's weights on round 1's own labels as "
                         "long again (in <control>/seed<N>/wise_round2): how much of a warm "
                         "start's gain is the longer schedule")
    ap.add_argument('--out', type=Path, default=ROOT / 'bench/tables/round_weights.json')
    args = ap.parse_args()
    seed = f'seed{args.seed}'
    init, previous = args.init_work / seed, args.previous_work / seed
    detectors = {'round 1: WISE (improved)': init / 'wise_improved',
                 'round 2, from the initialisation': init / 'wise_round2',
                 "round 2, from round 1's weights": previous / 'wise_round2',
                 **({"control: round 1's weights, round 1's labels again":
                     args.control / seed / 'wise_round2'} if args.control else {})}
    rows = {name: dict(val=val_figures(d), test=test_figures(d / 'metrics.metrics.json'),
                       refine=test_figures(d / 'refine.metrics.json'))
            for name, d in detectors.items()}
    rows['PRM'] = dict(test=test_figures(init / 'prm_baseline/test_prm.json.report.json'))
    pseudo = {name: pseudo_figures(init / f'{stage}/train_pseudo.json') for name, stage in (
        ('round 1 (improved selection)', 'pseudo_improved'),
        ('round 2 (relabelled)', 'relabel_round2'))}
    score = {k: statistics.mean(rows[k]['val'][f] for f in FIGURES) for k in list(detectors)[1:3]}
    chosen = max(score, key=score.get)
    table = dict(kind='round_weights', preset=args.preset, seed=args.seed, rows=rows,
                 pseudo=pseudo, chosen='previous' if 'weights' in chosen else 'init',
                 criterion='the higher mean of val mAP50, mAP75 and ABO of the round-2 detector')
    args.out.write_text(json.dumps(table, indent=1) + '\n')
    print('\n'.join(rounds_lines(table)))


if __name__ == '__main__':
    main()
