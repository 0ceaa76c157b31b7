"""SegmentProposals, the built-in proposals kept as superpixel sets: every answer equals
pycocotools' on the same masks as RLEs, the .segments files round-trip and refuse to
be misread, and refinement and gen_proposals use them (JSON for other sources)."""
from __future__ import annotations

import gc
import json
import weakref
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData
from pycocotools import mask as mask_util

from projects.wise.engine import refine
from projects.wise.errors import ProposalError
from projects.wise.proposals import (BuiltinProposals, PrecomputedProposals, Proposals,
                                     SegmentProposals)
from projects.wise.utils.io import read_image

from conftest import run_tool

TOOL = 'tools/gen_proposals.py'


@pytest.fixture(scope='module', params=[256, 40], ids=['full-size', 'upsampled'])
def pair(request: pytest.FixtureRequest, shapes_root: Path) -> tuple[SegmentProposals,
                                                                      Proposals]:
    """Built-in proposals of a demo image (segmented at full size, or at 40 px and
    upsampled to 96 px) and the same masks as plain RLE Proposals."""
    img = read_image(sorted((shapes_root / 'JPEGImages').glob('*.jpg'))[0])
    seg = BuiltinProposals(max_side=request.param).from_array(img, 'x.jpg')
    return seg, Proposals.from_masks(seg.decode(), seg.scores, 'x.jpg')


def _shifted(masks: np.ndarray) -> np.ndarray:
    """Predictions near proposals: each shifted, plus an empty and a full mask."""
    moved = np.roll(masks, (2, -3), axis=(1, 2))
    return np.concatenate([moved, np.zeros_like(masks[:1]), np.ones_like(masks[:1])])


def test_counting_answers_what_pycocotools_answers(pair: tuple) -> None:
    """Bugs: a leaf counted under the wrong over-segmentation (offsets), an atom counted
    twice, areas or unions off by the shared pixels, IoU not the same double."""
    seg, rle = pair
    assert seg.hw == rle.hw == (96, 96) and len(seg) > 20
    masks = _shifted(seg.decode()[::25])
    rles = mask_util.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    want = rle.iou(rles)
    assert (want > 0.3).any() and (want == 0).any()
    np.testing.assert_array_equal(seg.mask_iou(masks), want)  # bit for bit
    np.testing.assert_array_equal(seg.iou(rles), want)
    np.testing.assert_array_equal(seg.areas(), rle.decode().sum((1, 2)))


@pytest.mark.parametrize('radius', [0, 1, 2.5])
def test_covering_is_that_of_the_masks(pair: tuple, radius: float) -> None:
    """Bugs: the atom under a point looked up as (x, y) instead of (row, column), the disc
    cut at the image border or missing its rim."""
    seg, rle = pair
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.uniform(-3, 99, (40, 2)), [[0, 0], [95, 95], [95, 0]]])
    got = seg.covering(points, radius)
    np.testing.assert_array_equal(got, rle.covering(points, radius))
    assert got.any() and not got.all()


def test_indexing_top_and_lazy_rles(pair: tuple) -> None:
    """Bugs: a subset that keeps the wrong rows' leaves; RLEs that decode to another mask."""
    seg, rle = pair
    pick = [5, 0, len(seg) - 1, 5]
    np.testing.assert_array_equal(seg[pick].decode(), rle[pick].decode())
    np.testing.assert_array_equal(seg[pick].scores, rle.scores[pick])
    np.testing.assert_array_equal(seg.top(7).decode(), rle.top(7).decode())
    assert seg[np.zeros(len(seg), bool)].decode().shape == (0, 96, 96)
    # made in-process: the RLEs the generator merged; a subset encodes its own
    sub = seg[[3, 1]]
    assert mask_util.area(sub.rles[:]).tolist() == mask_util.area([seg.rles[3], seg.rles[1]]
                                                                  ).tolist()
    np.testing.assert_array_equal(mask_util.decode(list(sub.rles)),
                                  mask_util.decode([rle.rles[3], rle.rles[1]]))
    assert len(seg.rles) == len(seg) and seg.rles[-1] is seg.rles[len(seg) - 1]


