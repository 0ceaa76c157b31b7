"""Benchmarks: each runs in one go and prints its figure next to its target.

    python bench/run.py                 # all
    python bench/run.py --only demo_pipeline --out bench/results-demo

Results go to bench/results.md and bench/results.json (machine, versions,
figures, targets; ``--out`` names another pair, for a run of some benchmarks that
must not replace the whole run's). Targets live here, never in timed tests.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from projects.wise.pipeline import source_commit  # clean_run.json's: like with like
from projects.wise.pipeline.publish import render_documents
from projects.wise.pipeline.sweep import latest_metrics

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS: dict[str, Callable[[Path], list[dict]]] = {}


def benchmark(fn: Callable[[Path], list[dict]]) -> Callable[[Path], list[dict]]:
    BENCHMARKS[fn.__name__] = fn
    return fn


def _run(*cmd: str | os.PathLike, env: dict[str, str] | None = None) -> float:
    """Run a command from the repo root (``env``: added to this one's); return its wall
    time in seconds."""
    t0 = time.perf_counter()
    subprocess.run([str(c) for c in cmd], cwd=ROOT, check=True,
                   env=None if env is None else {**os.environ, **env})
    return time.perf_counter() - t0


#: a one-core benchmark's process: every thread pool at one thread from the start.
#: Process time counts every thread's, spinning ones included, and an OpenMP pool that
#: threadpoolctl does not reach once loaded made gen_pseudo's figure 1.5x.
ONE_CORE_ENV = {k: '1' for k in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS',
                                 'NUMBA_NUM_THREADS')}


def one_core(fn: Callable[[Path], list[dict]]) -> Callable[[Path], list[dict]]:
    """A benchmark of CPU time on one core: run in a child process with
    :data:`ONE_CORE_ENV` (``bench/run.py --one-core NAME``)."""
    @functools.wraps(fn)
    def in_child(work: Path) -> list[dict]:
        rows = work / 'rows.json'
        _run(sys.executable, __file__, '--one-core', fn.__name__, '--work', work,
             '--rows', rows, env=ONE_CORE_ENV)
        return json.loads(rows.read_text())
    in_child.measure = fn
    return in_child


def row(name: str, value: float, target: str, ok: bool | None, unit: str = '') -> dict:
    """A figure against its target; ``ok=None``: information, no target to meet."""
    return dict(name=name, value=round(value, 3), unit=unit, target=target,
                ok=None if ok is None else bool(ok))


@benchmark
def prm_step_time(work: Path) -> list[dict]:
    """Training step of the PRM classifier / the same network with average pooling, and
    of PRM + Density (ILC, its second stage: every loss) / the PRM."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import projects.wise  # noqa: F401
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample

    init_default_scope('mmdet')
    cfg = Config.fromfile(ROOT / 'configs/wise/demo/prm_r18_shapes.py')
    density_cfg = Config.fromfile(ROOT / 'configs/wise/demo/prm-density_r18_shapes.py')
    torch.manual_seed(0)
    inputs = torch.randn(16, 3, 128, 128)
    samples = []
    for i in range(16):
        s = DetDataSample()
        s.gt_image_labels = torch.tensor([i % 5, (i + 2) % 5])
        s.gt_image_counts = torch.tensor([1 + i % 4, 1 + i % 6])
        samples.append(s)
    models = {}
    for name, model_cfg in (('PRMClassifier', cfg.model), ('GAPClassifier', cfg.model),
                            ('PRMDensity', density_cfg.model)):
        torch.manual_seed(0)
        models[name] = MODELS.build({**model_cfg, 'type': name}).train()
    models['PRMDensity'].spatial_loss = True
    opts = {k: torch.optim.SGD(m.parameters(), lr=1e-3) for k, m in models.items()}
    times = {k: [] for k in models}
    for rep in range(12):  # interleaved, so drift in machine load hits all alike
        for name, model in models.items():
            t0 = time.perf_counter()
            loss = sum(model.loss(inputs, samples).values())
            opts[name].zero_grad()
            loss.backward()
            opts[name].step()
            if rep >= 2:  # warm-up steps not counted
                times[name].append(time.perf_counter() - t0)
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    ratio = med['PRMClassifier'] / med['GAPClassifier']
    density = med['PRMDensity'] / med['PRMClassifier']
    return [
        row('PRM / GAP training step time (batch 16, 128 px, demo net)', ratio, '<= 1.10',
             ratio <= 1.10, 'x'),
        row('PRM training step (median)', med['PRMClassifier'] * 1000, 'information', None, 'ms'),
        row('PRM + Density (ILC, all losses) / PRM training step time (same net and batch)',
             density, '<= 1.15', density <= 1.15, 'x'),
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
    _run(py, 'tools/make_shapes_dataset.py', data, '--seed', '0',  # the demo's val images
         '--num-test', '0')
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
        row('builtin proposals: recall@0.5 IoU, top 500 (demo val)', recall[500], '>= 90',
             recall[500] >= 90, '%'),
        row('builtin proposals: recall top 100 / top 1000', recall[100],
             f'(top 1000: {recall[1000]:.1f})', None, '%'),
        row('builtin proposals: CPU time per 500x375 image (one core, median)', t_large,
             '<= 1', t_large <= 1, 's'),
        row('builtin proposals: CPU time per 128 px image (one core, median)', t_small,
             'information', None, 's'),
    ]

def _tiled_dataset(work: Path, num: int, seed: int = 0) -> Path:
    """``num`` 500x375 images, each 4 x 3 demo images tiled, in VOC layout + COCO json
    (labels and instances): VOC-sized inputs from the built-in generator."""
    import numpy as np
    from pycocotools import mask as mask_util

    from projects.wise.utils.io import dump_json, read_image
    from projects.wise.utils.masks import rle_fields, to_rle
    py = sys.executable
    src, root = work / 'tiles_src', work / 'tiles'
    _run(py, 'tools/make_shapes_dataset.py', src, '--num-train', str(12 * num), '--num-val', '0',
         '--num-test', '0', '--seed', str(seed))
    _run(py, 'tools/dataset_converters/voc_to_coco.py', src, '--classes-file',
         src / 'classes.txt', '--splits', 'train')
    coco = json.loads((src / 'annotations/train_instances.json').read_text())
    by_img: dict = {}
    for a in coco['annotations']:
        by_img.setdefault(a['image_id'], []).append(a)
    (root / 'JPEGImages').mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for n in range(num):
        tiles = coco['images'][12 * n:12 * n + 12]
        canvas = np.zeros((384, 512, 3), np.uint8)
        labels = set()
        for t, img in enumerate(tiles):
            y, x = 128 * (t // 4), 128 * (t % 4)
            canvas[y:y + 128, x:x + 128] = read_image(src / 'JPEGImages' / img['file_name'])
            for a in by_img.get(img['id'], []):
                m = np.zeros((384, 512), np.uint8)
                m[y:y + 128, x:x + 128] = mask_util.decode(to_rle(a['segmentation'], 128, 128))
                m = np.asfortranarray(m[:375, :500])
                if m.any():
                    anns.append(dict(id=len(anns) + 1, image_id=n + 1,
                                     category_id=a['category_id'], iscrowd=0,
                                     **rle_fields(mask_util.encode(m))))
                    labels.add(a['category_id'])
        from PIL import Image
        name = f'tile_{n:05d}.jpg'
        Image.fromarray(canvas[:375, :500]).save(root / 'JPEGImages' / name, quality=92)
        images.append(dict(id=n + 1, file_name=name, height=375, width=500,
                           labels=sorted(labels)))
    cats = coco['categories']
    dump_json(dict(images=images, categories=cats), root / 'annotations/train_labels.json')
    dump_json(dict(images=images, categories=cats, annotations=anns),
              root / 'annotations/train_instances.json')
    (root / 'classes.txt').write_text((src / 'classes.txt').read_text())
    return root


def _peak_rss_mb(script: str, *args) -> tuple[float, float]:
    """(wall seconds, peak resident MB) of a Python script run as a child."""
    with tempfile.NamedTemporaryFile(suffix='.mb') as f:
        t = _run(sys.executable, 'bench/peak_rss.py', f.name, script, *args)
        return t, float(Path(f.name).read_text())


@benchmark
def gen_pseudo_overhead(work: Path) -> list[dict]:
    """gen_pseudo time per image / its PRM time per image, at VOC scale: R-50 PRM at
    448 px, 500x375 images, 1000 precomputed proposals each (paper's selection)."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import projects.wise  # noqa: F401
    from mmdet.registry import MODELS
    from projects.wise.proposals import PrecomputedProposals
    py = sys.executable
    root = _tiled_dataset(work, 16)
    props = work / 'tile_proposals'
    _run(py, 'tools/gen_proposals.py', '--ann-file', root / 'annotations/train_labels.json',
         '--out-dir', props, '--max-proposals', '1000')
    reader = PrecomputedProposals(root=str(props))  # not .source.json, whatever the format
    counts = [len(reader(dict(img_path=p.name, height=375, width=500)))
              for p in (root / 'JPEGImages').iterdir()]
    classes = tuple((root / 'classes.txt').read_text().split())
    cfg = work / 'prm_r50_tiles.py'
    cfg.write_text(f"_base_ = {str(ROOT / 'configs/wise/prm_r50_voc.py')!r}\n"
                   f"classes = {classes!r}\n"
                   f"data_root = {str(root) + '/'!r}\n"
                   "model = dict(backbone=dict(init_cfg=None), num_classes=len(classes))\n"
                   "train_dataloader = dict(dataset=dict(data_root=data_root, "
                   "metainfo=dict(classes=classes)))\n"
                   "test_dataloader = dict(dataset=dict(data_root=data_root, "
                   "metainfo=dict(classes=classes)))\n")
    init_default_scope('mmdet')
    torch.manual_seed(0)  # no weights can be downloaded: time a random-weight R-50
    model = MODELS.build(Config.fromfile(cfg).model)
    ckpt = work / 'prm_r50_random.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    out = work / 'tiles_pseudo.json'
    _run(py, 'tools/gen_pseudo.py', cfg, ckpt, '--out', out, '--ann-file',
         'annotations/train_labels.json', '--proposals', 'type=precomputed', f'root={props}')
    sec = json.loads(Path(f'{out}.report.json').read_text())['seconds_per_image']
    ratio = sec['total'] / sec['peaks']
    return [
        row('gen_pseudo time / PRM time per image (R-50 448 px, 500x375, '
             f'{min(counts)}-{max(counts)} proposals)', ratio, '<= 1.5', ratio <= 1.5, 'x'),
        row('gen_pseudo: PRM seconds per image (load + forward)', sec['peaks'],
             f"(total {sec['total']:.3f} s)", None, 's'),
    ]


@benchmark
def gen_pseudo_memory(work: Path) -> list[dict]:
    """Peak memory and time of gen_pseudo on 1x and 10x the images: flat, linear."""
    demo = _demo_outputs('data', 'proposals', 'prm')
    data = ROOT / 'data/shapes'
    ckpt = (demo / 'prm/last_checkpoint').read_text().strip()
    labels = json.loads((data / 'annotations/train_labels.json').read_text())
    rows, stats = [], {}
    for n in (100, 1000):
        sub = work / f'train_{n}_labels.json'
        sub.write_text(json.dumps({**labels, 'images': labels['images'][:n]}))
        stats[n] = _peak_rss_mb('tools/gen_pseudo.py', 'configs/wise/demo/prm_r18_shapes.py',
                                ckpt, '--out', work / f'pseudo_{n}.json', '--ann-file', sub,
                                '--gt-ann-file', data / 'annotations/train_instances.json',
                                '--proposals', 'type=precomputed', f'root={data / "proposals"}')
    (t1, m1), (t10, m10) = stats[100], stats[1000]
    slope = (t10 - t1) / 900
    rows.append(row('gen_pseudo peak memory, 1000 / 100 images', m10 / m1, '<= 1.2',
                     m10 / m1 <= 1.2, 'x'))
    rows.append(row('gen_pseudo peak memory at 100 / 1000 images', m1, f'({m10:.0f} MB)',
                     None, 'MB'))
    rows.append(row('gen_pseudo time slope (demo, precomputed proposals)', slope,
                     f'(100 images {t1:.1f} s, 1000 images {t10:.1f} s)', None, 's/image'))
    return rows


#: the demo's trainings are measured over these seeds (work_dirs/demo/seed<N>)
SEEDS = ('0', '1', '2')


def _demo_outputs(*stages: str, seeds: tuple[str, ...] = SEEDS[:1], preset: str = 'demo',
                  detectors: tuple[str, ...] = ('mask-rcnn',)) -> Path:
    """work_dirs/<preset>/seed<first seed> after running (or reusing) the given pipeline
    stages for ``seeds``."""
    _run(sys.executable, 'tools/pipeline.py', preset, '--seeds', *seeds, '--only', *stages,
         '--detector', *detectors)
    return ROOT / f'work_dirs/{preset}/seed{seeds[0]}'


@benchmark
def peak_grad(work: Path) -> list[dict]:
    """Peak stimulation's backward, 'prm' (the released rule) against 'mean' (1 / K per
    peak): the demo PRM trained with each over 3 seeds, its classification mAP, peak
    precision and instance recall (val), and its pseudo masks' mAP50 (train)."""
    rows = []
    for mode in ('prm', 'mean'):
        out = ROOT / 'work_dirs/peak_grad' / mode
        _run(sys.executable, 'tools/pipeline.py', 'demo', '--work-dir', out, '--seeds', *SEEDS,
             '--only', 'prm', 'pseudo', '--prm-cfg-options', f'model.peak_grad={mode}')
        runs = []
        for seed in SEEDS:
            prm = latest_metrics(out / f'seed{seed}/prm/test')
            pseudo = json.loads((out / f'seed{seed}/pseudo/train_pseudo.json.report.json')
                                .read_text())['quality']
            runs.append((prm['prm/mAP'], prm['prm/peak_precision'], prm['prm/instance_recall'],
                         pseudo['segm_mAP50'], pseudo['segm_ABO']))
        stats = [(statistics.mean(col), statistics.stdev(col)) for col in zip(*runs)]
        text = ', '.join(f'{name} {m:.1f} ± {sd:.1f}' for name, (m, sd) in zip(
            ('cls mAP', 'peak precision', 'instance recall', 'pseudo ABO'),
            [stats[0], stats[1], stats[2], stats[4]]))
        rows.append(row(f"peak_grad='{mode}': pseudo-mask mAP50 (demo train), mean of 3 seeds",
                         stats[3][0], f'(sd {stats[3][1]:.1f}; {text})', None, '%'))
    return rows


#: the pipeline's pseudo-mask stage of each selection that over_firing compares
OVER_FIRING_SELECTIONS = {'paper': 'pseudo', 'improved': 'pseudo_improved'}
OVER_FIRING_STAGES = ('data', 'proposals', 'prm', *OVER_FIRING_SELECTIONS.values())


def _pseudo_figures(preset: str, work: Path) -> dict[str, list[tuple[float, float, float]]]:
    """Per selection ('paper', 'improved': the pipeline's pseudo-mask stages) and seed:
    the train pseudo masks' mAP50, the same selection's from ground-truth centres (the
    oracle) and pseudo instances per object."""
    from projects.wise import pipeline
    p = pipeline.presets()[preset]
    _demo_outputs(*OVER_FIRING_STAGES, seeds=SEEDS, preset=preset)
    out: dict[str, list[tuple[float, float, float]]] = {k: [] for k in OVER_FIRING_SELECTIONS}
    for seed in SEEDS:
        run = ROOT / f'work_dirs/{preset}/seed{seed}'
        ckpt = (run / 'prm/last_checkpoint').read_text().strip()
        for name, stage in OVER_FIRING_SELECTIONS.items():
            selection = pipeline.SELECTIONS[stage]
            oracle = work / f'{preset}-{name}-{seed}.json'
            _run(sys.executable, 'tools/gen_pseudo.py', p.prm_cfg, ckpt, '--out', oracle,
                 '--oracle', '--seed', seed, *selection, '--proposals', 'type=precomputed',
                 f'root={ROOT / p.proposals_root}')
            mine = json.loads((run / f'{stage}/train_pseudo.json.report.json').read_text())
            best = json.loads(Path(f'{oracle}.report.json').read_text())
            out[name].append((mine['quality']['segm_mAP50'], best['quality']['segm_mAP50'],
                              mine['instances_per_object']))
    return out


@benchmark
def over_firing(work: Path) -> list[dict]:
    """Pseudo masks of the train split when the PRM over-fires (the hard variant) and
    when it does not (the demo): the paper's selection and the improved one against
    the same selection from ground-truth centres, and instances per object (3 seeds)."""
    rows = []
    for preset in ('demo-hard', 'demo'):
        figures = _pseudo_figures(preset, work)
        for name, runs in figures.items():
            ratios = [p / o if o else 0.0 for p, o, _ in runs]
            ratio, per_object = statistics.mean(ratios), statistics.mean(r[2] for r in runs)
            detail = (f'(sd {statistics.stdev(ratios):.3f}; mAP50 '
                      f'{statistics.mean(r[0] for r in runs):.1f} vs oracle '
                      f'{statistics.mean(r[1] for r in runs):.1f})')
            judged = preset == 'demo-hard' and name == 'improved'
            floor = 0.85 if judged else 0.70 if name == 'paper' and preset == 'demo' else None
            rows.append(row(f'{preset}: pseudo mAP50 / oracle, {name} selection, mean of 3 '
                             'seeds', ratio, detail if floor is None else f'>= {floor} {detail}',
                             None if floor is None else ratio >= floor, 'x'))
            rows.append(row(f'{preset}: pseudo instances per object, {name} selection, mean',
                             per_object, '0.9 - 1.1' if judged else 'information',
                             0.9 <= per_object <= 1.1 if judged else None, 'x'))
    return rows


#: refine_cost's test sets: images -> (split, how many of its images; None: all)
REFINE_SIZES = {200: ('test', None), 1000: ('train', 1000), 2000: ('train', None)}
#: the refine hook's summary line in tools/test.py's log: predictions, its own CPU time
REFINED = re.compile(r'ProposalRefineHook \(test\): (\d+) predictions refined, (\d+) kept'
                     r'.*; ([\d.]+) ms of CPU over (\d+) images')


def _test_run(cfg: str, ckpt: str, work: Path, split: str, num: int | None,
              refine: bool) -> tuple[float, dict]:
    """tools/test.py of the demo WISE on ``num`` images of ``split``: its wall time and,
    with the hook, what its summary says (predictions, images, the hook's CPU ms)."""
    ann = f'annotations/{split}_instances.json'
    seconds = _run(sys.executable, 'tools/test.py', cfg, ckpt, '--work-dir', work,
                   *(['--refine'] if refine else []), '--cfg-options',
                   f'test_dataloader.dataset.ann_file={ann}',
                   f'test_evaluator.ann_file={ROOT / "data/shapes" / ann}',
                   *([f'test_dataloader.dataset.indices={num}'] if num else []))
    if not refine:
        return seconds, {}
    log = max(work.glob('*/*.log'), key=lambda p: p.stat().st_mtime).read_text()
    refined, kept, ms, images = REFINED.findall(log)[-1]
    return seconds, dict(predictions=int(refined) + int(kept), cpu_ms=float(ms),
                         images=int(images))


def _refine_ms_per_image(num_predictions: int, images: int = 20) -> float:
    """The microbenchmark on the demo's own test images and proposals: refine() alone,
    one core, with as many predictions an image as the model emits."""
    from projects.wise.engine import refine
    from projects.wise.proposals import PrecomputedProposals
    from projects.wise.utils.io import load_coco_json
    _one_core()
    data = ROOT / 'data/shapes'
    coco = load_coco_json(data / 'annotations/test_instances.json')
    source = PrecomputedProposals(root=str(data / 'proposals'))
    instances: dict = {}
    for a in coco['annotations']:
        instances.setdefault(a['image_id'], []).append(a)
    per_image = []
    for im in coco['images'][:images]:
        image = dict(img_path=str(data / 'JPEGImages' / im['file_name']), height=im['height'],
                     width=im['width'], img_id=im['id'])
        pred = _predictions(instances[im['id']], (im['height'], im['width']), num_predictions)
        per_image.append(_cpu_ms(lambda: refine(pred, source(image))))
    return statistics.median(per_image)


@benchmark
@one_core
def refine_cost(work: Path) -> list[dict]:
    """The refine hook's cost on the real path: tools/test.py with it on the demo WISE
    model's own detections at 200, 1,000 and 2,000 images, its own CPU time per image
    (the hook times itself: the thread's CPU, not the noisy difference of two wall
    times), against refine() alone with as many predictions as the model emits. Linear:
    the largest set's per-image cost within 25 % of the smallest's. Also the wall time
    with the hook / without at 2,000 images. One core throughout."""
    demo = _demo_outputs('data', 'proposals', 'prm', 'pseudo', 'wise')
    ckpt = (demo / 'wise/last_checkpoint').read_text().strip()
    cfg = 'configs/wise/demo/mask-rcnn_r18_shapes_pseudo.py'
    runs = {n: _test_run(cfg, ckpt, work / f'test_{n}', split, num, True)
            for n, (split, num) in REFINE_SIZES.items()}
    hook = {n: summary for n, (_, summary) in runs.items()}
    hook_walls = {n: seconds for n, (seconds, _) in runs.items()}
    small, large = min(REFINE_SIZES), max(REFINE_SIZES)
    walls = {True: hook_walls[large],
             False: _test_run(cfg, ckpt, work / 'wall', *REFINE_SIZES[large], False)[0]}
    per_image = {n: h['cpu_ms'] / h['images'] for n, h in hook.items()}
    emitted = round(statistics.mean(h['predictions'] / h['images'] for h in hook.values()))
    micro = _refine_ms_per_image(emitted)
    growth = per_image[large] / per_image[small]
    sizes = ' / '.join(f'{per_image[n]:.2f}' for n in REFINE_SIZES)
    return [
        row(f'refine hook CPU per image on the real path (tools/test.py, the model\'s own '
            f'detections, {small} images of demo test)', per_image[small],
            f'information ({sizes} ms at {", ".join(map(str, REFINE_SIZES))} images; '
            f'{emitted} predictions an image)', None, 'ms'),
        row(f'refine hook CPU per image, {large} / {small} images (linear: within 25 %)',
            growth, '<= 1.25', growth <= 1.25, 'x'),
        row(f'refine() alone per image, {emitted} predictions (the count the model emits), '
            'the same images and proposals; one core', micro,
            f'information: the real path is {per_image[small] / micro:.2f}x this: it reads '
            'each image\'s proposals once, from a cold cache, and matches the model\'s own '
            'masks, where this repeats one image warm with grown ground-truth masks',
            None, 'ms'),
        row(f'tools/test.py wall time with the hook / without, {large} images',
            walls[True] / walls[False], 'information', None, 'x'),
    ]


#: scikit-image's bundled photographs, the built-in proposals' real-photo test
PHOTOGRAPHS = ('chelsea', 'coffee', 'astronaut', 'rocket')


def _photograph(name: str, w: int = 500, h: int = 375):
    """A scikit-image photograph scaled to cover w x h and centre-cropped: VOC-sized."""
    import cv2
    import numpy as np
    from skimage import data
    img = getattr(data, name)()
    f = max(w / img.shape[1], h / img.shape[0])
    img = cv2.resize(img, (round(img.shape[1] * f), round(img.shape[0] * f)),
                     interpolation=cv2.INTER_AREA)
    y0, x0 = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return np.ascontiguousarray(img[y0:y0 + h, x0:x0 + w])


def _one_core() -> None:
    """CPU times below are of this process on one core: no library threads (the pools that
    read no environment variable; :data:`ONE_CORE_ENV` sets the others)."""
    import cv2
    import torch
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def _cpu_ms(fn: Callable[[], object], reps: int = 3) -> float:
    """Median CPU milliseconds of this process over ``reps`` calls, after one warm-up."""
    fn()
    times = []
    for _ in range(reps):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return 1000 * statistics.median(times)


def _tiled_proposals(work: Path, num: int = 8) -> tuple[Path, Path, list[dict], dict]:
    """``num`` tiled 500x375 built-in images with 1000 built-in proposals each (as
    tools/gen_proposals.py writes them): (data root, proposal folder, image records as
    sources take them, image id -> its instances' RLEs)."""
    from projects.wise.utils.io import load_coco_json
    root = _tiled_dataset(work, num)
    props = work / 'tile_proposals'
    _run(sys.executable, 'tools/gen_proposals.py', '--ann-file',
         root / 'annotations/train_labels.json', '--out-dir', props, '--max-proposals', '1000')
    coco = load_coco_json(root / 'annotations/train_instances.json')
    images = [dict(img_path=str(root / 'JPEGImages' / im['file_name']), height=im['height'],
                   width=im['width'], img_id=im['id']) for im in coco['images']]
    instances: dict = {}
    for a in coco['annotations']:
        instances.setdefault(a['image_id'], []).append(a)
    return root, props, images, instances


def _predictions(anns: list[dict], hw: tuple[int, int], num: int):
    """``num`` predicted masks as the refine hook gets them: the image's instances, each
    grown by 2 px (a prediction is never exact), cycled to ``num``."""
    import cv2
    import numpy as np
    import torch
    from mmengine.structures import InstanceData
    from pycocotools import mask as mask_util
    grow = np.ones((5, 5), np.uint8)
    masks = np.stack([cv2.dilate(mask_util.decode(anns[i % len(anns)]['segmentation']), grow)
                      for i in range(num)]).astype(bool)
    assert masks.shape[1:] == hw
    return InstanceData(masks=torch.from_numpy(masks), bboxes=torch.zeros(num, 4),
                        scores=torch.linspace(1, 0.05, num),
                        labels=torch.tensor([a['category_id'] - 1 for a in anns] * num)[:num])


def _as_results_json(source, images: list[dict], out: Path) -> None:
    """The same proposals as per-image COCO-results JSON (the format before .segments)."""
    from projects.wise.proposals import Proposals
    for image in images:
        props = source(image)
        Proposals.from_masks(props.decode(), props.scores).save(
            out / f'{Path(image["img_path"]).stem}.json')


@benchmark
@one_core
def refine_cpu(work: Path) -> list[dict]:
    """The refine hook's own CPU work per VOC-sized image, network excluded: read the
    image's 1000 proposals, match as many predicted masks as Mask R-CNN emits at most
    (the demo's ``test_cfg.rcnn.max_per_img``), write the picks back."""
    import numpy as np
    from mmengine.config import Config

    from projects.wise.engine import refine
    from projects.wise.proposals import PrecomputedProposals
    _one_core()
    most = Config.fromfile(ROOT / 'configs/wise/demo/mask-rcnn_r18_shapes_pseudo.py'
                           ).model.test_cfg.rcnn.max_per_img
    _, props, images, instances = _tiled_proposals(work)
    json_dir = work / 'tile_proposals_json'
    segments = PrecomputedProposals(root=str(props))
    _as_results_json(segments, images, json_dir)
    counts = {len(segments(image)) for image in images}
    ms = {}
    for name, source in (('segments', segments),
                         ('json', PrecomputedProposals(root=str(json_dir)))):
        per_image = []
        for image in images:
            pred = _predictions(instances[image['img_id']], (image['height'], image['width']),
                                most)
            per_image.append(_cpu_ms(lambda: refine(pred, source(image))))
        ms[name] = float(np.median(per_image))
    what = (f'500x375, {"/".join(map(str, sorted(counts)))} built-in proposals, {most} '
            'predictions (max_per_img)')
    return [
        row(f'refinement CPU per image: read + match + write back ({what}; one core, median)',
             ms['segments'], '<= 15', ms['segments'] <= 15, 'ms'),
        row('refinement CPU per image, the same proposals as COCO-results JSON (RLE IoU)',
             ms['json'], 'information', None, 'ms'),
    ]


@benchmark
@one_core
def proposal_files(work: Path) -> list[dict]:
    """Per-image proposal files as tools/gen_proposals.py writes them for the built-in
    source: bytes on disk and CPU time to load, at 500x375 with 1000 proposals."""
    import numpy as np

    from projects.wise.proposals import PrecomputedProposals
    from projects.wise.proposals.precomputed import image_file
    _one_core()
    _, props, images, _ = _tiled_proposals(work)
    json_dir = work / 'tile_proposals_json'
    source = PrecomputedProposals(root=str(props))
    _as_results_json(source, images, json_dir)
    stems = [Path(image['img_path']).stem for image in images]
    kb = float(np.mean([image_file(props, s).stat().st_size for s in stems])) / 1000
    json_kb = float(np.mean([(json_dir / f'{s}.json').stat().st_size for s in stems])) / 1000
    load = {name: float(np.median([_cpu_ms(lambda: src(image)) for image in images]))
            for name, src in (('segments', source),
                              ('json', PrecomputedProposals(root=str(json_dir))))}
    return [
        row('proposal file per 500x375 image, 1000 built-in proposals (.segments, mean)', kb,
             f'<= 100 (COCO-results JSON of the same: {json_kb:.0f} KB)', kb <= 100, 'KB'),
        row('proposal file load CPU per image (.segments, one core, median)', load['segments'],
             '<= 5', load['segments'] <= 5, 'ms'),
        row('proposal file load CPU per image, the same as COCO-results JSON', load['json'],
             'information', None, 'ms'),
    ]


@benchmark
@one_core
def builtin_proposals_photos(work: Path) -> list[dict]:
    """Built-in proposal generation per 500x375 image on one core: scikit-image's real
    photographs (as a new user would try it) and tiled built-in images."""
    import numpy as np

    from projects.wise.proposals import BuiltinProposals
    from projects.wise.utils.io import read_image
    _one_core()
    source = BuiltinProposals()

    def seconds(img: np.ndarray) -> float:
        return _cpu_ms(lambda: source.from_array(img)) / 1000

    photos = {name: seconds(_photograph(name)) for name in PHOTOGRAPHS}
    tiled = sorted((_tiled_dataset(work, 4) / 'JPEGImages').iterdir())
    tiles = float(np.median([seconds(read_image(path)) for path in tiled]))
    worst = max(photos, key=photos.get)
    each = ', '.join(f'{k} {v:.2f}' for k, v in photos.items())
    return [
        row('builtin proposals: CPU per 500x375 photograph, slowest of the 4 (one core)',
             photos[worst], f'<= 0.25 ({each})', photos[worst] <= 0.25, 's'),
        row('builtin proposals: CPU per tiled 500x375 built-in image (one core, median)',
             tiles, '<= 0.25', tiles <= 0.25, 's'),
    ]


@benchmark
@one_core
def gen_pseudo_cpu(work: Path) -> list[dict]:
    """gen_pseudo's own CPU work per VOC-sized image beside the PRM (read 1000 proposals,
    cover the peaks, select, encode, write the record), the paper's selection and the
    improved one; the peaks are the instances' innermost points, as a PRM's would be."""
    import cv2
    import numpy as np
    from mmengine.config import DictAction
    from mmengine.registry import init_default_scope
    from pycocotools import mask as mask_util

    from projects.wise.proposals import PrecomputedProposals
    from projects.wise.pseudo.generator import pseudo_instances
    from projects.wise.pseudo.labeller import PseudoLabeller
    from projects.wise.pseudo.peak_set import PeakSet
    from projects.wise.pseudo.writer import PartsFile
    from projects.wise.registry import PROPOSAL_SELECTORS
    _one_core()
    init_default_scope('mmdet')
    _, props, images, instances = _tiled_proposals(work)
    source = PrecomputedProposals(root=str(props))
    peaks = {}
    for image in images:
        anns = instances[image['img_id']]
        points = []
        for a in anns:
            dist = cv2.distanceTransform(mask_util.decode(a['segmentation']), cv2.DIST_L2, 3)
            y, x = np.unravel_index(dist.argmax(), dist.shape)
            points.append((x, y))
        peaks[image['img_id']] = PeakSet(np.array([a['category_id'] - 1 for a in anns]),
                                         np.array(points, float), np.linspace(1, 0.5, len(anns)))
    from projects.wise.pipeline import IMPROVED
    as_option = argparse.ArgumentParser()  # the improved selection as gen_pseudo parses it
    as_option.add_argument('--selector', nargs='+', action=DictAction)
    selections = {'paper': dict(type='objectness_sampling'),
                  'improved': as_option.parse_args(['--selector', *IMPROVED]).selector}
    ms = {}
    for name, cfg in selections.items():
        selector = PROPOSAL_SELECTORS.build(cfg)
        parts = PartsFile(work / f'{name}.parts', dict(selection=name))

        def one(image: dict) -> None:
            rng = np.random.default_rng(image['img_id'])
            result = pseudo_instances(peaks[image['img_id']], image, source, selector, rng)
            parts.append(dict(index=image['img_id'], annotations=[
                PseudoLabeller.annotation(image['img_id'], inst) for inst in result.instances]))

        ms[name] = float(np.median([_cpu_ms(lambda: one(image)) for image in images]))
        parts.close()
    per_image = np.mean([len(p) for p in peaks.values()])
    return [
        row(f'gen_pseudo CPU per image beside the PRM, paper selection (500x375, 1000 '
             f'proposals, {per_image:.0f} peaks; one core, median)', ms['paper'], '<= 10',
             ms['paper'] <= 10, 'ms'),
        row('gen_pseudo CPU per image beside the PRM, improved selection', ms['improved'],
             '<= 10', ms['improved'] <= 10, 'ms'),
    ]


#: every stage of a demo preset's table
TABLE_STAGES = ('data', 'proposals', 'prm', 'pseudo', 'pseudo_improved', 'prm_baseline', 'full',
                'wise', 'wise_improved', 'table')
#: PRM + Density's stages (the demo and crowded presets)
DENSITY_STAGES = ('prm_density', 'prm_density_baseline')
#: what counts reads: the demo's PRM and PRM + Density rows; the crowded preset's WISE
#: rows (no paper selection there: WISE + counts beside the improved one) and the
#: counting of its PRM and PRM + Density models
COUNTS_DEMO_STAGES = ('data', 'proposals', 'prm', 'prm_baseline', *DENSITY_STAGES, 'table')
CROWDED_STAGES = ('data', 'proposals', 'prm', 'prm_density', 'pseudo_improved',
                  'pseudo_counts', 'wise_improved', 'wise_counts', 'table')


def paired(result: dict, better: str, worse: str, col: str) -> tuple[float, float]:
    """Mean and sample sd over seeds of ``better - worse`` at ``col``, seed by seed
    (results.json's ``runs``): the spread of the difference itself, which the rows'
    own spreads overstate when both move with the seed."""
    diffs = [run[better][col] - run[worse][col] for run in result['runs']]
    mean = sum(diffs) / len(diffs)
    sd = (sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1)) ** 0.5 if len(diffs) > 1 else 0
    return mean, sd


