"""Generate the built-in "shapes" dataset in the exact PASCAL VOC 2012 layout.

Every class is a shape with a hue of its own (jittered by ``--hue-jitter``
degrees; 180 makes colour random, so only shape tells classes apart). Images
hold 1-4 instances, classes may repeat, instances may touch or overlap (later
ones occlude earlier ones), and backgrounds are cluttered with texture and line
noise. Label PNGs carry VOC's void (255)
border around every object, so real VOC and this set share all code paths.

    python tools/make_shapes_dataset.py data/shapes --num-train 2000 --num-val 200
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from projects.wise.datasets.voc_layout import VOID, write_label_png
from projects.wise.utils.io import atomic_write


def _regular(n: int, phase: float = 0.0) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False) + phase
    return np.stack([np.cos(t), np.sin(t)], 1)


def _star() -> np.ndarray:
    pts = _regular(10, -np.pi / 2)
    pts[1::2] *= 0.42
    return pts


def _cross() -> np.ndarray:
    a, b = 1.0, 0.34
    return np.array([[-b, -a], [b, -a], [b, -b], [a, -b], [a, b], [b, b], [b, a],
                     [-b, a], [-b, b], [-a, b], [-a, -b], [-b, -b]])


def _arrow() -> np.ndarray:
    return np.array([[-1, -0.28], [0.15, -0.28], [0.15, -0.75], [1, 0], [0.15, 0.75],
                     [0.15, 0.28], [-1, 0.28]])


# Unit outlines (radius ~1). A ring is an outer polygon with a hole (see _draw).
SHAPES: dict[str, Callable[[], np.ndarray]] = {
    'circle': lambda: _regular(64),
    'square': lambda: _regular(4, np.pi / 4) * 1.2,
    'triangle': lambda: _regular(3, -np.pi / 2) * 1.15,
    'star': _star,
    'cross': _cross,
    'arrow': _arrow,
    'ring': lambda: _regular(48),
    'diamond': lambda: _regular(4) * np.array([[0.6, 1.15]]),
}


def _shape_mask(name: str, h: int, w: int, cx: float, cy: float, radius: float,
                angle: float) -> np.ndarray:
    """Rasterise one rotated, scaled shape to an HxW bool mask."""
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    mask = np.zeros((h, w), np.uint8)

    def fill(pts: np.ndarray, value: int) -> None:
        xy = pts @ rot.T * radius + np.array([cx, cy])
        cv2.fillPoly(mask, [np.round(xy * 16).astype(np.int32)], value, cv2.LINE_8, shift=4)

    fill(SHAPES[name](), 1)
    if name == 'ring':
        fill(_regular(48) * 0.5, 0)
    return mask.astype(bool)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int, ch: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: random coarse grid upsampled bicubically."""
    coarse = rng.random((cells, cells, ch)).astype(np.float32)
    out = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(out.reshape(h, w, ch), 0, 1)


