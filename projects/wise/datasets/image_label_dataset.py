"""A dataset that gives image-level labels and nothing else of the ground truth.

WISE's first stage (the PRM classifier) learns from "which classes are in this
image" only. This dataset never reads boxes or masks, so none can leak into a
weakly supervised model through the pipeline, whichever file it is fed.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from mmengine.logging import print_log

from mmdet.datasets import BaseDetDataset
from mmdet.registry import DATASETS

from ..errors import DataError
from ..utils.io import load_json, safe_join
from .voc_layout import VOC_CLASSES

_IMAGE_KEYS = ('id', 'file_name', 'height', 'width', 'labels')


def coco_cat2label(categories: Any, classes: Sequence[str], ann_file: str) -> dict[int, int]:
    """The 0-based class index of every category id, matched by name as CocoDataset does.

    A category whose name is not among ``classes`` is an error: its image
    labels would otherwise vanish without a trace.
    """
    if not isinstance(categories, list):
        raise DataError(f'{ann_file}: not a COCO json (no list "categories")')
    label_of = {name: i for i, name in enumerate(classes)}
    cat2label = {}
    for cat in categories:
        if not isinstance(cat, dict) or 'id' not in cat or 'name' not in cat:
            raise DataError(f'{ann_file}: malformed category {cat!r}')
        if cat['name'] not in label_of:
            raise DataError(f'{ann_file}: category {cat["name"]!r} (id {cat["id"]}) is not '
                            f'one of the {len(classes)} classes {tuple(classes)}')
        cat2label[cat['id']] = label_of[cat['name']]
    return cat2label


def coco_image_labels(data: Any, classes: Sequence[str], ann_file: str,
                      with_counts: bool = False) -> list[dict]:
    """Every image of a COCO json with its ``labels`` as sorted 0-based class indices.

    Returns dicts ``img_id, file_name, height, width, image_labels`` and, with
    ``with_counts``, ``image_counts``: the image's ``label_counts`` (objects per label, in
    ``image_labels`` order; 0: labelled but not counted, as VOC's difficult-only
    classes). Annotations are never looked at: an ``*_instances.json`` gives exactly
    what its ``*_labels.json`` twin gives.
    """
    if not isinstance(data, dict) or not isinstance(data.get('images'), list):
        raise DataError(f'{ann_file}: not a COCO json (no list "images")')
    cat2label = coco_cat2label(data.get('categories'), classes, ann_file)
    records, seen = [], set()
    for img in data['images']:
        missing = [k for k in _IMAGE_KEYS if k not in img] if isinstance(img, dict) \
            else list(_IMAGE_KEYS)
        if missing:
            img_id = img.get('id', '?') if isinstance(img, dict) else '?'
            raise DataError(f'{ann_file}: image {img_id} lacks {missing} (image-level '
                            '"labels" are written by tools/dataset_converters/voc_to_coco.py)')
        img_id = img['id']
        if img_id in seen:
            raise DataError(f'{ann_file}: duplicate image id {img_id}')
        seen.add(img_id)
        cat_ids = img['labels']
        if not isinstance(cat_ids, list) or any(c not in cat2label for c in cat_ids):
            raise DataError(f'{ann_file}: image {img_id}: labels {cat_ids!r} must be a list '
                            f'of category ids {sorted(cat2label)}')
        record = dict(img_id=img_id, file_name=img['file_name'], height=int(img['height']),
                      width=int(img['width']), image_labels=sorted({cat2label[c] for c in cat_ids}))
        if with_counts:
            record['image_counts'] = _image_counts(img, cat2label, record['image_labels'],
                                                   ann_file)
        records.append(record)
    return records


def _image_counts(img: dict, cat2label: dict[int, int], labels: list[int],
                  ann_file: str) -> list[int]:
    """An image's ``label_counts``, checked, in the order of its sorted class indices."""
    counts = img.get('label_counts')
    if counts is None:
        raise DataError(f'{ann_file}: image {img["id"]} has no "label_counts" (the model asks '
                        'for object counts: voc_to_coco writes them, labels_to_coco from "cat:3" '
                        'labels)')
    if (not isinstance(counts, list) or len(counts) != len(img['labels'])
            or not all(isinstance(n, int) and n >= 0 for n in counts)):
        raise DataError(f'{ann_file}: image {img["id"]}: counts {counts!r} must be a count '
                        f'(>= 0) for each of its labels {img["labels"]}')
    count_of = {cat2label[c]: n for c, n in zip(img['labels'], counts)}
    return [count_of[c] for c in labels]


def require_images(kept: list[dict], ann_file: str, skipped_by: dict | None = None) -> list[dict]:
    """``kept``, unless empty: mmengine fails deep inside on an empty dataset.
    ``skipped_by``: the filter_cfg that left nothing of a non-empty list."""
    if not kept:
        why = f' (filter_cfg {dict(skipped_by)} skipped every image)' if skipped_by else ''
        raise DataError(f'{ann_file}: no images to use{why}')
    return kept


@DATASETS.register_module()
class ImageLabelDataset(BaseDetDataset):
    """Images and their image-level labels from a COCO json.

    ``ann_file`` is a ``*_labels.json`` (or an ``*_instances.json``, whose
    annotations are ignored). Each data info holds ``img_path`` (under
    ``data_prefix['img']``), ``img_id``, ``height``, ``width`` and
    ``image_labels``: the sorted 0-based indices of the classes present.

    ``with_counts``: also ``image_counts``, the objects of each labelled class (for
    models trained from counts; others never see them).

    ``filter_cfg`` (off in ``test_mode``, as in CocoDataset):
    ``filter_empty_gt=True`` skips images without labels, which teach a
    multi-label classifier nothing but "background"; ``min_size`` skips images
    whose shorter side is smaller. Skipped images are counted in a warning.
    """

    METAINFO = dict(classes=VOC_CLASSES)

    def __init__(self, *args, with_counts: bool = False, **kwargs) -> None:
        self.with_counts = with_counts
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> list[dict]:
        records = coco_image_labels(load_json(self.ann_file), self.metainfo['classes'],
                                    self.ann_file, self.with_counts)
        img_dir = self.data_prefix['img']
        return [dict(img_path=safe_join(img_dir, r.pop('file_name'), self.ann_file), **r)
                for r in records]

    def filter_data(self) -> list[dict]:
        if self.test_mode or not self.filter_cfg:
            return require_images(self.data_list, self.ann_file)
        filter_empty = self.filter_cfg.get('filter_empty_gt', False)
        min_size = self.filter_cfg.get('min_size', 0)
        kept, num_empty, num_small = [], 0, 0
        for info in self.data_list:
            if filter_empty and not info['image_labels']:
                num_empty += 1
            elif min(info['height'], info['width']) < min_size:
                num_small += 1
            else:
                kept.append(info)
        if num_empty or num_small:
            print_log(f'{type(self).__name__} {self.ann_file}: skipped {num_empty} of '
                      f'{len(self.data_list)} images without image-level labels and '
                      f'{num_small} smaller than {min_size} px', logger='current',
                      level=logging.WARNING)
        return require_images(kept, self.ann_file, self.filter_cfg if self.data_list else None)

    def get_cat_ids(self, idx: int) -> list[int]:
        """The classes in image ``idx`` (for class-aware samplers)."""
        return list(self.get_data_info(idx)['image_labels'])
