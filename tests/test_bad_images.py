"""Odd and broken images: loaded correctly, or refused with one line naming the file."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from projects.wise.errors import DataError

from conftest import run_tool


def _odd_images(d: Path) -> dict[str, tuple[int, int]]:
    rgb = (np.random.default_rng(0).random((24, 32, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).convert('L').save(d / 'gray.jpg')
    Image.fromarray(rgb).convert('CMYK').save(d / 'cmyk.jpg')
    Image.fromarray(np.dstack([rgb, np.full((24, 32), 7, np.uint8)])).save(d / 'alpha.png')
    Image.fromarray(rgb[:1, :1]).save(d / 'one_pixel.jpg')
    Image.fromarray(rgb).save(d / 'ünïcødé 画像.jpg')
    return {'gray.jpg': (24, 32), 'cmyk.jpg': (24, 32), 'alpha.png': (24, 32),
            'one_pixel.jpg': (1, 1), 'ünïcødé 画像.jpg': (24, 32)}


def test_checked_loader_reads_odd_images_and_names_broken_ones(tmp_path: Path) -> None:
    from projects.wise.datasets import LoadImageChecked
    load = LoadImageChecked()
    for name, hw in _odd_images(tmp_path).items():
        img = load(dict(img_path=str(tmp_path / name)))['img']
        assert img.shape == (*hw, 3) and img.dtype == np.uint8, name
    (tmp_path / 'empty.jpg').write_bytes(b'')
    (tmp_path / 'garbage.jpg').write_bytes(b'\xff\xd8\xff' + b'\x00' * 50)
    for name in ('empty.jpg', 'garbage.jpg', 'missing.jpg'):
        with pytest.raises(DataError, match=f'{tmp_path / name}: cannot load image'):
            load(dict(img_path=str(tmp_path / name)))


@pytest.mark.parametrize('workers', [0, 1])
def test_training_on_an_empty_image_stops_with_one_line(shapes_root: Path, tiny_full_cfg: Path,
                                                        tmp_path: Path, workers: int) -> None:
    root = tmp_path / 'shapes'
    shutil.copytree(shapes_root, root)
    for jpg in (root / 'JPEGImages').glob('*.jpg'):
        jpg.write_bytes(b'')  # every image broken: the first batch hits one
    proc = run_tool('tools/train.py', tiny_full_cfg, '--work-dir', tmp_path / 'work',
                    '--cfg-options', f'train_dataloader.dataset.data_root={root}/',
                    f'train_dataloader.num_workers={workers}', check=False)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f'train.py: error: {root}/JPEGImages/') and 'cannot load image' in last
