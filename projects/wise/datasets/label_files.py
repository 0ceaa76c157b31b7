"""Image-level labels in the forms people keep them, turned into the project's
``<split>_labels.json`` (COCO json: images with ``labels``, categories, no
annotations; docs/data.md).

Formats (``LABEL_FORMATS``):

- ``csv``: one image a row, ``image,label1;label2`` (labels split on ``;`` and on
  further columns; an optional header row ``image,...``; ``#`` comments); a label
  may carry its object count, ``cat:3`` (then every label of the file must);
- ``coco``: a COCO json with images and categories; an image's labels are the
  categories of its annotations, or its own ``image_labels`` list (names or ids);
  counted when every image's labels come from annotations.

Every row is checked before anything is written: an image that is not in the image
folder, listed twice, with no labels, or with a class not in the class list is one
line naming the file and row.
"""
from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ..errors import DataError
from ..registry import LABEL_FORMATS
from ..utils.io import load_coco_json, safe_join

#: first cells that mark a csv header row
HEADER_CELLS = {'image', 'file', 'filename', 'file_name', 'path'}
#: EXIF orientations that turn the stored picture by 90 degrees (loaders apply them)
ROTATED = {5, 6, 7, 8}


@dataclass
class LabelRow:
    """One image's labels and where they were read (``file:row``)."""

    where: str
    file_name: str
    labels: list[str]
    counts: list[int] | None = None  # objects per label, in ``labels`` order


def _label_and_count(token: str, where: str) -> tuple[str, int | None]:
    """``cat`` -> ('cat', None); ``cat:3`` -> ('cat', 3)."""
    name, sep, count = token.rpartition(':')
    if not sep or not count.strip().isdigit():
        return token, None
    if int(count) < 1:
        raise DataError(f'{where}: label {token!r}: a count must be 1 or more')
    return name.strip(), int(count)


@LABEL_FORMATS.register_module(name='csv')
def read_csv_labels(path: Path) -> tuple[list[LabelRow], list[str] | None]:
    """Rows of ``image,label1;label2``; no class list of its own."""
    rows = []
    with open(path, newline='', encoding='utf-8') as f:
        for n, cells in enumerate(csv.reader(f), 1):
            cells = [c.strip() for c in cells]
            if not any(cells) or cells[0].startswith('#'):
                continue
            if not rows and n == 1 and cells[0].lower() in HEADER_CELLS:
                continue
            where = f'{path}:{n}'
            tokens = [t.strip() for cell in cells[1:] for t in cell.split(';') if t.strip()]
            pairs = [_label_and_count(t, where) for t in tokens]
            counted = [c is not None for _, c in pairs]
            if any(counted) and not all(counted):
                raise DataError(f'{where}: give every label a count (cat:3) or none')
            rows.append(LabelRow(where, cells[0], [x for x, _ in pairs],
                                 [c for _, c in pairs] if pairs and all(counted) else None))
    return rows, None


@LABEL_FORMATS.register_module(name='coco')
def read_coco_labels(path: Path) -> tuple[list[LabelRow], list[str] | None]:
    """Images of a COCO json with the categories of their annotations (or their own
    ``image_labels``); the class list is the categories, in id order."""
    data = load_coco_json(path)
    names = {c['id']: c['name'] for c in data['categories']}
    from_anns: dict[int, list[str]] = {}
    for a in data.get('annotations', []):
        if a.get('category_id') not in names:
            raise DataError(f'{path}: annotation {a.get("id")} has category '
                            f'{a.get("category_id")!r}, not one of the categories')
        from_anns.setdefault(a['image_id'], []).append(names[a['category_id']])
    rows = []
    for n, im in enumerate(data['images']):
        where = f'{path}: images[{n}]'
        labels, counts = from_anns.get(im.get('id')), None
        if labels is not None:  # counted: every annotation is an object
            counts = [labels.count(x) for x in dict.fromkeys(labels)]
            labels = list(dict.fromkeys(labels))
        else:
            given = im.get('image_labels', [])
            unknown = [x for x in given if isinstance(x, int) and x not in names]
            if unknown:
                raise DataError(f'{where}: image_labels {unknown} are not category ids')
            labels = [names[x] if isinstance(x, int) else str(x) for x in given]
        if 'file_name' not in im:
            raise DataError(f'{where}: no file_name')
        rows.append(LabelRow(where, im['file_name'], labels, counts))
    if any(row.counts is None for row in rows):  # counts of some images only: none
        rows = [LabelRow(row.where, row.file_name, row.labels) for row in rows]
    return rows, [names[i] for i in sorted(names)]


def class_list(classes: str | None = None,
               classes_file: str | os.PathLike | None = None) -> tuple[str, ...] | None:
    """Class names from ``a,b,c`` or a file with one name a line (None: neither
    given); the i-th name is category id i."""
    if classes is not None:
        names, source = [c.strip() for c in classes.split(',')], '--classes'
        if not all(names):
            raise DataError(f'--classes {classes!r}: empty class name')
    elif classes_file is not None:
        path = Path(classes_file)
        if not path.is_file():
            raise DataError(f'{path}: classes file not found')
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        source = str(path)
    else:
        return None
    if not names:
        raise DataError(f'{source}: no class names')
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataError(f'{source}: duplicate class names {dupes}')
    return tuple(names)