def paired_row(name: str, result: dict, better: str, worse: str, col: str,
               above: float = 0.0, strict: bool = True) -> dict:
    """A target "``better`` beats ``worse`` at ``col`` by more than ``above``" (``strict``,
    else at least), met on the mean and on the mean minus one sd of the paired per-seed
    difference: one lucky seed does not carry it, a drop within the rows' spread does
    not pass."""
    mean, sd = paired(result, better, worse, col)
    low = mean - sd
    ok = (mean > above and low > above) if strict else (mean >= above and low >= above)
    sign = '>' if strict else '>='
    return row(name, mean, f'{sign} {above:g}, also mean - sd ({low:+.2f}; paired sd '
               f'{sd:.2f})', ok, 'points')


def improved_vs_paper(result: dict) -> dict:
    """The improved selection against the paper's, both WISE rows and every column: the
    worst paired (mean - sd) of improved - paper, which must not fall below 0."""
    pairs = [(f'{improved} {col}', improved, paper, col)
             for paper, improved in (('WISE', 'WISE (improved)'),
                                     ('WISE + Refine', 'WISE (improved) + Refine'))
             for col in ('mAP25', 'mAP50', 'mAP75', 'ABO')]
    lows = {name: (lambda m, s: (m - s, m))(*paired(result, a, b, col))
            for name, a, b, col in pairs}
    worst = min(lows, key=lambda k: lows[k][0])
    low, mean = lows[worst]
    return row('demo: improved selection - paper, worst paired mean - sd over the WISE rows',
               low, f'>= 0 (worst: {worst}, mean {mean:+.2f})', low >= 0 and mean >= 0,
               'points')