def test_file_round_trip_is_exact_and_small(pair: tuple, tmp_path: Path) -> None:
    seg, rle = pair
    path = tmp_path / f'x{seg.FILE_SUFFIX}'
    seg.save(path)
    loaded = SegmentProposals.load(path, seg.hw)
    np.testing.assert_array_equal(loaded.decode(), seg.decode())
    np.testing.assert_array_equal(loaded.scores, seg.scores)  # float64, same order
    np.testing.assert_array_equal(loaded.boxes(), rle.boxes())  # stored atom boxes
    np.testing.assert_array_equal(loaded.areas(), seg.areas())  # stored atom areas
    assert loaded.source == str(path)
    rle.save(tmp_path / 'x.json')
    assert path.stat().st_size * 3 < (tmp_path / 'x.json').stat().st_size


def _rewrite(path: Path, **changes: np.ndarray) -> Path:
    """A saved file with some arrays replaced (kept in its format)."""
    data = path.read_bytes()
    end = data.index(b'\n', data.index(b'\n') + 1)
    header = json.loads(data[data.index(b'\n') + 1:end])
    body = zlib.decompress(data[end + 1:])
    arrays, at = {}, 0
    for name, (dtype, shape) in header.items():
        count = int(np.prod(shape))
        arrays[name] = np.frombuffer(body, dtype, count, at).reshape(shape)
        at += count * np.dtype(dtype).itemsize
    arrays.update({k: v.astype(arrays[k].dtype) for k, v in changes.items()})
    header = {k: [v.dtype.str, list(v.shape)] for k, v in arrays.items()}
    out = path.with_name(f'{"-".join(changes)}{path.suffix}')
    out.write_bytes(data[:data.index(b'\n') + 1] + json.dumps(header).encode() + b'\n'
                    + zlib.compress(b''.join(v.tobytes() for v in arrays.values())))
    return out


