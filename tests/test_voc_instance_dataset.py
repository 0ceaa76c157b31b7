"""VOCInstanceDataset: labels follow the config's class order; bad files fail clearly."""
from __future__ import annotations

from pathlib import Path

import pytest
from mmengine.registry import init_default_scope

import projects.wise  # noqa: F401
from mmdet.registry import DATASETS
from projects.wise.errors import DataError

from conftest import SHAPES_CLASSES


def _build(root: Path, classes, ann: str = 'annotations/val_instances.json', **kwargs):
    init_default_scope('mmdet')
    return DATASETS.build(dict(type='VOCInstanceDataset', data_root=str(root), ann_file=ann,
                               data_prefix=dict(img='JPEGImages/'),
                               metainfo=dict(classes=classes), pipeline=[], **kwargs))


def _labels_by_name(ds) -> list[list[str]]:
    names = ds.metainfo['classes']
    return [sorted(names[i['bbox_label']] for i in ds.get_data_info(k)['instances'])
            for k in range(len(ds))]


def test_class_order_follows_config(shapes_root: Path) -> None:
    plain = _build(shapes_root, SHAPES_CLASSES)
    reordered = _build(shapes_root, tuple(reversed(SHAPES_CLASSES)))
    assert sum(map(len, _labels_by_name(plain))) > 0
    # The same objects carry the same class names, whatever the order of the list.
    assert _labels_by_name(plain) == _labels_by_name(reordered)


def test_unknown_class_is_refused(shapes_root: Path) -> None:
    with pytest.raises(DataError, match='hexagon'):
        _build(shapes_root, SHAPES_CLASSES + ('hexagon',))


def test_truncated_json_names_the_file(shapes_root: Path, tmp_path: Path) -> None:
    bad = tmp_path / 'annotations' / 'val_instances.json'
    bad.parent.mkdir()
    bad.write_text((shapes_root / 'annotations/val_instances.json').read_text()[:100])
    with pytest.raises(DataError, match=str(bad)):
        _build(tmp_path, SHAPES_CLASSES)


@pytest.mark.parametrize('type_,ann', [('VOCInstanceDataset', 'val_instances.json'),
                                       ('ImageLabelDataset', 'val_labels.json')])
def test_nothing_left_after_filtering_is_one_clear_error(shapes_root: Path, type_: str,
                                                         ann: str) -> None:
    """Not mmengine's 'need at least one array to concatenate' from deep inside."""
    init_default_scope('mmdet')
    cfg = dict(type=type_, data_root=str(shapes_root), ann_file=f'annotations/{ann}',
               data_prefix=dict(img='JPEGImages/'), metainfo=dict(classes=SHAPES_CLASSES),
               pipeline=[], filter_cfg=dict(filter_empty_gt=True, min_size=1000))
    with pytest.raises(DataError, match=rf"{ann}: no images to use \(filter_cfg .*'min_size': "
                                        r'1000.* skipped every image\)'):
        DATASETS.build(cfg)
    assert len(DATASETS.build({**cfg, 'filter_cfg': None})) == 4