def _read(path: Path, fmt: str | None = None) -> tuple[list[LabelRow], tuple[str, ...]]:
    """A label file's rows and the classes it names: its categories (COCO), or its
    labels sorted."""
    if not path.is_file():
        raise DataError(f'{path}: label file not found')
    rows, own = LABEL_FORMATS.get(label_format(path, fmt))(path)
    return rows, tuple(own or sorted({x for row in rows for x in row.labels}))


def label_classes(path: str | os.PathLike, fmt: str | None = None) -> tuple[str, ...]:
    """The classes a label file names: its categories (COCO), or its labels sorted."""
    return _read(Path(path), fmt)[1]


def has_instances(path: str | os.PathLike) -> bool:
    """Whether a label file is a COCO json with instance masks (then it can score)."""
    path = Path(path)
    if label_format(path) != 'coco':
        return False
    return any('segmentation' in a for a in load_coco_json(path).get('annotations', []))


def instances_json(path: str | os.PathLike, labels: dict) -> dict:
    """The instance masks of a COCO json, on the images and category ids of ``labels``
    (its ``labels_json``): the ground truth that scores a val split."""
    data = load_coco_json(path)
    image_id = {im['file_name']: im['id'] for im in labels['images']}
    old_name = {im['id']: im['file_name'] for im in data['images']}
    category = {c['name']: c['id'] for c in labels['categories']}
    names = {c['id']: c['name'] for c in data['categories']}
    anns = []
    for a in data.get('annotations', []):
        if 'segmentation' not in a:
            raise DataError(f'{path}: annotation {a.get("id")} has no segmentation')
        if names.get(a['category_id']) not in category or a['image_id'] not in old_name:
            raise DataError(f'{path}: annotation {a.get("id")} is of an unknown image or '
                            'class')
        anns.append({**a, 'id': len(anns) + 1, 'image_id': image_id[old_name[a['image_id']]],
                     'category_id': category[names[a['category_id']]]})
    return dict(images=labels['images'], categories=labels['categories'], annotations=anns)


def label_format(path: Path, name: str | None = None) -> str:
    """The format to read ``path`` in: the given one, else by suffix (.json: coco)."""
    if name is None:
        name = 'coco' if path.suffix.lower() == '.json' else 'csv'
    if name not in LABEL_FORMATS:
        raise DataError(f'unknown label format {name!r} (known: '
                        f'{", ".join(sorted(LABEL_FORMATS.module_dict))})')
    return name


def image_size(path: str) -> tuple[int, int]:
    """(height, width) of an image as the loaders see it: EXIF-rotated."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            if im.getexif().get(0x0112) in ROTATED:  # orientation tag
                w, h = h, w
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DataError(f'{path}: cannot read image ({e})') from None
    return h, w


def _checked(rows: Sequence[LabelRow], image_dir: Path,
             classes: Sequence[str]) -> Iterator[tuple[LabelRow, str]]:
    """Every row with its image path, after checking them all."""
    known, seen, paths = set(classes), {}, []
    for row in rows:
        if row.file_name in seen:
            raise DataError(f'{row.where}: image {row.file_name} is listed twice (also '
                            f'at {seen[row.file_name]})')
        seen[row.file_name] = row.where
        if not row.labels:
            raise DataError(f'{row.where}: image {row.file_name} has no labels')
        if row.counts is not None and len(set(row.labels)) < len(row.labels):
            raise DataError(f'{row.where}: a class is counted twice ({", ".join(row.labels)})')
        unknown = sorted(set(row.labels) - known)
        if unknown:
            raise DataError(f'{row.where}: class {unknown[0]!r} is not among the classes '
                            f'({", ".join(classes)})')
        paths.append(safe_join(image_dir, row.file_name, row.where))
        if not os.path.isfile(paths[-1]):
            raise DataError(f'{row.where}: image {row.file_name} not found in {image_dir}')
    yield from zip(rows, paths)


def labels_json(path: str | os.PathLike, image_dir: str | os.PathLike,
                classes: Sequence[str] | None = None, fmt: str | None = None) -> dict:
    """The labels json of a label file over an image folder.

    Args:
        path: the label file.
        image_dir: the folder its image names are relative to.
        classes: the class list (category ids 1..K in this order); by default the
            file's own (COCO categories) or its labels, sorted.
        fmt: a ``LABEL_FORMATS`` name; by default from the suffix.
    """
    path, image_dir = Path(path), Path(image_dir)
    rows, named = _read(path, fmt)
    if not rows:
        raise DataError(f'{path}: no images listed')
    classes = named if classes is None else classes
    ids = {name: i for i, name in enumerate(classes, 1)}
    odd = next((r for r in rows if (r.counts is None) != (rows[0].counts is None)), None)
    if odd is not None:
        raise DataError(f'{odd.where}: {"no" if odd.counts is None else ""} counts, unlike '
                        f'{rows[0].where}; give every image counts (cat:3) or none')
    images = []
    for n, (row, file) in enumerate(_checked(rows, image_dir, classes), 1):
        h, w = image_size(file)
        image = dict(id=n, file_name=row.file_name, height=h, width=w,
                     labels=sorted({ids[x] for x in row.labels}))
        if row.counts is not None:
            count_of = {ids[x]: c for x, c in zip(row.labels, row.counts)}
            image['label_counts'] = [count_of[i] for i in image['labels']]
        images.append(image)
    return dict(images=images, annotations=[],
                categories=[dict(id=i, name=name) for name, i in ids.items()])
