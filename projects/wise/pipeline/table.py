"""The results table, like the paper's: one row per method, mAP at IoU 0.25 / 0.5 /
0.75 and ABO, beside the paper's VOC 2012 val figures; with seeds, mean ± sd."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .custom_configs import DEFAULT_DETECTOR, DETECTORS
from .presets import MAX_ROUNDS

COLUMNS = ('mAP25', 'mAP50', 'mAP75', 'ABO')
#: VOC 2012 val, from the WISE paper
PAPER = {
    'Mask R-CNN (full)': (58.9, 51.4, 32.4, None),
    'PRM': (44.3, 26.8, 9.0, 37.6),
    'PRM + Density': (48.5, 30.2, 14.4, 44.3),  # image labels and counts; quoted by WISE
    'WISE': (48.5, 40.4, 22.2, 51.3),
    'WISE + Refine': (49.2, 41.7, 23.7, 55.2),
}
#: row -> the metrics file of its stage, in the work dir ('{split}': the reported split)
ROW_FILES = {
    'Mask R-CNN (full)': 'full/metrics.metrics.json',
    'PRM': 'prm_baseline/{split}_prm.json.report.json',
    'PRM + Density': 'prm_density_baseline/{split}_prm.json.report.json',
    'WISE': 'wise/metrics.metrics.json',
    'WISE + Refine': 'wise/refine.metrics.json',
    'WISE (improved)': 'wise_improved/metrics.metrics.json',
    'WISE (improved) + Refine': 'wise_improved/refine.metrics.json',
    'WISE + counts': 'wise_counts/metrics.metrics.json',
    'WISE + counts + Refine': 'wise_counts/refine.metrics.json',
    **{f'WISE (improved, {d.title}){tail}': f'wise_{name}/{file}'
       for name, d in DETECTORS.items() if name != DEFAULT_DETECTOR
       for tail, file in (('', 'metrics.metrics.json'), (' + Refine', 'refine.metrics.json'))},
    # self-training rounds after WISE (improved): tools/pipeline.py --rounds
    **{f'WISE (round {r}){tail}': f'wise_round{r}/{file}' for r in range(2, MAX_ROUNDS + 1)
       for tail, file in (('', 'metrics.metrics.json'), (' + Refine', 'refine.metrics.json'))},
}

Row = tuple[float | None, ...]


def metrics(path: Path) -> Row:
    """A row's figures from a test's metrics or a gen_pseudo report."""
    data = json.loads(path.read_text())
    m = data['quality'] if 'quality' in data else data['metrics']
    return tuple(m.get(f'segm_{c}') for c in COLUMNS)


def rows(work: Path, split: str = 'val') -> dict[str, Row]:
    """The table's rows whose stage has run (``--only`` may leave some out), scored on
    ``split``."""
    files = {name: work / f.format(split=split) for name, f in ROW_FILES.items()}
    return {name: metrics(f) for name, f in files.items() if f.is_file()}


def mean_sd(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample sd (0 for one value); None where a value is missing."""
    if any(v is None for v in values):
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def supervision(name: str) -> str:
    if name == 'Mask R-CNN (full)':
        return 'masks'
    return 'labels + counts' if 'counts' in name or 'Density' in name else 'image labels'


def summarize(runs: Sequence[dict[str, Row]], seeds: Sequence[int] | None = None,
              train: str = '', improved: str = '', split: str = 'val') -> dict:
    """The table as data (what results.json holds): each row's mean over ``runs`` (one
    per seed) and, with seeds, its sample sd and every seed's figures."""
    means, sds = {}, {}
    for name in [n for n in runs[0] if all(n in run for run in runs)]:
        stats = [mean_sd([run[name][j] for run in runs]) for j in range(len(COLUMNS))]
        means[name] = tuple(m for m, _ in stats)
        sds[name] = tuple(sd for _, sd in stats)
    full = means.get('Mask R-CNN (full)', (None,) * 4)[1]
    ratio = means['WISE'][1] / full if full and 'WISE' in means else 0
    result = dict(columns=COLUMNS, rows={k: dict(zip(COLUMNS, v)) for k, v in means.items()},
                  paper={k: dict(zip(COLUMNS, v)) for k, v in PAPER.items()},
                  wise_over_full_mAP50=round(ratio, 3), train=train, improved=improved,
                  split=split)
    if seeds:
        result.update(seeds=list(seeds), sd={k: dict(zip(COLUMNS, v)) for k, v in sds.items()},
                      runs=[{k: dict(zip(COLUMNS, v)) for k, v in run.items()} for run in runs])
    return result


