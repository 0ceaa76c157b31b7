"""Choose the first round's pseudo-label source on val (docs/self_training.md).

For each built-in variant and seed whose PRM the pipeline has trained, gen_pseudo labels
the val split (its image labels) with each source below, and its report scores the
pseudo masks against val's ground truth, as the train split's are scored. The choice
follows the rule of the relabelling study (``summarize_choice``), against the paper's
selection.

    python bench/source_choice.py --presets demo demo-hard --seeds 0 1 2

writes bench/tables/source_choice.json.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

from projects.wise.pipeline import presets
from projects.wise.pipeline.presets import IMPROVED
from projects.wise.pipeline.self_training import FIGURES, choice_lines, summarize_choice

ROOT = Path(__file__).resolve().parents[1]
#: the candidate sources: gen_pseudo's selector arguments (the paper's draw is the baseline)
SOURCES = {
    'paper: objectness sampling': ('--selector', 'type=objectness_sampling'),
    "authors' code: best objectness": ('--selector', 'type=best_objectness'),
    'improved selection': ('--selector', *IMPROVED),
    "PRM's retrieval": ('--selector', 'type=prm_retrieval'),
}


def figures(preset, seed: int, name: str) -> dict:
    work = ROOT / preset.work / f'seed{seed}'
    out = work / 'source_choice' / re.sub(r'\W+', '_', name.split(':')[0]).strip('_') / 'val.json'
    if not Path(f'{out}.report.json').is_file():
        ckpt = (work / 'prm/last_checkpoint').read_text().strip()
        subprocess.run([sys.executable, 'tools/gen_pseudo.py', preset.prm_cfg, ckpt,
                        '--split', 'val', '--seed', str(seed), '--out', str(out),
                        '--proposals', 'type=precomputed', f'root={preset.proposals_root}',
                        *SOURCES[name]], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    report = json.loads(Path(f'{out}.report.json').read_text())
    return {**{k: report['quality'][k] for k in FIGURES},
            'instances_per_object': report['instances_per_object'],
            'checkpoint': report['checkpoint']}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--presets', nargs='+', default=['demo', 'demo-hard'])
    ap.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    ap.add_argument('--out', type=Path, default=ROOT / 'bench/tables/source_choice.json')
    args = ap.parse_args()
    names = list(SOURCES)
    results = {}
    for p in args.presets:
        preset = presets()[p]
        results[p] = {str(s): dict(round1=figures(preset, s, names[0]),
                                   rules=[figures(preset, s, n) for n in names[1:]])
                      for s in args.seeds
                      if (ROOT / preset.work / f'seed{s}/prm/last_checkpoint').is_file()}
    table = summarize_choice(results, [dict(source=n, selector=list(SOURCES[n]))
                                       for n in names[1:]], baseline=names[0])
    args.out.write_text(json.dumps(dict(table, runs=results), indent=1) + '\n')
    print('\n'.join(choice_lines(table)))


if __name__ == '__main__':
    main()
