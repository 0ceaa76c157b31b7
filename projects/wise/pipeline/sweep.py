"""The variant sweep: do the defaults hold on data nobody chose them on?

Each ``sweep<N>`` variant (:func:`~..datasets.variants.draw_variant`) draws its own
class shapes, colour tie, background and object counts; the demo's recipes run on it
with only the data root and class names changed (:func:`~.presets.sweep_preset`). Per
variant and seed: the PRM's figures on the test split, and the train split's pseudo
masks of the paper's and the improved selection, each against the same selection from
ground-truth centres (the oracle), and pseudo instances per object. The summary is the
median and the worst variant; the targets are issue 29's.
"""
from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from ..datasets.variants import describe, variant_by_name
from .graph import (SHARED, Plan, classifier_stage, data_stage, oracle_stage, proposals_stage,
                    pseudo_stage)
from .parallel import dependencies, run_in_parallel
from .paths import ROOT
from .presets import Preset, sweep_preset
from .runner import RunOptions, run_stage
from .stage import Stage
from .teacher import judge, val_figures

#: the variants of ``tools/pipeline.py sweep`` unless --variants says otherwise: the
#: first four seeds, none looked at before they were fixed
DEFAULT_VARIANTS = (0, 1, 2, 3)
WORK = 'work_dirs/sweep'
#: pseudo-mask stage -> its name in the sweep's table
COMPARED = {'pseudo': 'paper', 'pseudo_improved': 'improved'}
#: the figures per selection, and the PRM's (test split)
SELECTION_FIGURES = ('mAP50', 'oracle_mAP50', 'ratio', 'per_object')
PRM_FIGURES = {'cls_mAP': 'prm/mAP', 'peak_precision': 'prm/peak_precision',
               'instance_recall': 'prm/instance_recall'}


def sweep_stages(preset: Preset, seed: int) -> list[Stage]:
    """A variant's stages for one seed: data, proposals, the PRM, each compared
    selection's pseudo masks and its oracle's."""
    plan = Plan(preset, seed=seed, teacher_checks=False)
    return [data_stage(plan), proposals_stage(plan),
            classifier_stage(plan, 'prm', preset.prm_cfg),
            *[pseudo_stage(plan, s) for s in COMPARED],
            *[oracle_stage(plan, s) for s in COMPARED]]


def run_sweep(names: Sequence[str], options: RunOptions, work: str = WORK) -> None:
    """Every variant's stages for every seed (first seeds first, so a stopped sweep
    has whole seeds), ``options.jobs`` side by side, in ``<work>/<variant>``; then the
    summary, ``<work>/results.json``."""
    presets = {name: sweep_preset(name, f'{work}/{name}') for name in names}
    todo = [stage for i, seed in enumerate(options.seeds) for name in names
            for stage in sweep_stages(presets[name], seed)
            if not (i and stage.name in SHARED)]
    jobs = 1 if options.dry_run else options.jobs
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    run_in_parallel(range(len(todo)),
                    dependencies([s.inputs for s in todo], [s.outputs for s in todo]),
                    lambda k: run_stage(todo[k], False, options.dry_run, threads, jobs > 1),
                    jobs)
    if not options.dry_run:
        out = write_sweep(ROOT / work, presets, options.seeds)
        print('\n'.join(sweep_lines(json.loads(out.read_text()))))


def latest_metrics(folder: Path) -> dict:
    """The metrics mmengine's test run last wrote under ``folder`` (<stamp>/<stamp>.json)."""
    return json.loads(max(folder.glob('*/*.json'), key=lambda p: p.stat().st_mtime).read_text())


def seed_figures(preset: Preset, seed: int) -> dict:
    """One variant's figures of one seed's run."""
    work = ROOT / preset.work / f'seed{seed}'
    prm = latest_metrics(work / 'prm' / 'test')
    out: dict = {k: prm[key] for k, key in PRM_FIGURES.items()}
    verdict = judge(val_figures(work / 'prm'),
                    [work / s / f'{preset.train_split}_pseudo.json.report.json' for s in COMPARED])
    out['learned'], out['teacher_failures'] = verdict.learned, verdict.failures
    for stage, name in COMPARED.items():
        mine, best = (json.loads((work / s / f'{preset.train_split}_pseudo.json.report.json')
                                 .read_text()) for s in (stage, f'oracle_{stage}'))
        got, oracle = mine['quality']['segm_mAP50'], best['quality']['segm_mAP50']
        out[name] = dict(mAP50=got, oracle_mAP50=oracle, ratio=got / oracle if oracle else 0.0,
                         per_object=mine['instances_per_object'])
    return out


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def variant_summary(runs: dict[str, dict]) -> dict:
    """Means and sds over seeds, and the improved selection against the paper's as the
    mean and sd of the paired per-seed differences of the ratio."""
    seeds = list(runs.values())
    mean, sd = {}, {}
    for k in PRM_FIGURES:
        mean[k], sd[k] = _mean_sd([r[k] for r in seeds])
    for name in COMPARED.values():
        stats = {f: _mean_sd([r[name][f] for r in seeds]) for f in SELECTION_FIGURES}
        mean[name] = {f: m for f, (m, _) in stats.items()}
        sd[name] = {f: s for f, (_, s) in stats.items()}
    diff = _mean_sd([r['improved']['ratio'] - r['paper']['ratio'] for r in seeds])
    return dict(mean=mean, sd=sd, improved_minus_paper=dict(mean=diff[0], sd=diff[1]),
                learned=sum(r['learned'] for r in seeds) / len(seeds))


