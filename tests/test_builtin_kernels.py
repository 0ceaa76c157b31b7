"""The compiled kernels of the built-in proposals give, bit for bit, what the numpy and
scikit-image code they replaced gave: proposals stored before them (the demo's, a
user's) are the proposals the code makes now. Each reference below is that code."""
from __future__ import annotations

import heapq
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data
from skimage.segmentation import felzenszwalb

from projects.wise.proposals import builtin
from projects.wise.proposals.felzenszwalb import PixelGraph
from projects.wise.proposals.grouping import pairwise_sum
from projects.wise.utils.io import read_image


@pytest.fixture(scope='module')
def images(shapes_root: Path) -> list[np.ndarray]:
    """A built-in image, a photograph at working size, a flat one and a one-row strip."""
    shapes = read_image(next((shapes_root / 'JPEGImages').glob('*.jpg')))
    photo = cv2.resize(data.chelsea(), (128, 96), interpolation=cv2.INTER_AREA)
    strip = np.random.default_rng(0).integers(0, 255, (1, 9, 3), dtype=np.uint8)
    return [shapes, photo, np.full((7, 5, 3), 90, np.uint8), strip]


def test_pixel_graph_segments_as_skimage_felzenszwalb(images: list[np.ndarray]) -> None:
    # would catch: another edge order or tie order, float64 instead of float32
    # thresholds, a skipped min-size pass, labels not numbered by first pixel
    for img in images:
        for space in ('rgb', 'hsv', 'lab'):
            x = builtin.to_space(img, space)
            graph = PixelGraph(x, sigma=0.8)
            for scale in (1, 40, 300):
                for min_size in (1, 12):
                    want = felzenszwalb(x, scale=scale, sigma=0.8, min_size=min_size)
                    np.testing.assert_array_equal(graph.segment(scale, min_size), want)
    # thresholds that equal an edge's cost: whether it merges is float32 rounding
    for step in range(1, 40):
        pair = np.array([[[0] * 3, [step] * 3]], np.uint8)
        graph = PixelGraph(pair, sigma=0)
        cost = float(graph.costs[0]) * 255
        for scale in (cost, np.nextafter(cost, 0), np.nextafter(cost, 1e9)):
            want = felzenszwalb(pair, scale=scale, sigma=0, min_size=1)
            np.testing.assert_array_equal(graph.segment(scale, 1), want)
    with pytest.raises(TypeError, match='uint8'):
        PixelGraph(images[0].astype(np.float32))


def test_pairwise_sum_is_numpys() -> None:
    # would catch: a plain running sum or other blocking (sums 1 ulp apart reorder merges)
    rng = np.random.default_rng(0)
    for n in [*range(0, 300), 315, 1000, 4097]:
        a = (rng.random(n + 5) * rng.random()).astype(np.float32)
        assert pairwise_sum(a, 5, n) == a[5:].sum(), n


def _reference_codes(image: np.ndarray) -> np.ndarray:
    smooth = cv2.GaussianBlur(image.astype(np.float32), (0, 0), 1.0)
    colour = (image.reshape(-1, 3).astype(np.int64) * builtin.COLOUR_BINS) >> 8
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=1).reshape(-1, 3, 1)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=1).reshape(-1, 3, 1)
    theta = np.arange(builtin.ORIENTATIONS) * 2 * np.pi / builtin.ORIENTATIONS
    resp = np.maximum(gx * np.cos(theta) + gy * np.sin(theta), 0).reshape(len(colour), -1)
    texture = np.minimum((resp * (builtin.TEXTURE_BINS / max(float(resp.max()), 1e-6)))
                         .astype(np.int64), builtin.TEXTURE_BINS - 1)
    return np.concatenate([colour + np.arange(3) * builtin.COLOUR_BINS,
                           texture + 3 * builtin.COLOUR_BINS
                           + np.arange(texture.shape[1]) * builtin.TEXTURE_BINS], 1)


def test_feature_codes_are_the_numpy_ones(images: list[np.ndarray]) -> None:
    # would catch: float32 responses, a fused multiply-add, a bin off at the image maximum
    for img in images:
        for space in ('hsv', 'lab'):
            x = builtin.to_space(img, space)
            np.testing.assert_array_equal(builtin.Pixels.of(x).codes, _reference_codes(x))


def _libm_exp(x: np.ndarray) -> np.ndarray:
    """exp as the C library (and numba) computes it: numpy's own SIMD exp differs in the
    last bit for a quarter of the values on AVX-512 CPUs, so a reference using it
    matches the kernel on some machines only."""
    return np.array([math.exp(v) for v in np.ravel(x)]).reshape(np.shape(x))


