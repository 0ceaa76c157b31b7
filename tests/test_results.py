"""The figures the documents quote: each results table in README.md and docs/ is the
committed run it names, rendered, never typed."""
from __future__ import annotations

import json

from projects.wise.pipeline.publish import BLOCK, TABLES, documents, stale_documents


def test_documents_quote_the_committed_tables_of_seeded_test_split_runs() -> None:
    """Bug caught: a table in README or docs edited by hand, left from an earlier run
    (means with no per-seed figures behind them), scored on the split its options were
    chosen on, or published without the records of what trained it."""
    blocks = {m[3].partition('.')[0] for p in documents() for m in BLOCK.finditer(p.read_text())
              if m[2] == 'results'}
    assert 'demo-hard' in blocks
    assert not stale_documents()  # tools/pipeline.py PRESET --seeds ... --publish
    for name in blocks:
        table = json.loads((TABLES / f'{name}.json').read_text())
        if table.get('kind', 'wise') != 'wise':
            continue
        assert table['split'] == 'test' and len(table['seeds']) >= 3, name
        assert len(table['runs']) == len(table['seeds'])
        for seed in table['seeds']:
            records = table['records'][f'seed{seed}']
            assert records and all({'commands', 'configs', 'source', 'commit'} <= set(r)
                                   for r in records.values()), (name, seed)


def test_the_sweep_table_holds_every_variant_and_seed_with_its_records() -> None:
    """Bug caught: a sweep summary published from fewer seeds than it claims, a variant
    without the records of the stages that made its figures, or a summary whose means
    are not of its per-seed figures."""
    table = json.loads((TABLES / 'sweep.json').read_text())
    assert table['kind'] == 'sweep' and len(table['seeds']) >= 3
    for name, variant in table['variants'].items():
        assert sorted(variant['seeds']) == [f'seed{s}' for s in table['seeds']]
        ratios = [r['improved']['ratio'] for r in variant['seeds'].values()]
        assert abs(sum(ratios) / len(ratios) - variant['mean']['improved']['ratio']) < 1e-9
        assert {'prm', 'pseudo', 'pseudo_improved', 'oracle_pseudo_improved'} <= set(
            table['records'][f'{name}/seed{table["seeds"][0]}']), name
        assert {'data', 'proposals'} <= set(table['records'][name]), name


def test_the_relabelling_defaults_are_the_rule_chosen_on_val() -> None:
    """Bug caught: tools/relabel.py's defaults (and the pipeline's rounds) drifting from
    the rule the committed val study chose, or a study whose means are not of its
    per-seed figures or that took part of the variant sweep."""
    from dataclasses import asdict

    from projects.wise.pseudo import RelabelRule
    table = json.loads((TABLES / 'relabel_choice.json').read_text())
    assert table['kind'] == 'relabel_choice'
    assert table['chosen'] == dict(asdict(RelabelRule()), refine=True)
    assert not any(v.startswith('sweep') for v in table['variants'])
    chosen = next(r for r in table['rows'] if r['rule'] == table['chosen'])
    for variant in table['variants']:
        k = next(i for i, r in enumerate(table['rows'][1:]) if r['rule'] == table['chosen'])
        seeds = table['runs'][variant].values()
        mean = sum(run['rules'][k]['segm_mAP50'] for run in seeds) / len(seeds)
        assert abs(mean - chosen[variant]['segm_mAP50']) < 1e-3


def test_a_rounds_default_start_is_the_one_chosen_on_val() -> None:
    """Bug caught: --round-weights defaulting to another start than the committed round
    study chose on val, or a study without the val figures it chose by."""
    from projects.wise.pipeline.presets import ROUND_WEIGHTS
    table = json.loads((TABLES / 'round_weights.json').read_text())
    assert table['kind'] == 'round_weights' and table['chosen'] == ROUND_WEIGHTS
    starts = [r for name, r in table['rows'].items() if name.startswith('round 2')]
    assert len(starts) == 2 and all({'val', 'test', 'refine'} <= set(r) for r in starts)


def test_the_first_rounds_pseudo_labels_come_from_the_source_chosen_on_val() -> None:
    """Bug caught: the improved WISE stages (and so the rounds) training on another
    pseudo-label source than the committed val study chose."""
    from projects.wise.pipeline import SELECTIONS
    table = json.loads((TABLES / 'source_choice.json').read_text())
    assert table['kind'] == 'relabel_choice' and table['variants'] == ['demo', 'demo-hard']
    assert table['chosen']['selector'] == list(SELECTIONS['pseudo_improved'])