@benchmark
def demo_pipeline(work: Path) -> list[dict]:
    """`make demo` over 3 seeds: the paper's table on the built-in data (means; targets
    are met on the mean), with the SOLOv2 rows (--detector), and one run's end-to-end
    time."""
    _demo_outputs(*TABLE_STAGES, *DENSITY_STAGES, 'wise_solov2', seeds=SEEDS,
                  detectors=('mask-rcnn', 'solov2'))
    result = json.loads((ROOT / 'work_dirs/demo/results.json').read_text())
    res, sd = result['rows'], result['sd']
    full, wise = res['Mask R-CNN (full)'], res['WISE']
    refine, solo = res['WISE + Refine'], res['WISE (improved, SOLOv2)']
    ratio = wise['mAP50'] / full['mAP50']
    keys = ('mAP25', 'mAP50', 'mAP75')
    return [
        row('demo: WISE mAP50 / fully supervised mAP50 (means of 3 seeds)', ratio, '>= 0.80',
             ratio >= 0.8, 'x'),
        paired_row('demo: WISE + Refine mAP50 - WISE mAP50', result, 'WISE + Refine', 'WISE',
                   'mAP50', strict=False),
        row('demo: WISE + Refine - WISE, mean of mAP25/50/75',
             sum(refine[k] - wise[k] for k in keys) / 3,
             f"(mAP75 {refine['mAP75'] - wise['mAP75']:+.1f}, ABO "
             f"{refine['ABO'] - wise['ABO']:+.1f})", None, 'points'),
        paired_row('demo: WISE mAP50 - PRM baseline mAP50', result, 'WISE', 'PRM', 'mAP50'),
        row('demo: mAP50 sd over seeds, largest of the rows',
             max(v['mAP50'] for v in sd.values()), 'information', None, 'points'),
        improved_vs_paper(result),
        paired_row('demo: WISE (improved, SOLOv2) + Refine - WISE (improved, SOLOv2), mAP50',
                   result, 'WISE (improved, SOLOv2) + Refine', 'WISE (improved, SOLOv2)',
                   'mAP50', strict=False),
        row('demo: WISE (improved, SOLOv2) mAP50 / WISE (improved) mAP50', solo['mAP50'] /
             res['WISE (improved)']['mAP50'], f"information (SOLOv2 {solo['mAP50']:.1f} ± "
             f"{sd['WISE (improved, SOLOv2)']['mAP50']:.1f})", None, 'x'),
        clean_run_row(ROOT / 'work_dirs/demo/clean_run.json'),
    ]


