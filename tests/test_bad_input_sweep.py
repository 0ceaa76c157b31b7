"""Every tool against every bad input named in the issues, and odd images that must just
work: each run gives a correct result or one line naming the culprit, never a traceback.

The data is a small COCO-layout set of odd images (grayscale, CMYK, RGBA PNG, 1x1,
a non-ASCII name), each with one 'square' instance, and a VOC-layout copy for
voc_to_coco. Each bad input breaks a fresh copy of it.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_util

from projects.wise.proposals import PrecomputedProposals

from conftest import SHAPES_CLASSES, child_cfg, run_tool

SQUARE = SHAPES_CLASSES.index('square') + 1
H, W = 48, 64
# name -> PIL mode it is saved in; every one must load as HxWx3 uint8
ODD = {'gray.jpg': 'L', 'cmyk.jpg': 'CMYK', 'alpha.png': 'RGBA', 'one_pixel.jpg': 'RGB',
       'ünïcødé_画像.jpg': 'RGB'}
PROG = {'voc_to_coco': 'voc_to_coco.py', 'gen_proposals': 'gen_proposals.py',
        'train': 'train.py', 'test': 'test.py', 'vis_peaks': 'vis_peaks.py',
        'gen_pseudo': 'gen_pseudo.py'}


def _square(hw: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(hw, np.uint8)
    if hw == (1, 1):
        mask[:] = 1
    else:
        mask[12:36, 16:44] = 1
    return mask


def _draw(name: str) -> tuple[Image.Image, np.ndarray]:
    hw = (1, 1) if name.startswith('one_pixel') else (H, W)
    mask = _square(hw)
    rgb = np.full((*hw, 3), (40, 60, 200), np.uint8)
    rgb[mask > 0] = (230, 40, 30)
    img = Image.fromarray(rgb)
    if ODD[name] == 'RGBA':
        img = Image.fromarray(np.dstack([rgb, np.full(hw, 200, np.uint8)]), 'RGBA')
    else:
        img = img.convert(ODD[name])
    return img, mask


def _coco_root(root: Path) -> Path:
    """JPEGImages/ and annotations/odd_{labels,instances}.json of the odd images."""
    (root / 'JPEGImages').mkdir(parents=True)
    (root / 'annotations').mkdir()
    cats = [dict(id=i + 1, name=n) for i, n in enumerate(SHAPES_CLASSES)]
    images, anns = [], []
    for i, name in enumerate(ODD, 1):
        img, mask = _draw(name)
        img.save(root / 'JPEGImages' / name)
        h, w = mask.shape
        images.append(dict(id=i, file_name=name, height=h, width=w, labels=[SQUARE]))
        rle = mask_util.encode(np.asfortranarray(mask))
        x, y, bw, bh = mask_util.toBbox(rle).tolist()
        anns.append(dict(id=i, image_id=i, category_id=SQUARE, iscrowd=0,
                         area=float(mask.sum()), bbox=[x, y, bw, bh],
                         segmentation=dict(size=[h, w], counts=rle['counts'].decode())))
    (root / 'annotations/odd_labels.json').write_text(json.dumps(
        dict(images=images, annotations=[], categories=cats)))
    (root / 'annotations/odd_instances.json').write_text(json.dumps(
        dict(images=images, annotations=anns, categories=cats)))
    return root


def _voc_root(root: Path) -> Path:
    """The JPEG odd images in VOC layout (label PNGs, split file, class list)."""
    for d in ('JPEGImages', 'SegmentationClass', 'SegmentationObject', 'ImageSets/Segmentation'):
        (root / d).mkdir(parents=True)
    names = [n for n in ODD if n.endswith('.jpg')]
    for name in names:
        img, mask = _draw(name)
        stem = Path(name).stem
        img.save(root / 'JPEGImages' / f'{stem}.jpg')
        for sub, value in (('SegmentationClass', SQUARE), ('SegmentationObject', 1)):
            png = Image.fromarray((mask * value).astype(np.uint8), 'P')
            png.putpalette([0, 0, 0, 128, 0, 0] * 128)
            png.save(root / sub / f'{stem}.png')
    (root / 'ImageSets/Segmentation/train.txt').write_text(
        ''.join(f'{Path(n).stem}\n' for n in names))
    (root / 'classes.txt').write_text('\n'.join(SHAPES_CLASSES) + '\n')
    return root


@pytest.fixture(scope='module')
def odd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _coco_root(tmp_path_factory.mktemp('odd'))


@pytest.fixture(scope='module')
def odd_voc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _voc_root(tmp_path_factory.mktemp('odd_voc'))


def _odd_cfg(base: Path, root: Path, out: Path, loader: dict, evaluator, schedule: dict) -> Path:
    """``base`` on the images under ``root``: ``loader`` (its dataset reads ``root``) for
    every split, ``evaluator`` and ``schedule`` (train_cfg) in place of the base's."""
    loader = dict(loader, dataset=dict(loader['dataset'], data_root=f'{root}/'))
    return child_cfg(base, out, train_dataloader=loader, val_dataloader=loader,
                     test_dataloader=loader, val_evaluator=evaluator, test_evaluator=evaluator,
                     train_cfg=schedule)