def targets(variants: dict[str, dict], where: str = '') -> list[dict]:
    """Issue 29's sweep targets over the variants' means (``where``: which variants, in
    the targets' names)."""
    if not variants:
        return []
    ratios = [v['mean']['improved']['ratio'] for v in variants.values()]
    per_object = statistics.median(v['mean']['improved']['per_object']
                                   for v in variants.values())
    # "never below the paper selection by more than its seed spread"
    worst_diff = min(d['mean'] + d['sd'] for d in
                     (v['improved_minus_paper'] for v in variants.values()))
    return [
        dict(name=f'improved pseudo mAP50 / oracle, median variant{where}',
             value=statistics.median(ratios), target='>= 0.85',
             ok=statistics.median(ratios) >= 0.85),
        dict(name=f'improved pseudo mAP50 / oracle, worst variant{where}', value=min(ratios),
             target='>= 0.75', ok=min(ratios) >= 0.75),
        dict(name=f'improved instances per object, median variant{where}', value=per_object,
             target='0.9 - 1.2', ok=0.9 <= per_object <= 1.2),
        dict(name=f'improved - paper ratio, paired per seed: worst variant, mean + sd{where}',
             value=worst_diff, target='>= 0', ok=worst_diff >= 0),
    ]


def write_sweep(work: Path, presets: dict[str, Preset], seeds: Sequence[int]) -> Path:
    """``<work>/results.json``: every variant's per-seed figures, means, sds, the
    median and worst variant, the targets."""
    variants = {}
    for name, preset in presets.items():
        runs = {f'seed{s}': seed_figures(preset, s) for s in seeds}
        variants[name] = dict(variant=describe(variant_by_name(name)), seeds=runs,
                              **variant_summary(runs))
    learned = {k: v for k, v in variants.items() if v['learned'] == 1}
    result = dict(kind='sweep', seeds=list(seeds), split='test (PRM); train (pseudo masks)',
                  date=time.strftime('%Y-%m-%d %H:%M'), variants=variants,
                  targets=[*targets(variants),
                           *targets(learned, f' (the {len(learned)} whose PRM learned)')])
    out = work / 'results.json'
    out.write_text(json.dumps(result, indent=1))
    return out


def sweep_lines(result: dict) -> list[str]:
    """The sweep's markdown table: one row per variant (means ± sd over seeds), then
    the median and worst variant, then the targets."""
    def pm(v: dict, name: str, f: str, scale: float = 1.0, digits: int = 2) -> str:
        return f"{v['mean'][name][f] * scale:.{digits}f} ± {v['sd'][name][f] * scale:.{digits}f}"

    lines = ['| variant | classes | background, colour tie | PRM learned | cls mAP | '
             'peak precision | paper: mAP50 / oracle | improved: mAP50 / oracle | '
             'instances per object (paper / improved) |', '|---|---|---|---|---|---|---|---|---|']
    variants = result['variants']
    for name, v in variants.items():
        d, m = v['variant'], v['mean']
        lines.append(
            f"| {name} | {', '.join(d['classes'])} | {d['background']}, {d['colour_tie']} | "
            f"{v['learned']:.0%} of seeds | "
            f"{m['cls_mAP']:.1f} | {m['peak_precision']:.1f} | {pm(v, 'paper', 'ratio')} | "
            f"{pm(v, 'improved', 'ratio')} | {m['paper']['per_object']:.2f} / "
            f"{m['improved']['per_object']:.2f} |")
    for label, pick in (('median', statistics.median), ('worst', min)):
        ratios = {n: pick(v['mean'][n]['ratio'] for v in variants.values())
                  for n in COMPARED.values()}
        lines.append(f"| **{label}** | | | | | | {ratios['paper']:.2f} | "
                     f"{ratios['improved']:.2f} | |")
    lines += ['', f"{len(result['seeds'])} seeds ({', '.join(map(str, result['seeds']))}); "
              'PRM figures on the test split, pseudo masks on the train split.', '',
              '| target | value | wanted | met |', '|---|---|---|---|']
    lines += [f"| {t['name']} | {t['value']:.3f} | {t['target']} | "
              f"{'yes' if t['ok'] else '**no**'} |" for t in result['targets']]
    return lines
