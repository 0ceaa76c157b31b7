"""Annotation files are data: the image names in them cannot leave the data root."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from projects.wise.errors import DataError
from projects.wise.utils.io import safe_join

from conftest import SHAPES_CLASSES, run_tool


def test_safe_join_keeps_names_inside_the_root(tmp_path: Path) -> None:
    root = str(tmp_path / 'JPEGImages')
    assert safe_join(root, 'a.jpg', 'x.json') == f'{root}/a.jpg'
    assert safe_join(root, 'sub/../b.jpg', 'x.json') == f'{root}/b.jpg'
    for bad in ('../a.jpg', 'sub/../../a.jpg', '/etc/passwd', '..'):
        with pytest.raises(DataError, match=r"x\.json: file name .* points outside"):
            safe_join(root, bad, 'x.json')


def _escaping_copy(shapes_root: Path, kind: str, tmp_path: Path) -> Path:
    data = json.loads((shapes_root / f'annotations/train_{kind}.json').read_text())
    data['images'][1]['file_name'] = '../../../etc/passwd'
    out = tmp_path / f'escape_{kind}.json'
    out.write_text(json.dumps(data))
    return out


def test_datasets_refuse_names_outside_the_image_folder(shapes_root: Path,
                                                         tmp_path: Path) -> None:
    from mmengine.registry import init_default_scope

    import projects.wise  # noqa: F401
    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    for kind, type_ in (('labels', 'ImageLabelDataset'), ('instances', 'VOCInstanceDataset')):
        ann = _escaping_copy(shapes_root, kind, tmp_path)
        with pytest.raises(DataError, match=f"{ann}: file name '../../../etc/passwd' points"):
            DATASETS.build(dict(type=type_, data_root=str(shapes_root), ann_file=str(ann),
                                data_prefix=dict(img='JPEGImages/'), pipeline=[],
                                metainfo=dict(classes=SHAPES_CLASSES)))


def test_gen_proposals_refuses_names_outside_the_image_folder(shapes_root: Path,
                                                              tmp_path: Path) -> None:
    ann = _escaping_copy(shapes_root, 'labels', tmp_path)
    proc = run_tool('tools/gen_proposals.py', '--ann-file', ann, '--img-root',
                    shapes_root / 'JPEGImages', '--out-dir', tmp_path / 'props', check=False)
    assert proc.returncode == 1 and 'points outside' in proc.stderr and str(ann) in proc.stderr
    assert len(list((tmp_path / 'props').glob('[!.]*.segments'))) == 1  # the image before it, kept