def _prm_cfg(tiny_prm_cfg: Path, root: Path, out: Path) -> Path:
    a = f'{root}/annotations/'
    return _odd_cfg(tiny_prm_cfg, root, out,
                    dict(batch_size=2, dataset=dict(ann_file='annotations/odd_labels.json')),
                    [dict(type='MultiLabelMAP', ann_file=a + 'odd_labels.json'),
                     dict(type='PeakLocalisationMetric', ann_file=a + 'odd_instances.json')],
                    dict(max_epochs=1))


def _full_cfg(tiny_full_cfg: Path, root: Path, out: Path) -> Path:
    return _odd_cfg(tiny_full_cfg, root, out,
                    dict(dataset=dict(ann_file='annotations/odd_instances.json')),
                    dict(ann_file=f'{root}/annotations/odd_instances.json'), dict(max_iters=2))


def _lines(proc) -> list[str]:
    return proc.stderr.strip().splitlines()


def test_odd_images_go_through_every_tool(odd: Path, odd_voc: Path, tiny_prm_cfg: Path,
                                          tiny_full_cfg: Path, tmp_path: Path) -> None:
    run_tool('tools/dataset_converters/voc_to_coco.py', odd_voc, '--classes-file',
             odd_voc / 'classes.txt', '--splits', 'train', '--out-dir', tmp_path / 'conv')
    conv = json.loads((tmp_path / 'conv/train_instances.json').read_text())
    assert sorted((i['file_name'], i['height'], i['width'], i['labels']) for i in conv['images']) \
        == sorted((f'{Path(n).stem}.jpg', *((1, 1) if 'one' in n else (H, W)), [SQUARE])
                  for n in ODD if n.endswith('.jpg'))
    assert [a['category_id'] for a in conv['annotations']] == [SQUARE] * 4

    props = tmp_path / 'props'
    run_tool('tools/gen_proposals.py', '--ann-file', odd / 'annotations/odd_instances.json',
             '--img-root', odd / 'JPEGImages', '--out-dir', props, '--max-proposals', '50',
             '--recall')
    for name in ODD:
        hw = (1, 1) if 'one' in name else (H, W)
        found = PrecomputedProposals(root=str(props))(dict(img_path=name, height=hw[0],
                                                           width=hw[1]))
        assert len(found) and found.decode().shape[1:] == hw, name
    assert json.loads((props / 'recall.json').read_text())['recall']['100'] >= 0.8

    prm = _prm_cfg(tiny_prm_cfg, odd, tmp_path / 'prm.py')
    run_tool('tools/train.py', prm, '--work-dir', tmp_path / 'prm')
    ckpt = tmp_path / 'prm/epoch_1.pth'
    out = run_tool('tools/test.py', prm, ckpt, '--work-dir', tmp_path / 'prm')
    assert 'prm/mAP' in out.stdout
    run_tool('tools/vis_peaks.py', prm, ckpt, '--out-dir', tmp_path / 'vis', '--num', len(ODD))
    assert len(list((tmp_path / 'vis').glob('*.png'))) == len(ODD)

    pseudo = tmp_path / 'pseudo.json'
    run_tool('tools/gen_pseudo.py', prm, ckpt, '--out', pseudo, '--proposals',
             'type=precomputed', f'root={props}', '--peak-thr', '0')
    result = json.loads(pseudo.read_text())
    sizes = {i['id']: [i['height'], i['width']] for i in result['images']}
    assert sorted(i['file_name'] for i in result['images']) == sorted(ODD)
    assert all(a['segmentation']['size'] == sizes[a['image_id']] for a in result['annotations'])

    full = _full_cfg(tiny_full_cfg, odd, tmp_path / 'full.py')
    run_tool('tools/train.py', full, '--work-dir', tmp_path / 'full')
    out = run_tool('tools/test.py', full, tmp_path / 'full/iter_2.pth', '--work-dir',
                   tmp_path / 'full', '--refine', props)
    assert 'segm_mAP50' in out.stdout