@benchmark
def demo_hard_pipeline(work: Path) -> list[dict]:
    """`make demo-hard` over 3 seeds: the table on the hard variant, where the PRM
    over-fires; the improved selection must carry through Mask R-CNN."""
    _demo_outputs(*TABLE_STAGES, seeds=SEEDS, preset='demo-hard')
    result = json.loads((ROOT / 'work_dirs/demo-hard/results.json').read_text())
    res = result['rows']
    improved = res['WISE (improved)']
    rows = [paired_row(f'demo-hard: WISE improved - paper selection, {col} (3 seeds, test)',
                       result, 'WISE (improved)', 'WISE', col) for col in ('mAP50', 'mAP75')]
    rows += [paired_row(f'demo-hard: WISE (improved) - PRM, {col}', result, 'WISE (improved)',
                        'PRM', col) for col in ('mAP25', 'mAP50', 'mAP75', 'ABO')]
    rows += [
        paired_row('demo-hard: WISE (improved) + Refine - WISE (improved), mAP50', result,
                   'WISE (improved) + Refine', 'WISE (improved)', 'mAP50', strict=False),
        row('demo-hard: WISE (improved) mAP50 / fully supervised mAP50',
             improved['mAP50'] / res['Mask R-CNN (full)']['mAP50'], 'information', None, 'x'),
    ]
    return rows