def _reference_group(sp, weights) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Selective search's grouping as numpy did it, merge by merge."""
    n = len(sp.size)
    total, area = 2 * n - 1, float(sp.labels.size)
    hist = np.zeros((total, sp.hist.shape[1]), np.float32)
    hist[:n] = sp.hist
    size, bbox = np.zeros(total), np.zeros((total, 4))
    size[:n], bbox[:n] = sp.size, sp.bbox
    children, formed, absorbed = np.full((total, 2), -1), np.zeros(total), np.zeros(total)
    wc, wt, ws, wf, we = (w / sum(weights) for w in weights)
    edge_scale = max(float(np.median(sp.border_diff / sp.border_len)), 1e-6)
    dim = builtin.COLOUR_DIM

    def sims(a, b, lens, diffs):
        inter = np.minimum(hist[a], hist[b])
        joint = size[a] + size[b]
        box = np.maximum(bbox[a, 2:], bbox[b, 2:]) - np.minimum(bbox[a, :2], bbox[b, :2])
        return (wc * inter[:, :dim].sum(1) + wt * inter[:, dim:].sum(1)
                + ws * (1 - joint / area) + wf * (1 - (box[:, 0] * box[:, 1] - joint) / area)
                + we * _libm_exp(-diffs / lens / edge_scale))

    adj = [{} for _ in range(total)]
    for (a, b), ln, df in zip(sp.pairs.tolist(), sp.border_len.tolist(),
                              sp.border_diff.tolist()):
        adj[a][b] = adj[b][a] = (ln, df)
    s0 = sims(sp.pairs[:, 0], sp.pairs[:, 1], sp.border_len, sp.border_diff)
    heap = list(zip((-s0).tolist(), sp.pairs[:, 0].tolist(), sp.pairs[:, 1].tolist()))
    heapq.heapify(heap)
    alive = np.arange(total) < n
    k = n
    while heap:
        neg, i, j = heapq.heappop(heap)
        if not (alive[i] and alive[j]):
            continue
        alive[i] = alive[j] = False
        alive[k] = True
        children[k] = i, j
        formed[k] = absorbed[i] = absorbed[j] = -neg
        size[k] = size[i] + size[j]
        hist[k] = (size[i] * hist[i] + size[j] * hist[j]) / size[k]
        bbox[k, :2] = np.minimum(bbox[i, :2], bbox[j, :2])
        bbox[k, 2:] = np.maximum(bbox[i, 2:], bbox[j, 2:])
        nbrs = adj[i]
        for m, (ln, df) in adj[j].items():
            ln0, df0 = nbrs.get(m, (0.0, 0.0))
            nbrs[m] = (ln0 + ln, df0 + df)
        nbrs.pop(i, None)
        nbrs.pop(j, None)
        for m, v in nbrs.items():
            adj[m].pop(i, None)
            adj[m].pop(j, None)
            adj[m][k] = v
        adj[k] = nbrs
        nb = np.fromiter(nbrs, np.int64, len(nbrs))
        lens, diffs = np.array(list(nbrs.values())).reshape(-1, 2).T
        for m, s in zip(nb.tolist(), sims(k, nb, lens, diffs).tolist()):
            heapq.heappush(heap, (-s, k, m))
        k += 1
    absorbed[k - 1] = formed[k - 1]
    return children[:k], formed[:k], absorbed[:k]


def test_grouping_merges_as_the_numpy_loop(images: list[np.ndarray]) -> None:
    # would catch: a similarity 1 ulp off (float64 histogram terms, another summation
    # order), another tie order on the heap, border sums lost in a merge
    for img in images[:2]:
        area = img.shape[0] * img.shape[1]
        px = builtin.Pixels.of(builtin.to_space(img, 'hsv'))
        labels = PixelGraph(px.image).segment(50 * area / 128 ** 2, round(6e-4 * area) + 2)
        sp = builtin.superpixels(px, labels, builtin.edge_bins(img))
        assert len(sp.size) > 20
        for weights in ((1, 1, 1, 1, 1), (0, 1, 1, 1, 1), (3, 0, 1, 0, 2)):
            hier = builtin.group(sp, weights)
            for got, want in zip((hier.children, hier.formed, hier.absorbed),
                                 _reference_group(sp, weights)):
                np.testing.assert_array_equal(got, want)
