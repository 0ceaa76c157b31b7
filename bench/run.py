"""Benchmarks: each runs in one go and prints its figure next to its target.

    python bench/run.py                 # all
    python bench/run.py --only demo_full

Results go to bench/results.md and bench/results.json (machine, versions,
figures, targets). Targets live here, never in timed tests.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BENCHMARKS: dict[str, Callable[[Path], list[dict]]] = {}


def benchmark(fn: Callable[[Path], list[dict]]) -> Callable[[Path], list[dict]]:
    BENCHMARKS[fn.__name__] = fn
    return fn


def _run(*cmd: str | os.PathLike) -> float:
    """Run a command from the repo root; return its wall time in seconds."""
    t0 = time.perf_counter()
    subprocess.run([str(c) for c in cmd], cwd=ROOT, check=True,
                   env={**os.environ, 'PYTHONPATH': str(ROOT)})
    return time.perf_counter() - t0


def _row(name: str, value: float, target: str, ok: bool, unit: str = '') -> dict:
    return dict(name=name, value=round(value, 3), unit=unit, target=target, ok=bool(ok))


@benchmark
def demo_full(work: Path) -> list[dict]:
    """`make demo`'s fully supervised stage from scratch: accuracy and wall time."""
    py = sys.executable
    data, wd = work / 'shapes', work / 'full'
    cfg = work / 'demo_full.py'
    cfg.write_text(f"_base_ = {str(ROOT / 'configs/wise/demo/mask-rcnn_r18_shapes_full.py')!r}\n"
                   f"data_root = {str(data) + '/'!r}\n"
                   "train_dataloader = dict(dataset=dict(data_root=data_root))\n"
                   "val_dataloader = dict(dataset=dict(data_root=data_root))\n"
                   "test_dataloader = val_dataloader\n"
                   "val_evaluator = dict(ann_file=data_root + 'annotations/val_instances.json')\n"
                   "test_evaluator = val_evaluator\n")
    t = _run(py, 'tools/make_shapes_dataset.py', data, '--seed', '0')  # the demo's data
    t += _run(py, 'tools/dataset_converters/voc_to_coco.py', data, '--classes-file',
              data / 'classes.txt', '--splits', 'train', 'val')
    t_train = _run(py, 'tools/train.py', cfg, '--work-dir', wd)
    ckpt = (wd / 'last_checkpoint').read_text().strip()
    t_test = _run(py, 'tools/test.py', cfg, ckpt, '--work-dir', wd / 'test',
                  '--cfg-options', f'test_evaluator.outfile_prefix={wd / "metrics"}')
    metrics = json.loads((wd / 'metrics.metrics.json').read_text())['metrics']
    total = t + t_train + t_test
    return [
        _row('demo full: mask mAP50 (val)', metrics['segm_mAP50'], '>= 50',
             metrics['segm_mAP50'] >= 50, '%'),
        _row('demo full: mask mAP25 / mAP75 / ABO',
             metrics['segm_mAP25'], f"(mAP75 {metrics['segm_mAP75']}, ABO "
             f"{metrics['segm_ABO']})", True, '%'),
        _row('demo full: data + train + test wall time', total / 60, '< 15', total < 900, 'min'),
        _row('demo full: training wall time', t_train / 60, 'information', True, 'min'),
    ]


