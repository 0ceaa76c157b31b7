"""Proposals: point cover, IoU, top-k and RLE round trips on hand-made masks."""
from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_util

from projects.wise.errors import ProposalError
from projects.wise.proposals import Proposals

H, W = 6, 8


def _box(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """An H x W mask with rows y0..y1 and columns x0..x1 (inclusive) set."""
    m = np.zeros((H, W), bool)
    m[y0:y1 + 1, x0:x1 + 1] = True
    return m


@pytest.fixture
def props() -> Proposals:
    masks = np.stack([
        _box(1, 3, 2, 5),  # a 3 x 4 rectangle
        _box(0, 0, 0, 0),  # the first pixel (column-major RLE starts with 0 zeros)
        _box(H - 1, H - 1, W - 1, W - 1),  # the last pixel (RLE ends with 0 zeros)
    ])
    return Proposals.from_masks(masks, [0.5, 0.2, 0.9], source='crafted')


def test_covering_inside_outside_border_and_rounding(props: Proposals) -> None:
    points = [
        (2, 1),  # top-left corner of the rectangle
        (5, 3),  # bottom-right corner
        (6, 3),  # just right of it
        (1, 2),  # just left of it
        (1.6, 1.4),  # rounds to (2, 1): inside
        (1.4, 1.0),  # rounds to (1, 1): outside
        (5.49, 3.49),  # rounds to (5, 3): inside
        (5.5, 3.0),  # rounds half up to (6, 3): outside
        (0, 0),  # first pixel
        (W - 1, H - 1),  # last pixel
        (-3, -2),  # outside the image: clipped to (0, 0)
        (W + 4, H + 9),  # clipped to the last pixel
    ]
    got = props.covering(np.array(points, float))
    want = np.array([
        [1, 0, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0], [1, 0, 0], [0, 0, 0],
        [1, 0, 0], [0, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1],
    ], bool)
    assert got.shape == (len(points), 3)
    np.testing.assert_array_equal(got, want)


def test_covering_matches_decoded_masks_everywhere(props: Proposals) -> None:
    ys, xs = np.mgrid[:H, :W]
    points = np.stack([xs.ravel(), ys.ravel()], 1)
    decoded = props.decode()
    np.testing.assert_array_equal(props.covering(points),
                                  decoded[:, ys.ravel(), xs.ravel()].T)


@pytest.mark.parametrize('radius', [1, 2])
def test_covering_with_a_radius_is_any_pixel_of_the_disc(props: Proposals, radius: int) -> None:
    """Bug: the disc misses its rim or crosses the image border wrongly, so a peak one
    cell off a thin object finds no candidate (or a far one)."""
    ys, xs = np.mgrid[:H, :W]
    points = np.stack([xs.ravel(), ys.ravel()], 1)
    decoded = props.decode()
    want = np.array([[(decoded[n] & ((xs - x) ** 2 + (ys - y) ** 2 <= radius ** 2)).any()
                      for n in range(len(props))] for x, y in points])
    got = props.covering(points, radius)
    np.testing.assert_array_equal(got, want)
    assert got.sum() > props.covering(points).sum()  # the radius widened something
    assert not got[points.tolist().index([0, 5]), 2]  # the far corner pixel stays out


def test_iou_against_hand_computed_values(props: Proposals) -> None:
    queries = [_box(1, 3, 2, 5), _box(1, 3, 2, 3), _box(0, 1, 0, 2), _box(4, 5, 0, 1)]
    rles = mask_util.encode(np.asfortranarray(np.stack(queries, 2).astype(np.uint8)))
    want = np.array([
        [1, 0, 0],
        [6 / 12, 0, 0],  # half the rectangle
        [1 / 17, 1 / 6, 0],  # shares pixel (x2, y1) with the rectangle: 6 + 12 - 1 = 17
        [0, 0, 0],
    ])
    np.testing.assert_allclose(props.iou(list(rles)), want)


def test_top_orders_by_score_stably() -> None:
    masks = np.zeros((4, H, W), bool)
    for i in range(4):
        masks[i, i, i] = True
    p = Proposals.from_masks(masks, [0.2, 0.9, 0.5, 0.9])
    top2 = p.top(2)
    np.testing.assert_array_equal(top2.scores, [0.9, 0.9])
    np.testing.assert_array_equal(top2.decode(), masks[[1, 3]])
    np.testing.assert_array_equal(p.top(10).scores, [0.9, 0.9, 0.5, 0.2])
    assert len(p.top(0)) == 0


def test_from_masks_decode_round_trip_and_indexing(props: Proposals) -> None:
    rng = np.random.default_rng(0)
    masks = rng.random((5, 7, 9)) > 0.5
    p = Proposals.from_masks(masks, np.arange(5) / 10)
    assert p.hw == (7, 9) and len(p) == 5
    np.testing.assert_array_equal(p.decode(), masks)
    np.testing.assert_array_equal(p[3].decode(), masks[3:4])
    np.testing.assert_array_equal(p[[4, 0]].decode(), masks[[4, 0]])
    np.testing.assert_array_equal(p[np.array([True, False, True, False, False])].scores,
                                  [0.0, 0.2])


def test_from_coco_compressed_and_uncompressed() -> None:
    mask = _box(1, 3, 2, 5)
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    as_str = dict(size=rle['size'], counts=rle['counts'].decode())
    # uncompressed: column-major run lengths starting with zeros
    flat = mask.ravel(order='F').astype(int)
    change = np.flatnonzero(np.diff(flat)) + 1
    counts = np.diff(np.concatenate([[0], change, [flat.size]])).tolist()
    uncompressed = dict(size=[H, W], counts=counts)
    p = Proposals.from_coco([rle, as_str, uncompressed], [1, 2, 3], (H, W), 'x.json')
    np.testing.assert_array_equal(p.decode(), np.stack([mask] * 3))


def test_from_coco_rejects_bad_segmentations() -> None:
    rle = mask_util.encode(np.asfortranarray(_box(1, 3, 2, 5).astype(np.uint8)))
    with pytest.raises(ProposalError, match=r'x\.json: proposal mask size \[6, 8\] != '
                                            r'image size \[8, 6\]'):
        Proposals.from_coco([rle], [1], (W, H), 'x.json')
    with pytest.raises(ProposalError, match=r'x\.json: .*COCO RLE dict, got list'):
        Proposals.from_coco([[0, 0, 4, 0, 4, 4]], [1], (H, W), 'x.json')
    with pytest.raises(ProposalError, match='1 masks but 2 scores'):
        Proposals([rle], [1, 2], (H, W))


def test_empty_proposals() -> None:
    p = Proposals.from_masks(np.zeros((0, H, W), bool), [])
    assert len(p) == 0 and p.hw == (H, W)
    assert p.decode().shape == (0, H, W)
    assert p.covering([(1, 1), (2, 2)]).shape == (2, 0)
    assert p.iou(p.rles).shape == (0, 0)
    assert len(p.top(5)) == 0
    q = Proposals.from_coco([], [], (H, W))
    assert len(q) == 0 and q.scores.shape == (0,)
    one = Proposals.from_masks(_box(0, 1, 0, 1)[None], [1.0])
    assert one.covering(np.zeros((0, 2))).shape == (0, 1)
    assert one.iou([]).shape == (0, 1)
