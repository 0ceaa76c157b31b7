"""The built-in shapes data (tools/make_shapes_dataset.py, VOC's layout) in a config.

A VOC dataset config, with image labels or with instances, moved onto the shapes'
folder, class names and 128 px images, with the held-out test split the shapes have
(VOC reports on its val). One function, because mmengine merges no two bases that set
the same key: each shapes dataset config calls it on its own VOC base.
"""
from __future__ import annotations

from typing import Any, NamedTuple

DATA_ROOT = 'data/shapes/'
CLASSES = ('circle', 'square', 'triangle', 'star', 'cross')
#: the images' own size: VOC's 448 px or 800 / 1333 would only upsample them
SCALE = (128, 128)


def replace_in(value: Any, old: str, new: str) -> Any:
    """``value`` with ``old`` replaced by ``new`` in every string it holds."""
    if isinstance(value, dict):
        return {k: replace_in(v, old, new) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(replace_in(v, old, new) for v in value)
    return value.replace(old, new) if isinstance(value, str) else value


class ShapesKeys(NamedTuple):
    """What a dataset config sets to read the shapes, in the order it unpacks them."""

    data_root: str
    metainfo: dict[str, Any]
    train_pipeline: list[dict[str, Any]]
    test_pipeline: list[dict[str, Any]]
    train_dataloader: dict[str, Any]
    val_dataloader: dict[str, Any]
    test_dataloader: dict[str, Any]
    val_evaluator: Any
    test_evaluator: Any


def on_shapes(base: Any) -> ShapesKeys:
    """The keys a dataset config inheriting ``base`` (a resolved VOC dataset config)
    sets to read the shapes instead: its loaders (one worker for a 2-core CPU) and
    metrics, val for choosing and test for reporting."""
    metainfo = dict(classes=CLASSES)
    train_pipeline, test_pipeline = ([dict(t, scale=SCALE) if t['type'] == 'Resize' else t
                                      for t in pipeline]
                                     for pipeline in (base.train_pipeline, base.test_pipeline))

    def loader(pipeline: list, **dataset: Any) -> dict[str, Any]:
        return dict(num_workers=1, dataset=dict(data_root=DATA_ROOT, metainfo=metainfo,
                                                pipeline=pipeline, **dataset))

    val_ann = base.val_dataloader.dataset.ann_file
    val_evaluator = replace_in(base.val_evaluator, base.data_root, DATA_ROOT)
    return ShapesKeys(
        data_root=DATA_ROOT, metainfo=metainfo,
        train_pipeline=train_pipeline, test_pipeline=test_pipeline,
        train_dataloader=loader(train_pipeline),
        val_dataloader=loader(test_pipeline),
        test_dataloader=loader(test_pipeline, ann_file=val_ann.replace('val_', 'test_')),
        val_evaluator=val_evaluator,
        test_evaluator=replace_in(val_evaluator, '/val_', '/test_'))
