"""Learned proposals across classes (issue 30, item 6; docs/deepmask.md).

DeepMask's demo config trained on the demo variant's masks (circle, square, triangle,
star, cross) proposes on the hard variant's images (five other classes, photographs,
distractors), as SharpMask trained on COCO proposed on VOC. Per seed: the training
(tools/train.py), its proposals for the hard variant's test and train images
(tools/gen_proposals.py); recall@0.5 of the test instances at 100 proposals, against
the built-in proposals; the hard variant's PRM of the same seed labels the train split
with the improved selection from each source (tools/gen_pseudo.py), whose report scores
the pseudo masks against the train split's ground truth. One choice is made, on the hard
variant's val split with seed 0: which training data (the demo variant's masks alone, or
with four drawn variants'), by recall@0.5 at 100 proposals; test reports.

    python bench/deepmask_transfer.py --seeds 0 1 2

writes bench/tables/deepmask_transfer.json.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from projects.wise.pipeline import presets
from projects.wise.pipeline.presets import IMPROVED
from projects.wise.pipeline.runner import source_commit

ROOT = Path(__file__).resolve().parents[1]
#: the candidate training data: DeepMask's demo configs
CONFIGS = {'demo variant': 'configs/wise/demo/deepmask_r18_shapes.py',
           'demo + sweep0-3': 'configs/wise/demo/deepmask_r18_shapes-mix.py'}
HARD = ROOT / 'data/shapes-hard'
BUILTIN = HARD / 'proposals'
WORK = ROOT / 'work_dirs/deepmask'


def tool(*args: str | Path) -> None:
    subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)


def recall_at_100(source: str, opts: list[str], out: Path, split: str = 'test') -> float:
    if not (out / 'recall.json').is_file():
        tool('tools/gen_proposals.py', '--ann-file', HARD / f'annotations/{split}_instances.json',
             '--out-dir', out, '--source', source, '--source-opts', *opts, '--recall')
    return json.loads((out / 'recall.json').read_text())['recall']['100']


def trained(config: str, seed: int) -> tuple[Path, float]:
    """The config's checkpoint for ``seed`` (trained if missing) and the seconds it took."""
    work = WORK / f'{Path(config).stem.split("_")[-1]}-seed{seed}'
    start = time.time()
    if not (work / 'iter_3000.pth').is_file():
        tool('tools/train.py', config, '--work-dir', work, '--cfg-options',
             f'randomness.seed={seed}')
    return work / 'iter_3000.pth', time.time() - start


def choose() -> tuple[str, dict]:
    """The training data whose seed-0 DeepMask recalls most of the hard val split."""
    val = {}
    for name, config in CONFIGS.items():
        ckpt, _ = trained(config, 0)
        val[name] = recall_at_100('deepmask', [f'config={config}', f'checkpoint={ckpt}'],
                                  ckpt.parent / 'hard_val', 'val')
    return max(val, key=val.get), val


def pseudo(seed: int, root: Path, out: Path) -> dict:
    if not Path(f'{out}.report.json').is_file():
        preset = presets()['demo-hard']
        ckpt = (ROOT / preset.work / f'seed{seed}/prm/last_checkpoint').read_text().strip()
        tool('tools/gen_pseudo.py', preset.prm_cfg, ckpt, '--seed', str(seed), '--out', out,
             '--proposals', 'type=precomputed', f'root={root}', '--selector', *IMPROVED)
    report = json.loads(Path(f'{out}.report.json').read_text())
    return {**{k: report['quality'][k] for k in ('mAP50', 'mAP75', 'ABO')},
            'instances_per_object': report['instances_per_object']}


def run_seed(config: str, seed: int, builtin_recall: float) -> dict:
    ckpt, took = trained(config, seed)
    work = ckpt.parent
    props = work / 'hard_proposals'
    opts = [f'config={config}', f'checkpoint={ckpt}']
    recall = recall_at_100('deepmask', opts, props)
    start = time.time()
    if not (props / '.done_train_labels_0of1.json').is_file():
        tool('tools/gen_proposals.py', '--ann-file', HARD / 'annotations/train_labels.json',
             '--out-dir', props, '--source', 'deepmask', '--source-opts', *opts)
    proposed = time.time() - start
    return dict(recall100=dict(deepmask=recall, builtin=builtin_recall),
                pseudo=dict(deepmask=pseudo(seed, props, work / 'pseudo_deepmask/train.json'),
                            builtin=pseudo(seed, BUILTIN, work / 'pseudo_builtin/train.json')),
                seconds=dict(train=round(took, 1), train_proposals=round(proposed, 1)))


def summary(runs: dict) -> dict:
    def stat(get) -> dict:
        values = np.array([get(r) for r in runs.values()], float)
        return dict(mean=round(float(values.mean()), 4), sd=round(float(values.std(ddof=1)), 4)
                    if len(values) > 1 else 0.0, values=[round(float(v), 4) for v in values])
    out = {'recall@0.5, 100 proposals (test)': {
        s: stat(lambda r, s=s: r['recall100'][s]) for s in ('deepmask', 'builtin')}}
    for k in ('mAP50', 'mAP75', 'ABO', 'instances_per_object'):
        out[f'pseudo {k} (train, improved selection)'] = {
            s: stat(lambda r, s=s, k=k: r['pseudo'][s][k]) for s in ('deepmask', 'builtin')}
    out['paired deepmask - builtin, pseudo mAP50'] = stat(
        lambda r: r['pseudo']['deepmask']['mAP50'] - r['pseudo']['builtin']['mAP50'])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    ap.add_argument('--out', type=Path, default=ROOT / 'bench/tables/deepmask_transfer.json')
    args = ap.parse_args()
    chosen, val = choose()
    builtin = recall_at_100('precomputed', [f'root={BUILTIN}'], WORK / 'builtin_hard_test')
    runs = {str(s): run_seed(CONFIGS[chosen], s, builtin) for s in args.seeds}
    table = dict(kind='deepmask_transfer', proposed_on='demo-hard', chosen=chosen,
                 config=CONFIGS[chosen], val_recall100_seed0=val,
                 builtin_val_recall100=recall_at_100('precomputed', [f'root={BUILTIN}'],
                                                     WORK / 'builtin_hard_val', 'val'),
                 commit=source_commit(), date=time.strftime('%Y-%m-%d %H:%M'),
                 summary=summary(runs), runs=runs)
    args.out.write_text(json.dumps(table, indent=1) + '\n')
    print(json.dumps(table['summary'], indent=1))


if __name__ == '__main__':
    main()
