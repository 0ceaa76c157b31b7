"""tools/pipeline.py: which stages run, and the table it writes."""
from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path

from conftest import ROOT, run_tool

_spec = importlib.util.spec_from_file_location('pipeline', ROOT / 'tools/pipeline.py')
pipeline = sys.modules['pipeline'] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pipeline)


def test_a_stage_is_fresh_only_when_its_outputs_are_newer_than_its_inputs(tmp_path: Path):
    src, code, out = tmp_path / 'in.json', tmp_path / 'code', tmp_path / 'out.json'
    code.mkdir()
    (code / 'a.py').write_text('')
    src.write_text('{}')
    stage = pipeline.Stage('s', [], inputs=[str(src), str(code)], outputs=[str(out)])
    assert not stage.fresh()  # no output yet
    time.sleep(0.01)
    out.write_text('{}')
    assert stage.fresh()
    future = time.time() + 5
    os.utime(code / 'a.py', (future, future))  # code changed after the output
    assert not stage.fresh()
    os.utime(out, (future + 1, future + 1))
    assert stage.fresh()
    missing = pipeline.Stage('s', [], inputs=[str(tmp_path / 'nope')], outputs=[str(out)])
    assert not missing.fresh()  # an input that does not exist cannot be older


def test_from_reruns_a_stage_and_all_after_it_only() -> None:
    out = run_tool('tools/pipeline.py', 'demo', '--dry-run', '--from', 'wise').stdout
    ran = [line.split()[1] for line in out.splitlines() if line.startswith('[pipeline] ')
           and not line.split()[1].endswith(':') and line.split()[1] != 'all']
    assert ran == ['wise', 'table']
    assert 'mask-rcnn_r18_shapes_pseudo_refine.py' in out  # WISE + Refine is tested
    proc = run_tool('tools/pipeline.py', 'demo', '--dry-run', '--from', 'nope', check=False)
    assert proc.returncode != 0 and "unknown stage 'nope'" in proc.stderr


def test_table_has_the_papers_rows_and_columns(tmp_path: Path) -> None:
    def metrics(path: Path, values, key='metrics') -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        names = ('segm_mAP25', 'segm_mAP50', 'segm_mAP75', 'segm_ABO')
        path.write_text(json.dumps({key: dict(zip(names, values))}))

    metrics(tmp_path / 'full/metrics.metrics.json', (70, 60, 40, 65))
    metrics(tmp_path / 'prm_baseline/val_prm.json.report.json', (40, 30, 10, 35), 'quality')
    metrics(tmp_path / 'wise/metrics.metrics.json', (60, 50, 30, 55))
    metrics(tmp_path / 'wise/refine.metrics.json', (62, 52, 33, 58))
    pipeline.write_table(tmp_path)
    md = (tmp_path / 'results.md').read_text()
    assert md.splitlines()[0].startswith('| method | supervision | mAP25 | mAP50 | mAP75 | ABO |')
    assert '| WISE + Refine | image labels | 62.0 | 52.0 | 33.0 | 58.0 |' in md
    assert 'WISE / fully supervised mAP50: 0.83' in md
    res = json.loads((tmp_path / 'results.json').read_text())
    assert list(res['rows']) == ['Mask R-CNN (full)', 'PRM', 'WISE', 'WISE + Refine']
    assert (tmp_path / 'results.png').read_bytes()[:4] == b'\x89PNG'