# ------------------------------------------------------------------ bad inputs ---
def _bad_image(content: Callable[[bytes], bytes | None]) -> Callable[[Path], Path]:
    def breaks(root: Path) -> Path:
        jpg = root / 'JPEGImages' / 'cmyk.jpg'
        data = content(jpg.read_bytes())
        if data is None:
            jpg.unlink()
        else:
            jpg.write_bytes(data)
        return jpg
    return breaks


def _truncated_json(root: Path) -> Path:
    ann = root / 'annotations/odd_labels.json'
    ann.write_bytes(ann.read_bytes()[:200])
    return ann


def _unknown_class(root: Path) -> Path:
    ann = root / 'annotations/odd_labels.json'
    data = json.loads(ann.read_text())
    data['images'][1]['labels'] = [SQUARE, 42]
    ann.write_text(json.dumps(data))
    return ann


BAD = {
    'missing_image': _bad_image(lambda b: None),
    'empty_image': _bad_image(lambda b: b''),
    'corrupt_image': _bad_image(lambda b: b'\xff\xd8\xff\xe0 not a JPEG at all'),
    'truncated_json': _truncated_json,
    'unknown_class': _unknown_class,
}
# what each tool must make of each: an error naming the culprit, unless listed as fine
FINE = {('unknown_class', 'gen_proposals')}  # proposals do not look at labels


def _run(tool: str, root: Path, tmp_path: Path, tiny_prm_cfg: Path, tiny_prm_ckpt: Path):
    ann = root / 'annotations/odd_labels.json'
    prm = _prm_cfg(tiny_prm_cfg, root, tmp_path / 'prm.py')
    work = ['--work-dir', tmp_path / 'work']
    args = {
        'gen_proposals': ['tools/gen_proposals.py', '--ann-file', ann, '--img-root',
                          root / 'JPEGImages', '--out-dir', tmp_path / 'props',
                          '--max-proposals', '20'],
        'train': ['tools/train.py', prm, *work],
        'test': ['tools/test.py', prm, tiny_prm_ckpt, *work],
        'vis_peaks': ['tools/vis_peaks.py', prm, tiny_prm_ckpt, '--out-dir', tmp_path / 'vis',
                      '--num', str(len(ODD))],
        'gen_pseudo': ['tools/gen_pseudo.py', prm, tiny_prm_ckpt, '--out',
                       tmp_path / 'pseudo.json', '--proposals', 'type=builtin',
                       'max_proposals=20'],
    }[tool]
    return run_tool(*args, check=False)


@pytest.mark.parametrize('tool', ['gen_proposals', 'train', 'test', 'vis_peaks', 'gen_pseudo'])
@pytest.mark.parametrize('bad', sorted(BAD))
def test_bad_input(bad: str, tool: str, odd: Path, tiny_prm_cfg: Path, tiny_prm_ckpt: Path,
                   tmp_path: Path) -> None:
    root = tmp_path / 'data'
    shutil.copytree(odd, root)
    culprit = BAD[bad](root)
    proc = _run(tool, root, tmp_path, tiny_prm_cfg, tiny_prm_ckpt)
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    if (bad, tool) in FINE:
        assert proc.returncode == 0, proc.stderr[-3000:]
        return
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = _lines(proc)[-1]
    assert last.startswith(f'{PROG[tool]}: error: ') and str(culprit) in last, last