def _background(rng: np.random.Generator, h: int, w: int, clutter: float) -> np.ndarray:
    """Textured, cluttered background: colour fields, grain, stripes and lines.

    ``clutter`` in [0, 1] scales the texture contrast and the number of lines.
    """
    img = 255 * (0.25 + 0.5 * _smooth_noise(rng, h, w, int(rng.integers(2, 6)), 3))
    img += 40 * clutter * (_smooth_noise(rng, h, w, int(rng.integers(12, 32)), 1) - 0.5)
    if rng.random() < 0.5 * clutter:  # oriented stripes
        yy, xx = np.mgrid[:h, :w]
        theta, period = rng.uniform(0, np.pi), rng.uniform(6, 20)
        phase = (xx * np.cos(theta) + yy * np.sin(theta)) * 2 * np.pi / period
        img += 25 * np.sin(phase)[..., None]
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(3, 12) * clutter)):  # clutter lines
        p1, p2 = rng.integers(0, [w, h], size=(2, 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.line(img, tuple(int(v) for v in p1), tuple(int(v) for v in p2), colour,
                 int(rng.integers(1, 3)), cv2.LINE_AA)
    img = img.astype(np.float32) + rng.normal(0, 6, (h, w, 3))
    return img


def _object_texture(rng: np.random.Generator, h: int, w: int, hue: float) -> np.ndarray:
    """A saturated colour of the given hue (degrees) with mild shading."""
    hsv = np.array([[[round(hue % 360 / 2) % 180, rng.integers(140, 256),
                      rng.integers(150, 256)]]], np.uint8)
    base = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float32)
    shade = 0.75 + 0.5 * _smooth_noise(rng, h, w, 3, 1)
    return base * shade


def _void_band(objects: np.ndarray) -> np.ndarray:
    """VOC-style void: a thin band on every object border (object/bg and object/object)."""
    k = np.ones((3, 3), np.uint8)
    lo = cv2.erode(objects, k)
    hi = cv2.dilate(objects, k)
    return (lo != hi) & ((hi > 0) | (lo > 0))


def render_image(rng: np.random.Generator, size: int, classes: list[str], max_instances: int,
                 clutter: float = 1.0, max_rotation: float = 180.0, hue_jitter: float = 180.0,
                 min_visible: float = 0.5
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """Render one sample: RGB image, instance-index map (no void), class PNG, object PNG
    and the class index of each instance.

    Class c's hue is ``360 * c / len(classes)`` +- ``hue_jitter`` degrees: a colour
    cue lets a from-scratch classifier learn in CPU minutes (shape alone takes far
    longer), while masks still need the shape.
    """
    h = w = size
    while True:
        n = int(rng.integers(1, max_instances + 1))
        full: list[np.ndarray] = []
        labels: list[int] = []
        centres: list[tuple[float, float, float]] = []
        for _ in range(n):
            cls = int(rng.integers(len(classes)))
            radius = size * rng.uniform(0.11, 0.22)
            if centres and rng.random() < 0.4:  # touch or overlap an earlier instance
                ox, oy, orad = centres[int(rng.integers(len(centres)))]
                t = rng.uniform(0, 2 * np.pi)
                d = (orad + radius) * rng.uniform(0.75, 1.0)
                cx, cy = ox + d * np.cos(t), oy + d * np.sin(t)
            else:
                cx, cy = rng.uniform(radius * 0.8, size - radius * 0.8, 2)
            angle = np.deg2rad(rng.uniform(-max_rotation, max_rotation))
            full.append(_shape_mask(classes[cls], h, w, cx, cy, radius, angle))
            labels.append(cls)
            centres.append((cx, cy, radius))
        objects = np.zeros((h, w), np.uint8)
        for i, m in enumerate(full, 1):
            objects[m] = i
        visible = [(objects == i).sum() / max(m.sum(), 1) for i, m in enumerate(full, 1)]
        if min(visible) >= min_visible and min(m.sum() for m in full) >= 0.004 * h * w:
            break

    img = _background(rng, h, w, clutter)
    for i in range(1, n + 1):
        m = objects == i
        hue = 360 * labels[i - 1] / len(classes) + rng.uniform(-hue_jitter, hue_jitter)
        img[m] = _object_texture(rng, h, w, hue)[m]
    img += rng.normal(0, 4, img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)

    cls_png = np.zeros((h, w), np.uint8)
    for i, cls in enumerate(labels, 1):
        cls_png[objects == i] = cls + 1
    void = _void_band(objects)
    obj_png = objects.copy()
    cls_png[void] = VOID
    obj_png[void] = VOID
    return img, objects, cls_png, obj_png, labels


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()) + 1, int(ys.min()) + 1, int(xs.max()) + 1, int(ys.max()) + 1


def _xml(image_id: str, size: int, objects: np.ndarray, labels: list[int],
         classes: list[str]) -> str:
    objs = []
    for i, cls in enumerate(labels, 1):
        x1, y1, x2, y2 = _bbox(objects == i)
        objs.append(
            f'  <object>\n    <name>{classes[cls]}</name>\n    <pose>Unspecified</pose>\n'
            f'    <truncated>0</truncated>\n    <difficult>0</difficult>\n'
            f'    <bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax>'
            f'<ymax>{y2}</ymax></bndbox>\n  </object>\n')
    return (f'<annotation>\n  <folder>VOC2012</folder>\n  <filename>{image_id}.jpg</filename>\n'
            f'  <size><width>{size}</width><height>{size}</height><depth>3</depth></size>\n'
            f'  <segmented>1</segmented>\n{"".join(objs)}</annotation>\n')


def _write_lines(path: Path, lines: list[str]) -> None:
    with atomic_write(path) as f:
        f.write(''.join(f'{line}\n' for line in lines))


def make_dataset(out: Path, num_train: int, num_val: int, num_classes: int, size: int,
                 max_instances: int, seed: int, clutter: float = 1.0,
                 max_rotation: float = 180.0, hue_jitter: float = 180.0) -> None:
    if not 1 <= num_classes <= len(SHAPES):
        raise SystemExit(f'--num-classes must be in 1..{len(SHAPES)}')
    classes = list(SHAPES)[:num_classes]
    for sub in ('JPEGImages', 'Annotations', 'SegmentationClass', 'SegmentationObject',
                'ImageSets/Main', 'ImageSets/Segmentation'):
        (out / sub).mkdir(parents=True, exist_ok=True)
    splits = {'train': [], 'val': []}
    present: dict[str, list[set[int]]] = {'train': [], 'val': []}
    total = num_train + num_val
    for idx in range(total):
        split = 'train' if idx < num_train else 'val'
        image_id = f'2026_{idx:06d}'
        # One generator per image: any image can be regenerated on its own.
        rng = np.random.default_rng([seed, idx])
        img, objects, cls_png, obj_png, labels = render_image(
            rng, size, classes, max_instances, clutter, max_rotation, hue_jitter)
        Image.fromarray(img).save(out / 'JPEGImages' / f'{image_id}.jpg', quality=92)
        write_label_png(cls_png, out / 'SegmentationClass' / f'{image_id}.png')
        write_label_png(obj_png, out / 'SegmentationObject' / f'{image_id}.png')
        (out / 'Annotations' / f'{image_id}.xml').write_text(
            _xml(image_id, size, objects, labels, classes))
        splits[split].append(image_id)
        present[split].append(set(labels))
        if (idx + 1) % 200 == 0 or idx + 1 == total:
            print(f'[shapes] {idx + 1}/{total} images', flush=True)
    splits['trainval'] = splits['train'] + splits['val']
    present['trainval'] = present['train'] + present['val']
    for split, ids in splits.items():
        _write_lines(out / 'ImageSets' / 'Segmentation' / f'{split}.txt', ids)
        _write_lines(out / 'ImageSets' / 'Main' / f'{split}.txt', ids)
        for c, name in enumerate(classes):
            _write_lines(out / 'ImageSets' / 'Main' / f'{name}_{split}.txt',
                         [f'{i} {1 if c in p else -1:2d}' for i, p in zip(ids, present[split])])
    _write_lines(out / 'classes.txt', classes)
    print(f'[shapes] wrote {total} images ({num_train} train / {num_val} val), '
          f'classes: {", ".join(classes)} -> {out}')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('out', type=Path, help='output root (becomes a VOC2012-style folder)')
    p.add_argument('--num-train', type=int, default=2000)
    p.add_argument('--num-val', type=int, default=200)
    p.add_argument('--num-classes', type=int, default=5, help=f'1..{len(SHAPES)}')
    p.add_argument('--image-size', type=int, default=128)
    p.add_argument('--max-instances', type=int, default=4)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--clutter', type=float, default=1.0,
                   help='background clutter in [0, 1]: texture contrast and line count')
    p.add_argument('--max-rotation', type=float, default=20.0,
                   help='shapes are rotated uniformly within +-this many degrees')
    p.add_argument('--hue-jitter', type=float, default=15.0,
                   help='object hue = class hue +- this many degrees (180: random colour)')
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    make_dataset(a.out, a.num_train, a.num_val, a.num_classes, a.image_size,
                 a.max_instances, a.seed, a.clutter, a.max_rotation, a.hue_jitter)


if __name__ == '__main__':
    main()
