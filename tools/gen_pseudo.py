"""Pseudo instance masks from a trained PRM classifier and object proposals.

For every image of a split (image-level labels only), the PRM's peaks of the
labelled classes each pick one class-agnostic proposal that covers them
(``--selector``); the picks become COCO instance annotations that mmdet's
CocoDataset loads as they are.

    python tools/gen_pseudo.py configs/wise/demo/prm_r18_shapes.py \\
        work_dirs/demo/prm/epoch_8.pth --out data/shapes/annotations/train_pseudo.json \\
        --proposals type=precomputed root=data/shapes/proposals

Progress is kept per image in ``<out>.parts/`` (rerun the same command after a
kill to continue; the result is byte-identical). ``--shard i/N`` or torchrun
(``tools/dist_gen_pseudo.sh``) split the images; the last worker to finish
merges. A report (events, proposal recall, and where a ground-truth instances
json exists the test metric of the pseudo masks) is printed and saved as
``<out>.report.json``. ``--oracle`` uses ground-truth instance centres instead
of PRM peaks: the upper bound of a selection strategy.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import os.path as osp
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.utils import ProgressBar  # noqa: E402
from pycocotools import mask as mask_util  # noqa: E402

import projects.wise  # noqa: E402,F401
from mmdet.registry import DATASETS, MODELS  # noqa: E402
from projects.wise.proposals import PROPOSAL_SOURCES  # noqa: E402
from projects.wise.proposals.recall import proposal_recall  # noqa: E402
from projects.wise.pseudo import (SELECTORS, PartsFile, PeakSet, iter_records,  # noqa: E402
                                  parts_path, pseudo_instances, restrict_to_labels, summarize,
                                  write_coco)
from projects.wise.utils.cli import run_tool  # noqa: E402
from projects.wise.utils.io import DataError, dump_json, load_json, read_image  # noqa: E402
from projects.wise.utils.launch import parse_shard  # noqa: E402
from projects.wise.utils.masks import str_counts, to_rle  # noqa: E402

RECALL_KS = (100, 500, 1000)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='the PRM config')
    p.add_argument('checkpoint', help='the trained PRM checkpoint')
    p.add_argument('--out', required=True, type=Path, help='the pseudo instances json')
    p.add_argument('--proposals', nargs='+', action=DictAction, required=True,
                   help='proposal source, e.g. type=precomputed root=data/proposals')
    p.add_argument('--selector', nargs='+', action=DictAction,
                   default=dict(type='objectness_sampling'),
                   help='objectness_sampling (paper), best_objectness (authors\' code), '
                        'prm_retrieval (PRM)')
    p.add_argument('--split', choices=['train', 'val', 'test'], default='train',
                   help="which dataloader's dataset of the config to label")
    p.add_argument('--ann-file', help="override that dataset's ann_file")
    p.add_argument('--gt-ann-file', help='ground-truth instances json for the quality report '
                   '(default: the *_instances.json beside a *_labels.json, if any)')
    p.add_argument('--peak-thr', type=float,
                   help="peak response a peak must reach (default: the model's test_cfg)")
    p.add_argument('--image-labels', action=argparse.BooleanOptionalAction, default=True,
                   help='keep the peaks of the labelled classes (weak supervision, for '
                        'train); --no-image-labels: of the classes the PRM scores present '
                        '(score_thr), as at test time (the PRM baseline)')
    p.add_argument('--oracle', action='store_true',
                   help='ground-truth instance centres instead of PRM peaks')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--shard', default='0/1', help='i/N: do every N-th image, from the i-th')
    p.add_argument('--launcher', choices=['none', 'pytorch'], default='none')
    p.add_argument('--show-dir', type=Path, help='draw the pseudo masks of each image here')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def _usage_error(message: str) -> None:
    """Exit as argparse does for a bad command line (status 2)."""
    print(f'gen_pseudo.py: error: {message}', file=sys.stderr)
    sys.exit(2)


def _shard(args: argparse.Namespace) -> tuple[int, int]:
    if args.launcher == 'pytorch':
        if not dist.is_initialized():
            dist.init_process_group('nccl' if torch.cuda.is_available() else 'gloo')
        return dist.get_rank(), dist.get_world_size()
    try:
        i, n = parse_shard(args.shard)
    except argparse.ArgumentTypeError as e:
        _usage_error(f'--shard {e}')
    return i, n


def _build_dataset(cfg: Config, args: argparse.Namespace):
    ds_cfg = cfg[f'{args.split}_dataloader'].dataset.copy()
    ds_cfg.pipeline = cfg.test_dataloader.dataset.pipeline
    ds_cfg.test_mode = True  # every image, labelled or not, gets a record
    if args.ann_file:
        ds_cfg.ann_file = args.ann_file
    return DATASETS.build(ds_cfg)


def _default_gt(dataset) -> str | None:
    ann = str(dataset.ann_file)
    if ann.endswith('_instances.json'):
        return ann
    twin = ann.replace('_labels.json', '_instances.json')
    return twin if twin != ann and osp.isfile(twin) else None


def _build_model(cfg: Config, checkpoint: str, num_classes: int, device: torch.device,
                 needs_maps: bool):
    if not osp.isfile(checkpoint):
        raise DataError(f'{checkpoint}: checkpoint not found')
    state = torch.load(checkpoint, map_location='cpu', weights_only=True)
    state = state.get('state_dict', state)
    weight = state.get('classifier.weight')
    if weight is None:
        raise DataError(f'{checkpoint}: not a PRM classifier checkpoint (no classifier.weight)')
    if weight.shape[0] != num_classes:
        raise DataError(f'{checkpoint}: trained for {weight.shape[0]} classes, the dataset has '
                        f'{num_classes}')
    cfg.model.test_cfg = {**cfg.model.get('test_cfg', {}), 'score_thr': -float('inf'),
                          'peak_thr': -float('inf'), 'with_prm': False, 'with_crm': needs_maps}
    model = MODELS.build(cfg.model)
    model.load_state_dict(state)
    return model.to(device).eval()


class GTPoints:
    """The oracle's peaks: each ground-truth instance's most interior pixel."""

    def __init__(self, ann_file: str) -> None:
        data = load_json(ann_file)
        self.ann_file = ann_file
        self.cat2label = {c['id']: i for i, c in enumerate(data['categories'])}
        self.anns: dict = {}
        for a in data.get('annotations', []):
            if not a.get('iscrowd', 0):
                self.anns.setdefault(a['image_id'], []).append(a)

    def __call__(self, img_id: int, hw: tuple[int, int]) -> PeakSet:
        labels, points = [], []
        for rle, a in zip(self.rles(img_id, hw), self.anns.get(img_id, [])):
            m = mask_util.decode(rle)
            depth = cv2.distanceTransform(np.pad(m, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
            y, x = np.unravel_index(depth.argmax(), depth.shape)
            labels.append(self.cat2label[a['category_id']])
            points.append((x, y))
        return PeakSet(np.array(labels, np.int64), np.array(points, np.float64).reshape(-1, 2),
                       np.ones(len(labels)))

    def rles(self, img_id: int, hw: tuple[int, int]) -> list[dict]:
        return [to_rle(a['segmentation'], *hw) for a in self.anns.get(img_id, [])]


def _peaks(model, item: dict, image_labels: list[int] | None, thr: dict, needs_maps: bool,
           device: torch.device, events: Counter) -> PeakSet:
    """The PRM's peaks of the labelled classes, or else of the classes it finds
    present (with their maps if asked for)."""
    data = model.data_preprocessor(pseudo_collate([item]), False)
    inputs = data['inputs'].to(device)
    with torch.no_grad():
        [sample] = model.predict(inputs, data['data_samples'])
    if image_labels is None:
        image_labels = torch.nonzero(sample.pred_scores >= thr['score_thr'])[:, 0].tolist()
    p = sample.pred_peaks
    peaks = PeakSet(p.labels.cpu().numpy(), p.points.cpu().numpy().astype(np.float64),
                    p.scores.cpu().numpy().astype(np.float64))
    idx = restrict_to_labels(peaks, image_labels, thr['peak_thr'], events)
    peaks = peaks.subset(idx)
    if needs_maps:  # backprop per kept peak only: all peaks would cost ~10x more
        keep = torch.from_numpy(idx).to(p.labels.device)
        peaks.prms = model.peak_maps(inputs, p.labels[keep], p.cells[keep], sample).cpu().numpy()
        peaks.crms = sample.pred_crms.cpu().numpy()
    return peaks


def _draw(path: Path, image: np.ndarray, anns: list[dict], classes: tuple) -> None:
    """Each pseudo instance filled in its own colour, outlined, with its peak and class."""
    out = image.astype(np.float32)
    rng = np.random.default_rng(0)
    for a in anns:
        m = mask_util.decode(a['segmentation']).astype(bool)
        colour = rng.integers(60, 256, 3)
        out[m] = 0.45 * out[m] + 0.55 * colour
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, (255, 255, 255), 1)
        x, y = (int(round(v)) for v in a['point'])
        cv2.drawMarker(out, (x, y), (0, 0, 0), cv2.MARKER_CROSS, 7, 2)
        cv2.putText(out, classes[a['category_id'] - 1][:4], (x + 3, y - 3),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 0), 1, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.clip(out, 0, 255).astype(np.uint8)[..., ::-1])


def label_image(index: int, dataset, model, source, selector, gt: GTPoints | None,
                args: argparse.Namespace, thr: dict, device: torch.device) -> dict:
    """The parts-file record of one image."""
    info = dataset.get_data_info(index)
    img_id = info['img_id']
    if not isinstance(img_id, int):
        raise DataError(f'{dataset.ann_file}: image id {img_id!r} is not an int; convert the '
                        'split to COCO json with tools/dataset_converters/voc_to_coco.py')
    hw = (int(info['height']), int(info['width']))
    image = dict(id=img_id, file_name=osp.relpath(info['img_path'], dataset.data_prefix['img']),
                 height=hw[0], width=hw[1])
    record = dict(index=index, image=image, annotations=[], events={}, errors=[], seconds={})
    if args.image_labels and not info['image_labels']:
        record['events'] = {'images_without_labels': 1}
        return record
    t0 = time.perf_counter()
    events: Counter = Counter()
    if args.oracle:
        peaks = gt(img_id, hw)
    else:
        try:
            item = dataset[index]
        except DataError:  # LoadImageChecked has named the file already
            raise
        except Exception as e:  # a config's own loader: mmcv's raise many types
            raise DataError(f'{info["img_path"]}: cannot load image ({e})') from None
        labels = info['image_labels'] if args.image_labels else None
        peaks = _peaks(model, item, labels, thr, selector.needs_maps, device, events)
    t1 = time.perf_counter()
    rng = np.random.default_rng([args.seed, index])
    result = pseudo_instances(peaks, dict(img_path=info['img_path'], height=hw[0], width=hw[1],
                                          img_id=img_id), source, selector, rng)
    result.events.update(events)
    for inst in result.instances:
        rle = inst['rle']
        record['annotations'].append(dict(
            image_id=img_id, category_id=inst['label'] + 1,
            segmentation=str_counts(rle),
            area=float(mask_util.area(rle)), bbox=[float(v) for v in mask_util.toBbox(rle)],
            iscrowd=0, score=round(inst['score'], 4), objectness=round(inst['objectness'], 4),
            point=inst['point']))
    if gt is not None and result.proposals is not None:
        gts = gt.rles(img_id, hw)
        if gts:
            recall = proposal_recall(result.proposals, gts, RECALL_KS)
            record['recall'] = dict(num_gts=recall['num_gt'],
                                    hits=[recall['hits'][k] for k in RECALL_KS])
    record['events'] = dict(result.events)
    record['errors'] = result.errors
    record['seconds'] = dict(peaks=round(t1 - t0, 5), total=round(time.perf_counter() - t0, 5))
    if args.show_dir is not None:
        _draw(args.show_dir / f'{Path(info["img_path"]).stem}.png', read_image(info['img_path']),
              record['annotations'], dataset.metainfo['classes'])
    return record


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def run_fingerprint(cfg: Config, args: argparse.Namespace, gt_file: str | None) -> dict:
    """What the output depends on: parts of another run are never resumed or merged."""
    config = json.dumps(cfg.to_dict(), sort_keys=True, default=str)
    return dict(config=hashlib.sha256(config.encode()).hexdigest(),
                checkpoint=None if args.oracle else _sha256(args.checkpoint),
                split=args.split, ann_file=args.ann_file, gt_ann_file=gt_file,
                proposals=args.proposals, selector=args.selector, peak_thr=args.peak_thr,
                image_labels=args.image_labels, oracle=args.oracle, seed=args.seed)


def _merge(args: argparse.Namespace, dataset, num_shards: int, run: dict,
           gt_file: str | None) -> None:
    paths = [parts_path(args.out, i, num_shards) for i in range(num_shards)]
    classes = dataset.metainfo['classes']
    categories = [dict(id=i + 1, name=c) for i, c in enumerate(classes)]
    write_coco(paths, len(dataset), run, categories, args.out)
    report = summarize(iter_records(paths, len(dataset), run), classes, gt_file, RECALL_KS)
    report.update(config=args.config, checkpoint=args.checkpoint,
                  checkpoint_sha256=run['checkpoint'], selector=args.selector,
                  proposals=args.proposals, oracle=args.oracle, image_labels=args.image_labels,
                  seed=args.seed, gt_ann_file=gt_file)
    report_path = Path(f'{args.out}.report.json')
    dump_json(report, report_path, indent=2)
    print(json.dumps({k: v for k, v in report.items() if k != 'quality_per_class'}, indent=2))
    print(f'[gen_pseudo] {report["events"].get("instances", 0)} pseudo instances -> {args.out}; '
          f'report -> {report_path}')


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    shard, num_shards = _shard(args)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dataset = _build_dataset(cfg, args)
    gt_file = args.gt_ann_file or _default_gt(dataset)
    if args.oracle and not gt_file:
        _usage_error('--oracle needs ground-truth instances (--gt-ann-file)')
    selector = SELECTORS.build(args.selector)
    if args.oracle and selector.needs_maps:
        _usage_error(f'--oracle has no peak response maps for {args.selector["type"]}')
    source = PROPOSAL_SOURCES.build(args.proposals)
    gt = GTPoints(gt_file) if gt_file else None
    device = torch.device(f'cuda:{int(os.environ.get("LOCAL_RANK", 0))}'
                          if torch.cuda.is_available() else 'cpu')
    test_cfg = cfg.model.get('test_cfg', {})
    thr = dict(score_thr=float(test_cfg.get('score_thr', 0.0)),
               peak_thr=args.peak_thr if args.peak_thr is not None
               else float(test_cfg.get('peak_thr', 0.0)))
    model = None if args.oracle else _build_model(
        cfg, args.checkpoint, len(dataset.metainfo['classes']), device, selector.needs_maps)

    run = run_fingerprint(cfg, args, gt_file)
    parts = PartsFile(parts_path(args.out, shard, num_shards), run)
    if parts.restarted:
        print(f'[gen_pseudo] {parts.path}: {parts.restarted}: starting this shard over',
              flush=True)
    todo = [i for i in range(shard, len(dataset), num_shards) if i not in parts.done]
    print(f'[gen_pseudo] shard {shard}/{num_shards}: {len(todo)} images to do, '
          f'{len(parts.done)} done before', flush=True)
    bar = ProgressBar(len(todo))
    try:
        for index in todo:
            parts.append(label_image(index, dataset, model, source, selector, gt, args, thr,
                                     device))
            bar.update()
    finally:
        parts.close()
    print()
    if args.launcher == 'pytorch':
        dist.barrier()
        if dist.get_rank() == 0:
            _merge(args, dataset, num_shards, run, gt_file)
        dist.barrier()
    else:
        try:
            _merge(args, dataset, num_shards, run, gt_file)
        except DataError as e:  # another shard has not finished
            print(f'[gen_pseudo] shard {shard}/{num_shards} done; not merged yet: {e}')


if __name__ == '__main__':
    sys.exit(run_tool('gen_pseudo.py', main))
