"""The built-in "shapes" dataset, generated in the exact PASCAL VOC 2012 layout.

Every class is a shape with a hue of its own (jittered by ``hue_jitter``
degrees; 180 makes colour random, so only shape tells classes apart). Images
hold 1-4 instances, classes may repeat, instances may touch or overlap (later
ones occlude earlier ones), and backgrounds are cluttered with texture and line
noise. Label PNGs carry VOC's void (255) border around every object, so real VOC
and this set share all code paths.

The ``hard`` variant fails the way VOC does: hollow, concave and elongated
classes, backgrounds cut from the real photographs scikit-image ships, distractor
blobs in the colours of the classes present (where a colour-led PRM fires
falsely) and up to 5 instances per image. The ``crowded`` variant is where
counting matters: 4-12 smaller instances of one or two classes per image.
``sweep<N>`` variants draw all of this from a seed (:mod:`.variants`).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..utils.io import atomic_write
from .variants import SHAPES, VARIANTS, Outline, Variant, variant_by_name
from .voc_layout import VOID, write_label_png

#: least unoccluded fraction of every instance
MIN_VISIBLE = 0.5


def _shape_mask(outline: Outline, h: int, w: int, cx: float, cy: float, radius: float,
                angle: float) -> np.ndarray:
    """Rasterise one rotated, scaled outline (minus its hole) to an HxW bool mask."""
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    mask = np.zeros((h, w), np.uint8)

    def fill(pts: np.ndarray, value: int) -> None:
        xy = pts @ rot.T * radius + np.array([cx, cy])
        cv2.fillPoly(mask, [np.round(xy * 16).astype(np.int32)], value, cv2.LINE_8, shift=4)

    points, hole = outline
    fill(points, 1)
    if hole is not None:
        fill(hole, 0)
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
    return _lines_and_grain(rng, np.clip(img, 0, 255).astype(np.uint8), clutter)


def _lines_and_grain(rng: np.random.Generator, img: np.ndarray, clutter: float) -> np.ndarray:
    """Clutter lines (their number scaled by ``clutter``) drawn on the uint8 ``img``,
    then grain: the float image objects are painted on."""
    h, w = img.shape[:2]
    for _ in range(int(rng.integers(3, 12) * clutter)):
        p1, p2 = rng.integers(0, [w, h], size=(2, 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.line(img, tuple(int(v) for v in p1), tuple(int(v) for v in p2), colour,
                 int(rng.integers(1, 3)), cv2.LINE_AA)
    return img.astype(np.float32) + rng.normal(0, 6, (h, w, 3))


#: scikit-image's bundled photographs (no download); grey ones are used as grey
PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'hubble_deep_field',
          'immunohistochemistry', 'retina', 'camera', 'coins', 'moon', 'grass', 'gravel',
          'brick', 'clock', 'cell', 'page')


@lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    from skimage import data
    out = []
    for name in PHOTOS:
        img = getattr(data, name)()
        out.append(np.repeat(img[..., None], 3, 2) if img.ndim == 2 else img[..., :3])
    return tuple(out)


def _photo_background(rng: np.random.Generator, h: int, w: int, clutter: float) -> np.ndarray:
    """A random crop (20-100 % of the short side) of a random photograph, flipped at
    random, with the demo's clutter lines and grain."""
    photos = _photos()
    photo = photos[int(rng.integers(len(photos)))]
    side = int(min(photo.shape[:2]) * rng.uniform(0.2, 1.0))
    y, x = (int(rng.integers(0, d - side + 1)) for d in photo.shape[:2])
    img = cv2.resize(photo[y:y + side, x:x + side], (w, h), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        img = img[:, ::-1]
    return _lines_and_grain(rng, np.ascontiguousarray(img), clutter)


def _flat_background(rng: np.random.Generator, h: int, w: int, clutter: float) -> np.ndarray:
    """One muted colour and grain: nothing but the objects to look at."""
    colour = rng.uniform(60, 190, 3).astype(np.float32)
    return np.broadcast_to(colour, (h, w, 3)) + rng.normal(0, 6, (h, w, 3))


#: Variant.background -> how it is drawn
DRAW_BACKGROUND = {'texture': _background, 'photo': _photo_background, 'flat': _flat_background}


def _blob(rng: np.random.Generator, h: int, w: int, radius: float) -> np.ndarray:
    """An irregular filled blob of about ``radius``: no class's shape."""
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    sx, sy = radius * rng.uniform(0.6, 1.4, 2)
    dist = np.sqrt(((xx - cx) / sx) ** 2 + ((yy - cy) / sy) ** 2)
    wobble = _smooth_noise(rng, h, w, int(rng.integers(4, 9)), 1)[..., 0]
    return dist < 0.6 + 0.8 * wobble


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
                 variant: Variant = VARIANTS['demo']
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """Render one sample: RGB image, instance-index map (no void), class PNG, object PNG
    and the class index of each instance.

    Class c's hue is ``360 * c / len(classes)`` +- ``hue_jitter`` degrees: a colour
    cue lets a from-scratch classifier learn in CPU minutes (shape alone takes far
    longer), while masks still need the shape. ``variant`` adds photographs and
    distractors (the demo's own draws come first, so its images never change).
    """
    h = w = size
    while True:
        n = int(rng.integers(variant.min_instances, max_instances + 1))
        own = list(range(len(classes))) if variant.max_classes is None else \
            rng.choice(len(classes), int(rng.integers(1, variant.max_classes + 1)),
                       replace=False).tolist()
        full: list[np.ndarray] = []
        labels: list[int] = []
        centres: list[tuple[float, float, float]] = []
        for _ in range(n):
            cls = int(own[int(rng.integers(len(own)))])
            radius = size * rng.uniform(*variant.radius)
            if centres and rng.random() < 0.4:  # touch or overlap an earlier instance
                ox, oy, orad = centres[int(rng.integers(len(centres)))]
                t = rng.uniform(0, 2 * np.pi)
                d = (orad + radius) * rng.uniform(0.75, 1.0)
                cx, cy = ox + d * np.cos(t), oy + d * np.sin(t)
            else:
                cx, cy = rng.uniform(radius * 0.8, size - radius * 0.8, 2)
            angle = np.deg2rad(rng.uniform(-max_rotation, max_rotation))
            full.append(_shape_mask(variant.outline(classes[cls]), h, w, cx, cy, radius,
                                    angle))
            labels.append(cls)
            centres.append((cx, cy, radius))
        objects = np.zeros((h, w), np.uint8)
        for i, m in enumerate(full, 1):
            objects[m] = i
        visible = [(objects == i).sum() / max(m.sum(), 1) for i, m in enumerate(full, 1)]
        if min(visible) >= MIN_VISIBLE and min(m.sum() for m in full) >= 0.004 * h * w:
            break

    img = DRAW_BACKGROUND[variant.background](rng, h, w, clutter)
    num_distractors = int(rng.integers(0, variant.max_distractors + 1)) \
        if variant.max_distractors else 0
    for _ in range(num_distractors):
        # mostly a present class's colour: a PRM led by colour fires on it
        cls = labels[int(rng.integers(n))] if rng.random() < 0.75 \
            else int(rng.integers(len(classes)))
        hue = 360 * cls / len(classes) + rng.uniform(-hue_jitter, hue_jitter)
        blob = _blob(rng, h, w, size * rng.uniform(0.08, 0.18)) & (objects == 0)
        img[blob] = _object_texture(rng, h, w, hue)[blob]
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
                 max_instances: int | None, seed: int, clutter: float = 1.0,
                 max_rotation: float = 180.0, hue_jitter: float = 180.0,
                 variant: str = 'demo', num_test: int = 0) -> None:
    """Write ``num_train`` + ``num_val`` + ``num_test`` images in VOC's layout. The
    splits follow one another in image order and each image has its own generator, so
    adding a test split leaves the train and val images as they were. ``variant``: a
    name of :func:`~.variants.variant_by_name`; a drawn one brings its own hue jitter."""
    style = variant_by_name(variant)
    if style.hue_jitter is not None:
        hue_jitter = style.hue_jitter
    if style.classes is not None:
        classes = list(style.classes)
    elif 1 <= num_classes <= len(SHAPES):
        classes = list(SHAPES)[:num_classes]
    else:
        raise SystemExit(f'--num-classes must be in 1..{len(SHAPES)}')
    max_instances = max_instances or style.max_instances
    for sub in ('JPEGImages', 'Annotations', 'SegmentationClass', 'SegmentationObject',
                'ImageSets/Main', 'ImageSets/Segmentation'):
        (out / sub).mkdir(parents=True, exist_ok=True)
    ends = {'train': num_train, 'val': num_train + num_val,
            **({'test': num_train + num_val + num_test} if num_test else {})}
    splits: dict[str, list[str]] = {s: [] for s in ends}
    present: dict[str, list[set[int]]] = {s: [] for s in ends}
    total = max(ends.values())
    for idx in range(total):
        split = next(s for s, end in ends.items() if idx < end)
        image_id = f'2026_{idx:06d}'
        # One generator per image: any image can be regenerated on its own.
        rng = np.random.default_rng([seed, idx])
        img, objects, cls_png, obj_png, labels = render_image(
            rng, size, classes, max_instances, clutter, max_rotation, hue_jitter, style)
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
    print(f'[shapes] wrote {total} images ({num_train} train / {num_val} val'
          + (f' / {num_test} test' if num_test else '') + '), '
          f'classes: {", ".join(classes)} -> {out}')
