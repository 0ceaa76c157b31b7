"""The bench's own measuring tools."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def test_peak_rss_is_the_childs_own(tmp_path: Path) -> None:
    """Bug: bench/peak_rss.py read ru_maxrss, which Linux carries over fork and exec, so
    every script run from the bench (about 1 GB by then) measured 1022 MB, and the
    memory ratios read 1.0 whatever the script did."""
    script = tmp_path / 'small.py'
    script.write_text('x = bytearray(50 * 2**20)\n')
    out = tmp_path / 'mb'
    parent = ('import subprocess, sys; ballast = bytearray(600 * 2**20); '
              f'subprocess.run([sys.executable, {str(ROOT / "bench/peak_rss.py")!r}, '
              f'{str(out)!r}, {str(script)!r}], check=True)')
    subprocess.run([sys.executable, '-c', parent], check=True, timeout=120)
    assert 50 < float(out.read_text()) < 300


def _bench():
    from bench import run
    return run


def test_end_to_end_time_is_judged_only_on_a_clean_run_at_this_commit(tmp_path: Path) -> None:
    """Bug: the row summed each stage's time as last run, from partial reruns that shared
    the CPU with other jobs (61.6 min, "missed"), and would as happily have passed a sum
    of fast reruns."""
    bench = _bench()
    path = tmp_path / 'clean_run.json'
    assert bench.clean_run_row(path)['ok'] is None  # no clean run: not measured
    run = dict(seconds=1200.0, seeds=None, commit=bench.source_commit(), date='today')
    path.write_text(json.dumps(run))
    assert bench.clean_run_row(path)['ok'] is True
    path.write_text(json.dumps({**run, 'seconds': 2400.0}))
    assert bench.clean_run_row(path)['ok'] is False
    for other in ({'commit': 'abc1234'}, {'seeds': [0, 1, 2]}):
        path.write_text(json.dumps({**run, **other}))
        assert bench.clean_run_row(path)['ok'] is None


def test_targets_are_judged_on_the_paired_per_seed_difference() -> None:
    """Bug caught: a target met on the mean alone (one lucky seed carrying it), or judged
    as "improved - paper + the rows' sd" (a drop within the spread passing), instead of
    the mean and the mean minus one sd of the seed-by-seed difference."""
    bench = _bench()
    cols = ('mAP25', 'mAP50', 'mAP75', 'ABO')

    def result(*seeds: tuple[float, float]) -> dict:
        return {'runs': [{'A': dict.fromkeys(cols, a), 'B': dict.fromkeys(cols, b)}
                         for a, b in seeds]}

    steady = result((81, 80), (71, 70), (91, 90))  # +1 every seed; rows' sd 10
    assert bench.paired(steady, 'A', 'B', 'mAP50') == (1.0, 0.0)
    assert bench.paired_row('x', steady, 'A', 'B', 'mAP50')['ok'] is True
    lucky = result((86, 80), (69, 70), (89, 90))  # mean +1.33, carried by one seed
    assert bench.paired_row('x', lucky, 'A', 'B', 'mAP50')['ok'] is False
    assert bench.paired_row('x', steady, 'A', 'B', 'mAP50', above=1.0)['ok'] is False
    assert bench.paired_row('x', steady, 'A', 'B', 'mAP50', above=1.0, strict=False)['ok']
    rows = ('WISE', 'WISE + Refine', 'WISE (improved)', 'WISE (improved) + Refine')
    same = {'runs': [{r: dict.fromkeys(cols, 80.0 + s) for r in rows} for s in range(3)]}
    assert bench.improved_vs_paper(same)['ok'] is True
    same['runs'][1]['WISE (improved)']['mAP75'] -= 0.5  # a drop in one seed: within sd
    assert bench.improved_vs_paper(same)['ok'] is False


def test_every_stage_the_bench_asks_a_preset_for_exists() -> None:
    """Bug caught: over_firing asked the demo presets for every pseudo-mask stage of the
    pipeline, pseudo_counts included, which they have only with --counts: the pipeline
    refused ("unknown stage") and the benchmark failed without a figure."""
    from conftest import run_tool
    bench = _bench()
    requests = [('demo', bench.OVER_FIRING_STAGES), ('demo-hard', bench.OVER_FIRING_STAGES),
                ('demo', (*bench.TABLE_STAGES, *bench.DENSITY_STAGES, 'wise_solov2',
                          '--detector', 'mask-rcnn', 'solov2')),
                ('demo-hard', bench.TABLE_STAGES), ('demo', bench.COUNTS_DEMO_STAGES),
                ('demo-crowded', bench.CROWDED_STAGES)]
    for preset, stages in requests:
        run_tool('tools/pipeline.py', preset, '--dry-run', '--seeds', '0', '--only', *stages)


def test_a_partial_run_writes_where_it_is_told(tmp_path: Path) -> None:
    """Bug caught: a run of a few benchmarks (``--only``) overwrote bench/results.md, the
    whole run's, with rows marked not measured."""
    bench = _bench()
    before = (ROOT / 'bench/results.md').read_bytes()
    row = bench.row('figure', 1.0, '>= 0', True, 'x')
    bench.write_results({'counts': [row]}, tmp_path / 'part', 'bench/run.py --only counts')
    md = (tmp_path / 'part.md').read_text()
    assert 'bench/run.py --only counts' in md and '| counts | figure | 1.0 x | >= 0 | yes |' in md
    assert json.loads((tmp_path / 'part.json').read_text())['results']['counts'] == [row]
    assert (ROOT / 'bench/results.md').read_bytes() == before