VOC_BAD = {
    'missing_image': lambda r: _unlink(r / 'JPEGImages/cmyk.jpg'),
    'empty_image': lambda r: _write(r / 'JPEGImages/cmyk.jpg', b''),
    'corrupt_image': lambda r: _write(r / 'JPEGImages/cmyk.jpg', b'\xff\xd8\xff\xe0 not a JPEG'),
    'truncated_image': lambda r: _write(r / 'JPEGImages/cmyk.jpg',
                                        (r / 'JPEGImages/cmyk.jpg').read_bytes()[:300]),
    'unknown_class': lambda r: _label_past_classes(r / 'SegmentationClass/gray.png'),
}


def _unlink(path: Path) -> Path:
    path.unlink()
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _label_past_classes(path: Path) -> Path:
    """The objects of a label PNG given a value past the classes: an unknown class."""
    png = Image.open(path)
    arr = np.asarray(png).copy()
    arr[arr > 0] = len(SHAPES_CLASSES) + 3
    out = Image.fromarray(arr, 'P')
    out.putpalette(png.getpalette())
    out.save(path)
    return path


@pytest.mark.parametrize('bad', sorted(VOC_BAD))
def test_voc_to_coco_bad_input(bad: str, odd_voc: Path, tmp_path: Path) -> None:
    root = tmp_path / 'voc'
    shutil.copytree(odd_voc, root)
    culprit = VOC_BAD[bad](root)
    proc = run_tool('tools/dataset_converters/voc_to_coco.py', root, '--classes-file',
                    root / 'classes.txt', '--splits', 'train', check=False)
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 1 and len(_lines(proc)) == 1, proc.stderr[-3000:]
    assert _lines(proc)[0].startswith('voc_to_coco.py: error: ') and str(culprit) in proc.stderr
    assert not (root / 'annotations').exists()  # nothing half-written


def test_empty_label_set_is_trained_around_and_counted(odd: Path, tiny_prm_cfg: Path,
                                                       tiny_prm_ckpt: Path,
                                                       tmp_path: Path) -> None:
    root = tmp_path / 'data'
    shutil.copytree(odd, root)
    ann = root / 'annotations/odd_labels.json'
    data = json.loads(ann.read_text())
    data['images'][0]['labels'] = []
    ann.write_text(json.dumps(data))
    for tool in ('train', 'test'):
        proc = _run(tool, root, tmp_path, tiny_prm_cfg, tiny_prm_ckpt)
        assert proc.returncode == 0 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    proc = _run('gen_pseudo', root, tmp_path, tiny_prm_cfg, tiny_prm_ckpt)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / 'pseudo.json.report.json').read_text())
    assert report['events']['images_without_labels'] == 1


@pytest.mark.parametrize('bad', ['missing', 'truncated'])
def test_bad_proposal_files_are_counted_and_named(bad: str, odd: Path, tiny_prm_cfg: Path,
                                                  tiny_prm_ckpt: Path, tmp_path: Path) -> None:
    props = tmp_path / 'props'
    run_tool('tools/gen_proposals.py', '--ann-file', odd / 'annotations/odd_labels.json',
             '--img-root', odd / 'JPEGImages', '--out-dir', props, '--max-proposals', '20')
    culprit = props / 'gray.segments'
    if bad == 'missing':
        culprit.unlink()
    else:
        culprit.write_bytes(culprit.read_bytes()[:50])
    prm = _prm_cfg(tiny_prm_cfg, odd, tmp_path / 'prm.py')
    out = tmp_path / 'pseudo.json'
    proc = run_tool('tools/gen_pseudo.py', prm, tiny_prm_ckpt, '--out', out, '--proposals',
                    'type=precomputed', f'root={props}', check=False)
    assert proc.returncode == 0 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    report = json.loads(Path(f'{out}.report.json').read_text())
    assert report['events']['images_without_proposals'] == 1
    assert any(str(culprit) in e for e in report['errors'])
    assert len(json.loads(out.read_text())['images']) == len(ODD)
