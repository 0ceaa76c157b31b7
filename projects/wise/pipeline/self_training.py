"""How a self-training round's relabelling options, and the pseudo-label source of the
first round, were chosen on val: as data, and as the tables docs/self_training.md quotes
(``bench/relabel_choice.py`` and ``bench/source_choice.py`` measure)."""
from __future__ import annotations

import statistics
from collections.abc import Callable

#: the figures of pseudo labels that the choice weighs (gen_pseudo's report's)
FIGURES = ('segm_mAP50', 'segm_mAP75', 'segm_ABO')
#: instances per object a rule may give (issue 29's band for pseudo masks)
IPO_BAND = (0.9, 1.2)


def _mean(runs: list[dict], key: Callable[[dict], dict]) -> dict:
    return {f: round(statistics.mean(key(run)[f] for run in runs), 3)
            for f in (*FIGURES, 'instances_per_object')}


def summarize_choice(results: dict, rules: list[dict],
                     baseline: str = 'round 1 (no relabelling)') -> dict:
    """Each rule's means per variant (over seeds), and the choice: of the rules whose
    instances per object stay within IPO_BAND in every variant, the highest mean of
    mAP50, mAP75 and ABO over the variants. A pseudo label's score is not used in
    training, so a rule may not buy its mAP with extra instances.

    ``results``: variant -> seed -> dict(round1=figures of the ``baseline``, rules=[figures
    per rule]); ``rules``: the options of each rule, in that order."""
    rows = [dict(rule=baseline, **{
        v: _mean(list(runs.values()), lambda run: run['round1'])
        for v, runs in results.items()})]
    for k, rule in enumerate(rules):
        rows.append(dict(rule=rule, **{v: _mean(list(runs.values()),
                                                lambda run, k=k: run['rules'][k])
                                       for v, runs in results.items()}))
    for r in rows:
        means = [r[v] for v in results]
        r['score'] = round(statistics.mean(statistics.mean(m[f] for f in FIGURES)
                                           for m in means), 3)
        r['eligible'] = all(IPO_BAND[0] <= m['instances_per_object'] <= IPO_BAND[1]
                            for m in means)
    chosen = max((r for r in rows[1:] if r['eligible']), key=lambda r: r['score'])
    return dict(kind='relabel_choice', variants=list(results), rows=rows,
                chosen=chosen['rule'], criterion=' '.join(summarize_choice.__doc__
                                                         .split('\n\n')[0].split()))


def _name(rule: dict | str) -> str:
    if isinstance(rule, str):
        return rule
    if 'source' in rule:
        return rule['source']
    return (f"score >= {rule['score_thr']:g}, "
            + (f"NMS {rule['nms_iou']:g}" if rule['nms_iou'] is not None else 'no NMS')
            + (', unmatched kept' if rule['keep_unmatched'] else '')
            + ('' if rule.get('refine', True) else ', not refined'))


def choice_lines(result: dict) -> list[str]:
    """The choice as markdown: per variant mAP50 / mAP75 / ABO and instances per object,
    the mean the choice weighs; the chosen rule in bold."""
    variants = result['variants']
    lines = ['| rule | ' + ' | '.join(f'{v}: mAP50 / 75 / ABO, inst./obj.' for v in variants)
             + ' | mean | in band |', '|---' * (len(variants) + 3) + '|']
    for r in sorted(result['rows'], key=lambda r: -r['score']):
        name = _name(r['rule'])
        if r['rule'] == result['chosen']:
            name = f'**{name}**'
        cells = [f"{r[v]['segm_mAP50']:.1f} / {r[v]['segm_mAP75']:.1f} / "
                 f"{r[v]['segm_ABO']:.1f}, {r[v]['instances_per_object']:.2f}" for v in variants]
        lines.append(f"| {name} | {' | '.join(cells)} | {r['score']:.1f} | "
                     f"{'yes' if r['eligible'] else 'no'} |")
    return lines


def _cells(figures: dict | None, columns: tuple[str, ...]) -> str:
    if not figures:
        return '-'
    return ' / '.join(f'{figures[c]:.1f}' for c in columns)


def rounds_lines(result: dict) -> list[str]:
    """A round measured: each detector's val and test figures, and the train split's
    pseudo labels of both rounds; the chosen start in bold."""
    test = ('segm_mAP25', 'segm_mAP50', 'segm_mAP75', 'segm_ABO')
    lines = ['| detector | val mAP50 / 75 / ABO | test mAP25 / 50 / 75 / ABO | test, + Refine |',
             '|---|---|---|---|']
    for name, r in result['rows'].items():
        bold = name.startswith('round 2') and \
            ('weights' in name) == (result['chosen'] == 'previous')
        lines.append(f"| {f'**{name}**' if bold else name} | {_cells(r.get('val'), FIGURES)} | "
                     f"{_cells(r['test'], test)} | {_cells(r.get('refine'), test)} |")
    lines += ['', '| train pseudo labels | mAP25 / 50 / 75 / ABO | instances per object |',
              '|---|---|---|']
    lines += [f"| {name} | {_cells(p, test)} | {p['instances_per_object']:.2f} |"
              for name, p in result['pseudo'].items()]
    return lines