def table_lines(result: dict) -> list[str]:
    """The markdown table of a results.json: a row per method, ± sd with seeds."""
    sds = result.get('sd')

    def fmt(v, sd=None):
        if v is None:
            return '-'
        return f'{v:.1f}' if sd is None else f'{v:.1f} ± {sd:.1f}'

    lines = ['| method | supervision | ' + ' | '.join(COLUMNS) + ' | paper (VOC 2012 val) |',
             '|---|---|' + '---|' * len(COLUMNS) + '---|']
    for name, vals in result['rows'].items():
        paper = ' / '.join(fmt(v) for v in PAPER[name]) if name in PAPER else '-'
        lines.append(f'| {name} | {supervision(name)} | '
                     + ' | '.join(fmt(vals[c], sds[name][c] if sds else None) for c in COLUMNS)
                     + f' | {paper} |')
    return lines


def markdown(result: dict) -> str:
    """results.md: the table, then what it was trained and scored on."""
    lines = [*table_lines(result), '']
    if result['train']:
        lines.append(f'Trained on {result["train"]}; scored on the {result["split"]} split.')
    if result['improved'] and any('improved' in name for name in result['rows']):
        lines.append(f'WISE (improved): {result["improved"]}.')
    if result.get('seeds'):
        lines.append(f'Mean ± sd over seeds {", ".join(map(str, result["seeds"]))}.')
    if result['wise_over_full_mAP50']:
        lines.append(f'WISE / fully supervised mAP50: {result["wise_over_full_mAP50"]:.2f} '
                     '(paper: 40.4 / 51.4 = 0.79)')
    return '\n'.join(lines) + '\n'


def write_table(work: Path, seeds: Sequence[int] | None = None, train: str = '',
                improved: str = '', split: str = 'val') -> None:
    """Results like the paper's table, as markdown, json and a bar chart: of the run
    in ``work``, or the mean ± sd of the runs in ``work/seed<N>`` for ``seeds``;
    ``train`` says which training images they come from, ``improved`` what the
    improved rows are, ``split`` which images score them."""
    runs = [rows(work, split)] if not seeds else [rows(work / f'seed{s}', split) for s in seeds]
    result = summarize(runs, seeds, train, improved, split)
    md = markdown(result)
    (work / 'results.md').write_text(md)
    (work / 'results.json').write_text(json.dumps(result, indent=2))
    _bar_chart(result, work / 'results.png')
    print(md)


def _bar_chart(result: dict, path: Path) -> None:
    means = {name: [vals[c] for c in COLUMNS] for name, vals in result['rows'].items()}
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    width = 0.8 / len(means)
    for i, (name, vals) in enumerate(means.items()):
        xs = [j + i * width for j in range(len(COLUMNS))]
        ax.bar(xs, [v or 0 for v in vals], width, label=name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(COLUMNS))], COLUMNS)
    ax.set_ylabel('%')
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, ncol=2)
    ax.set_title(f'{result["split"]} split')
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


#: the paired differences a table's ``.differences`` block shows: (better, worse)
DIFFERENCES = (('WISE (improved)', 'PRM'), ('WISE (improved)', 'WISE'),
               ('WISE (improved) + Refine', 'WISE (improved)'), ('WISE', 'PRM'),
               ('WISE + Refine', 'PRM'))


def difference_lines(result: dict) -> list[str]:
    """Seed by seed, row minus row (mAP25 / mAP50 / mAP75 / ABO), then the mean and the
    paired mean - sd that the bench judges targets on; pairs with a missing row go."""
    def fmt(values: Sequence[float]) -> str:
        return ' / '.join(f'{v:+.1f}' for v in values)

    seeds = result['seeds']
    lines = ['| difference | ' + ' | '.join(f'seed {s}' for s in seeds) + ' | mean | mean - sd |',
             '|---|' + '---|' * (len(seeds) + 2)]
    for better, worse in DIFFERENCES:
        if not all(better in run and worse in run for run in result['runs']):
            continue
        per_seed = [[run[better][c] - run[worse][c] for c in COLUMNS] for run in result['runs']]
        stats = [mean_sd([d[i] for d in per_seed]) for i in range(len(COLUMNS))]
        lines.append(f'| {better} - {worse} | ' + ' | '.join(fmt(d) for d in per_seed)
                     + f' | {fmt([m for m, _ in stats])} | {fmt([m - sd for m, sd in stats])} |')
    return lines
