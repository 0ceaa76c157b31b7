"""Draw PRM outputs: class response maps, peaks and peak response maps.

For each image, one PNG: the image with its peaks, then for every class the
model finds present, its class response map and the union of its peaks'
response maps, overlaid on the image. Where the split has ground-truth instances
each peak is marked by what it hit (green: an object of its class; orange: an
object another peak already hit; red: no object of its class) and the first tile
tallies them: false peaks and several peaks per object show at a glance.

    python tools/vis_peaks.py configs/wise/demo/prm_r18_shapes.py \\
        work_dirs/demo/prm/epoch_15.pth --out-dir work_dirs/demo/prm/vis --num 8
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

import projects.wise  # noqa: F401
from mmdet.registry import DATASETS, MODELS
from projects.wise.pseudo import GTPoints
from projects.wise.pseudo.labeller import default_gt_file
from projects.wise.pseudo.visualization import VERDICT_COLOURS, judge_peaks, tally, with_header
from projects.wise.utils.cli import run_tool
from projects.wise.utils.io import read_image


def _heat(image: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """Overlay a [0, 1] map on an RGB image with the JET colour map."""
    colour = cv2.applyColorMap((255 * np.clip(heat, 0, 1)).astype(np.uint8), cv2.COLORMAP_JET)
    return (0.45 * image + 0.55 * colour[..., ::-1]).astype(np.uint8)


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    tile = tile.copy()
    cv2.putText(tile, text, (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                cv2.LINE_AA)
    return tile


def render(image: np.ndarray, crm: np.ndarray, sample, classes: tuple[str, ...],
           gt: tuple[list[dict], list[int]] | None = None) -> np.ndarray:
    """One row: image + peaks, then (CRM, PRMs) for each class found present; with
    ``gt`` (the image's object RLEs and labels) peaks are judged against it."""
    peaks = sample.pred_peaks
    order = peaks.scores.argsort(descending=True)
    points = peaks.points[order].round().int().tolist()
    labels = peaks.labels[order].tolist()
    verdicts = None if gt is None else judge_peaks(np.asarray(points), labels, *gt)
    first = image.copy()
    for i, ((x, y), c) in enumerate(zip(points, labels)):
        colour = (255, 255, 255) if verdicts is None else VERDICT_COLOURS[verdicts[i]]
        cv2.drawMarker(first, (x, y), colour, cv2.MARKER_CROSS, 9, 2)
        cv2.putText(first, classes[c][:3], (x + 3, y - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                    (255, 255, 0), 1, cv2.LINE_AA)
    tiles = [_label(first, 'peaks')]
    for c in sorted(set(labels)):
        m = crm[c]
        tiles.append(_label(_heat(image, (m - m.min()) / max(m.max() - m.min(), 1e-6)),
                            f'CRM {classes[c]}'))
        if 'prms' in peaks:
            prm = peaks.prms[peaks.labels == c]
            prm = (prm / prm.amax((1, 2), keepdim=True).clamp_min(1e-12)).amax(0).numpy()
            tiles.append(_label(_heat(image, prm), f'PRM {classes[c]}'))
    row = np.concatenate(tiles, axis=1)
    return row if verdicts is None else with_header(row, 'peaks: ' + tally(verdicts, len(gt[0])))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--out-dir', required=True, type=Path)
    p.add_argument('--num', type=int, default=8, help='how many test images')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args(argv)

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    cfg.model.test_cfg = {**cfg.model.get('test_cfg', {}), 'with_prm': True, 'with_crm': True}
    model = MODELS.build(cfg.model).eval()
    load_checkpoint(model, args.checkpoint, map_location='cpu')
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    classes = dataset.metainfo['classes']
    gt_file = default_gt_file(dataset)
    gt_points = GTPoints(gt_file, classes) if gt_file else None
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for i in range(min(args.num, len(dataset))):
        batch = model.data_preprocessor(pseudo_collate([dataset[i]]), False)
        [sample] = model.predict(batch['inputs'], batch['data_samples'])
        crm = sample.pred_crms.numpy()
        image = read_image(sample.img_path)
        gt = None if gt_points is None else gt_points.objects(sample.img_id, image.shape[:2])
        out = args.out_dir / f'{Path(sample.img_path).stem}.png'
        cv2.imwrite(str(out), render(image, crm, sample, classes, gt)[..., ::-1])
        print(f'[vis_peaks] {out}', flush=True)


if __name__ == '__main__':
    sys.exit(run_tool('vis_peaks.py', main))