@benchmark
def prm_step_time(work: Path) -> list[dict]:
    """Training step of the PRM classifier / the same network with average pooling."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import projects.wise  # noqa: F401
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample

    init_default_scope('mmdet')
    cfg = Config.fromfile(ROOT / 'configs/wise/demo/prm_r18_shapes.py')
    torch.manual_seed(0)
    inputs = torch.randn(16, 3, 128, 128)
    samples = []
    for i in range(16):
        s = DetDataSample()
        s.gt_image_labels = torch.tensor([i % 5, (i + 2) % 5])
        samples.append(s)
    models = {}
    for name in ('PRMClassifier', 'GAPClassifier'):
        torch.manual_seed(0)
        models[name] = MODELS.build({**cfg.model, 'type': name}).train()
    opts = {k: torch.optim.SGD(m.parameters(), lr=1e-3) for k, m in models.items()}
    times = {k: [] for k in models}
    for rep in range(12):  # interleaved, so drift in machine load hits both alike
        for name, model in models.items():
            t0 = time.perf_counter()
            loss = model.loss(inputs, samples)['loss_cls']
            opts[name].zero_grad()
            loss.backward()
            opts[name].step()
            if rep >= 2:  # warm-up steps not counted
                times[name].append(time.perf_counter() - t0)
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    ratio = med['PRMClassifier'] / med['GAPClassifier']
    return [
        _row('PRM / GAP training step time (batch 16, 128 px, demo net)', ratio, '<= 1.10',
             ratio <= 1.10, 'x'),
        _row('PRM training step (median)', med['PRMClassifier'] * 1000, 'information', True, 'ms'),
    ]


@benchmark
def builtin_proposals(work: Path) -> list[dict]:
    """The built-in proposal source: recall on the demo's val split, CPU time per image."""
    import cv2
    import numpy as np

    from projects.wise.proposals import BuiltinProposals
    from projects.wise.utils.io import read_image

    py = sys.executable
    data, out = work / 'shapes', work / 'proposals'
    _run(py, 'tools/make_shapes_dataset.py', data, '--seed', '0')  # the demo's val images
    _run(py, 'tools/dataset_converters/voc_to_coco.py', data, '--classes-file',
         data / 'classes.txt', '--splits', 'val')
    _run(py, 'tools/gen_proposals.py', '--ann-file', data / 'annotations/val_instances.json',
         '--out-dir', out, '--max-proposals', '1000', '--recall')
    recall = {int(k): 100 * v for k, v in json.loads((out / 'recall.json').read_text())
              ['recall'].items()}
    val = [data / 'JPEGImages' / im['file_name'] for im in
           json.loads((data / 'annotations/val_instances.json').read_text())['images']]

    # One core: CPU time of this process with OpenCV single-threaded. A 500x375
    # image is 4 x 3 val images tiled (more objects and clutter than one scaled up).
    cv2.setNumThreads(1)
    small = [read_image(p) for p in val[:20]]
    large = [np.concatenate([np.concatenate(small[i + r:i + r + 4], 1) for r in (0, 4, 8)],
                            0)[:375, :500] for i in range(0, 8, 2)]
    source = BuiltinProposals()

    def cpu_time(images: list) -> float:
        times = []
        for img in images:
            t0 = time.process_time()
            source.from_array(img)
            times.append(time.process_time() - t0)
        return float(np.median(times))

    t_small, t_large = cpu_time(small), cpu_time(large)
    return [
        _row('builtin proposals: recall@0.5 IoU, top 500 (demo val)', recall[500], '>= 90',
             recall[500] >= 90, '%'),
        _row('builtin proposals: recall top 100 / top 1000', recall[100],
             f'(top 1000: {recall[1000]:.1f})', True, '%'),
        _row('builtin proposals: CPU time per 500x375 image (one core, median)', t_large,
             '<= 1', t_large <= 1, 's'),
        _row('builtin proposals: CPU time per 128 px image (one core, median)', t_small,
             'information', True, 's'),
    ]


def _versions() -> dict:
    import mmcv
    import mmdet
    import mmengine
    import torch
    return dict(python=platform.python_version(), torch=torch.__version__,
                mmcv=mmcv.__version__, mmengine=mmengine.__version__, mmdet=mmdet.__version__,
                machine=f'{platform.machine()}, {os.cpu_count()} cores, '
                        f'{platform.processor() or platform.platform()}')


def write_results(rows: dict[str, list[dict]]) -> None:
    """Merge ``rows`` into bench/results.{json,md}: a partial run keeps the others."""
    info = _versions()
    path = ROOT / 'bench/results.json'
    if path.is_file():
        rows = {**json.loads(path.read_text())['results'], **rows}
    path.write_text(json.dumps(dict(env=info, results=rows), indent=2))
    lines = ['# Benchmark results', '', 'Made by `make bench` (bench/run.py).', '',
             ', '.join(f'{k}: {v}' for k, v in info.items()), '',
             '| benchmark | figure | value | target | met |', '|---|---|---|---|---|']
    for bench, items in rows.items():
        for r in items:
            lines.append(f"| {bench} | {r['name']} | {r['value']} {r['unit']} | {r['target']} | "
                         f"{'yes' if r['ok'] else 'NO'} |")
    (ROOT / 'bench/results.md').write_text('\n'.join(lines) + '\n')


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--only', nargs='+', choices=sorted(BENCHMARKS))
    p.add_argument('--keep', action='store_true', help='keep the work folders')
    args = p.parse_args(argv)
    rows = {}
    for name in args.only or BENCHMARKS:
        work = Path(tempfile.mkdtemp(prefix=f'wise-bench-{name}-'))
        try:
            rows[name] = BENCHMARKS[name](work)
        except Exception as e:  # one broken benchmark must not lose the others' figures
            rows[name] = [_row(f'failed: {type(e).__name__}: {e}', float('nan'), 'runs', False)]
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        for r in rows[name]:
            print(f"[bench] {name}: {r['name']} = {r['value']} {r['unit']} "
                  f"(target {r['target']}) {'ok' if r['ok'] else 'MISSED'}", flush=True)
    write_results(rows)
    return 0 if all(r['ok'] for items in rows.values() for r in items) else 1


if __name__ == '__main__':
    sys.exit(main())