def _counting_errors(work: Path) -> dict[str, float]:
    """The counting metrics of a PRM (or PRM + Density) stage's last val test."""
    return {k.split('/', 1)[1]: v for k, v in latest_metrics(work / 'test').items()
            if k.startswith('count/')}


@benchmark
def counts(work: Path) -> list[dict]:
    """Counts (docs/counts.md): PRM + Density against the PRM on the demo, WISE + counts
    and the ILC model's counting on the crowded variant (means of 3 seeds)."""
    demo = json.loads((_demo_outputs(*COUNTS_DEMO_STAGES, seeds=SEEDS).parent
                       / 'results.json').read_text())
    _demo_outputs(*CROWDED_STAGES, seeds=SEEDS, preset='demo-crowded')
    result = json.loads((ROOT / 'work_dirs/demo-crowded/results.json').read_text())
    errors = [(_counting_errors(ROOT / f'work_dirs/demo-crowded/seed{s}/prm_density'),
               _counting_errors(ROOT / f'work_dirs/demo-crowded/seed{s}/prm')) for s in SEEDS]
    ilc = sum(d['density_mRMSE'] for d, _ in errors) / len(errors)
    peaks = sum(p['peaks_mRMSE'] for _, p in errors) / len(errors)
    return [
        paired_row('demo: PRM + Density mAP50 - PRM mAP50 (3 seeds; paper: 30.2 vs 26.8)',
                   demo, 'PRM + Density', 'PRM', 'mAP50'),
        paired_row('demo: PRM + Density ABO - PRM ABO (paper: 44.3 vs 37.6)', demo,
                   'PRM + Density', 'PRM', 'ABO'),
        paired_row('crowded: WISE + counts mAP50 - WISE (improved) mAP50 (3 seeds)', result,
                   'WISE + counts', 'WISE (improved)', 'mAP50', above=3.0, strict=False),
        row('crowded: counting mRMSE, ILC density / counting PRM peaks (val, means)',
             ilc / peaks, f'< 1 (ILC {ilc:.3f}, PRM peaks {peaks:.3f})', ilc < peaks, 'x'),
    ]