def test_bad_files_name_the_file(pair: tuple, tmp_path: Path) -> None:
    """Bugs: a truncated or foreign file read as proposals, or one whose numbers would
    index out of range or give wrong counts silently (leaves out of range, a proposal
    mixing over-segmentations, atom areas that do not fill the image)."""
    seg, _ = pair
    good = tmp_path / 'good.segments'
    seg.save(good)
    data = good.read_bytes()
    cut, npz = tmp_path / 'cut.segments', tmp_path / 'other.segments'
    cut.write_bytes(data[:len(data) // 2])
    with open(npz, 'wb') as f:
        np.savez(f, a=np.zeros(3))
    same = _rewrite(good)
    np.testing.assert_array_equal(SegmentProposals.load(same, seg.hw).decode(), seg.decode())
    loaded = SegmentProposals.load(good, seg.hw)
    indices, indptr, leaf_of = loaded.indices, loaded.indptr, loaded.leaf_of
    # a proposal of two leaves or more, not of the last over-segmentation, takes a leaf of
    # the last one as its last leaf
    rows = np.flatnonzero((np.diff(indptr) >= 2) & (indices[indptr[:-1]] < leaf_of[:, -1].min()))
    mixed = indices.copy()
    mixed[indptr[rows[0] + 1] - 1] = leaf_of[:, -1].max()
    area = loaded._atom_area().copy()
    area[0] += 1
    cases = {
        cut: 'truncated or corrupt', npz: 'truncated or corrupt',
        _rewrite(good, indices=indices + 10 ** 4): 'leaf out of range',
        _rewrite(good, indices=mixed): 'mixes over-segmentations',
        _rewrite(good, indptr=indptr[:-1]): 'proposal rows',
        _rewrite(good, atom_area=area): 'atom areas or boxes',
        _rewrite(good, atoms=loaded.atoms + len(leaf_of)): 'an atom the table lacks',
    }
    for path, why in cases.items():
        with pytest.raises(ProposalError, match=why) as e:
            SegmentProposals.load(path, seg.hw)
        assert str(e.value).startswith(f'{path}: '), e.value
    with pytest.raises(ProposalError, match=r'good\.segments: proposal mask size \[96, 96\] '
                                            r'!= image size \[96, 97\]'):
        SegmentProposals.load(good, (96, 97))


def test_refine_with_segments_equals_refine_with_rles(pair: tuple) -> None:
    """Bug: boxes or masks written back from another proposal than the RLE path picks."""
    seg, rle = pair
    masks = torch.from_numpy(_shifted(seg.decode()[::40]))
    preds = InstanceData(masks=masks, bboxes=torch.zeros(len(masks), 4),
                         scores=torch.rand(len(masks)), labels=torch.zeros(len(masks)).long())
    a, ra = refine(preds, seg, return_refined=True)
    b, rb = refine(preds, rle, return_refined=True)
    assert ra.tolist() == rb.tolist() and ra.any() and not ra.all()  # the empty one stays
    assert torch.equal(a.masks, b.masks) and torch.equal(a.bboxes, b.bboxes)


def test_gen_proposals_writes_segments_for_builtin_and_json_for_rle_sources(
        shapes_root: Path, tmp_path: Path) -> None:
    """Built-in proposals go to .segments; COCO-results JSON (what SharpMask / deepmask write)
    is still read, and a source of such RLEs is still written as JSON."""
    ann = shapes_root / 'annotations/val_labels.json'
    images = json.loads(ann.read_text())['images']
    run_tool(TOOL, '--ann-file', ann, '--out-dir', tmp_path / 'built', '--max-proposals', '50')
    built = PrecomputedProposals(root=str(tmp_path / 'built'))
    records = [dict(img_path=im['file_name'], height=im['height'], width=im['width'])
               for im in images]
    for image in records:
        seg = built(image)
        assert type(seg) is SegmentProposals and len(seg) == 50
        Proposals.from_masks(seg.decode(), seg.scores).save(
            tmp_path / 'imported' / f'{Path(image["img_path"]).stem}.json')
    run_tool(TOOL, '--ann-file', ann, '--out-dir', tmp_path / 'json', '--source',
             'precomputed', '--source-opts', f'root={tmp_path / "imported"}')
    for image in records:
        stem = Path(image['img_path']).stem
        entries = json.loads((tmp_path / 'json' / f'{stem}.json').read_text())
        assert len(entries) == 50 and set(entries[0]) == {'segmentation', 'score'}
        again = PrecomputedProposals(root=str(tmp_path / 'json'))(image)
        assert type(again) is Proposals
        np.testing.assert_array_equal(again.decode(), built(image).decode())
        np.testing.assert_array_equal(again.scores, built(image).scores)


def test_done_proposals_are_freed_without_the_cycle_collector(pair: tuple) -> None:
    """Bug: proposals holding their lazy RLEs, which held them, made a reference cycle:
    each image's arrays stayed until Python's cycle collector ran, so memory grew with
    the images between its runs."""
    seg, _ = pair
    gc.disable()
    try:
        sub = seg[[0, 1]]
        assert sub.rles[1]['size'] == list(seg.hw)
        gone = weakref.ref(sub)
        del sub
        assert gone() is None
    finally:
        gc.enable()


def test_lazy_rles_are_pycocotools_encode_at_the_image_edges() -> None:
    """The RLE of a proposal is built from its box's columns (compiled): bugs a run count
    off by the rows above / below the box, a lost first 0-run when the mask holds pixel
    (0, 0), a trailing empty run when it holds the last pixel, a box of full columns."""
    atoms = np.array([[0, 0, 1, 1, 1],
                      [0, 0, 1, 1, 1],
                      [2, 2, 3, 3, 1],
                      [2, 2, 3, 3, 3]])
    leaf_of = np.array([[0, 4], [1, 4], [2, 5], [3, 5]])  # quadrants; halves
    sets = [[0], [3], [1, 2], [0, 1, 2, 3], [1], [4], [5]]
    seg = SegmentProposals(atoms, leaf_of, np.cumsum([0] + [len(s) for s in sets]),
                           np.concatenate(sets), np.linspace(1, 0.1, len(sets)))
    masks = seg.decode()
    assert masks[0, 0, 0] and masks[1, -1, -1] and masks[3].all() and not masks[6, 0].any()
    want = mask_util.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    assert [r['counts'] for r in seg.rles] == [r['counts'] for r in want]