def clean_run_row(path: Path) -> dict:
    """`make demo`'s time from a run in which every stage ran (tools/pipeline.py writes
    clean_run.json then); judged only when that run was one seed at this commit."""
    name = 'demo: end-to-end time, make clean-demo && make demo'
    if not path.is_file():
        return row(f'{name}: not measured (no clean run)', float('nan'), '< 30', None, 'min')
    run = json.loads(path.read_text())
    minutes, seeds = run['seconds'] / 60, run['seeds'] or [0]
    if run['commit'] != source_commit() or len(seeds) > 1:
        return row(f'{name} ({len(seeds)} seed(s), commit {run["commit"]}, {run["date"]})',
                    minutes, '< 30 (judged on one seed at this commit)', None, 'min')
    return row(name, minutes, '< 30', minutes < 30, 'min')


def _versions() -> dict:
    import mmcv
    import mmengine
    import torch

    import mmdet
    return dict(python=platform.python_version(), torch=torch.__version__,
                mmcv=mmcv.__version__, mmengine=mmengine.__version__, mmdet=mmdet.__version__,
                machine=f'{platform.machine()}, {os.cpu_count()} cores, '
                        f'{platform.processor() or platform.platform()}')


def write_results(rows: dict[str, list[dict]], out: Path, command: str) -> None:
    """``out``.{json,md} from this run only: a benchmark it did not run is listed as not
    measured, never carried over from an older run."""
    info = dict(commit=source_commit(), date=time.strftime('%Y-%m-%d %H:%M'), **_versions())
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(f'{out}.json').write_text(json.dumps(dict(env=info, results=rows), indent=2))
    lines = ['# Benchmark results', '', f'Made by `{command}`, all rows from this one run.',
             '', ', '.join(f'{k}: {v}' for k, v in info.items()), '',
             '| benchmark | figure | value | target | met |', '|---|---|---|---|---|']
    for bench in BENCHMARKS:
        for r in rows.get(bench) or [dict(name='not measured in this run', value='-', unit='',
                                          target='-', ok=None)]:
            met = '-' if r['ok'] is None else 'yes' if r['ok'] else 'NO'
            lines.append(f"| {bench} | {r['name']} | {r['value']} {r['unit']} | {r['target']} | "
                         f'{met} |')
    Path(f'{out}.md').write_text('\n'.join(lines) + '\n')


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--only', nargs='+', choices=sorted(BENCHMARKS))
    p.add_argument('--keep', action='store_true', help='keep the work folders')
    p.add_argument('--out', type=Path, default=ROOT / 'bench/results',
                   help='write OUT.md and OUT.json (default: bench/results)')
    p.add_argument('--one-core', choices=sorted(BENCHMARKS), help=argparse.SUPPRESS)
    p.add_argument('--work', type=Path, help=argparse.SUPPRESS)
    p.add_argument('--rows', type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one_core:  # the child of a @one_core benchmark
        args.rows.write_text(json.dumps(BENCHMARKS[args.one_core].measure(args.work)))
        return 0
    rows = {}
    for name in args.only or BENCHMARKS:
        work = Path(tempfile.mkdtemp(prefix=f'wise-bench-{name}-'))
        try:
            rows[name] = BENCHMARKS[name](work)
        except Exception as e:  # one broken benchmark must not lose the others' figures
            rows[name] = [row(f'failed: {type(e).__name__}: {e}', float('nan'), 'runs', False)]
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        for r in rows[name]:
            verdict = 'information' if r['ok'] is None else 'ok' if r['ok'] else 'MISSED'
            print(f"[bench] {name}: {r['name']} = {r['value']} {r['unit']} "
                  f"(target {r['target']}) {verdict}", flush=True)
    command = ' '.join(['bench/run.py', *(sys.argv[1:] if argv is None else argv)])
    write_results(rows, args.out, command)
    for path in render_documents():  # the docs' bench blocks of this file
        print(f'[bench] rewrote the bench blocks of {path.relative_to(ROOT)}')
    return 0 if all(r['ok'] is not False for items in rows.values() for r in items) else 1


if __name__ == '__main__':
    sys.exit(main())
