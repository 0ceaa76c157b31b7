"""Felzenszwalb-Huttenlocher graph segmentation, label for label scikit-image's, with
the sorted pixel graph shared by every scale.

``skimage.segmentation.felzenszwalb`` smooths the image, weighs its 8-connected pixel
graph and argsorts the edges on every call, in numpy around a Cython union-find; the
built-in proposals segment each image at several scales, and that preparation was
most of their time. ``PixelGraph`` prepares once; ``segment`` is the union-find pass
(scikit-image's, float32 thresholds and all), compiled by numba.
"""
from __future__ import annotations

import numba
import numpy as np
from skimage.filters import gaussian
from skimage.util import img_as_float64


@numba.njit(cache=True)
def _edge_costs(img: np.ndarray) -> np.ndarray:
    """Colour distance of every 8-connected pixel pair, in scikit-image's edge order:
    right, down, down-right, up-right neighbours, each block row-major."""
    h, w, c = img.shape
    out = np.empty(h * (w - 1) + (h - 1) * w + 2 * (h - 1) * (w - 1))
    k = 0
    for dy0, dx0, dy1, dx1, rows, cols in ((0, 0, 0, 1, h, w - 1), (0, 0, 1, 0, h - 1, w),
                                           (0, 0, 1, 1, h - 1, w - 1),
                                           (0, 1, 1, 0, h - 1, w - 1)):
        for y in range(rows):
            for x in range(cols):
                s = 0.0
                for ch in range(c):
                    d = img[y + dy1, x + dx1, ch] - img[y + dy0, x + dx0, ch]
                    s += d * d
                out[k] = np.sqrt(s)
                k += 1
    return out


@numba.njit(cache=True)
def _edge_ends(order: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """The two pixels (flat indices) of each edge in ``order``."""
    n_right, n_down, n_diag = h * (w - 1), (h - 1) * w, (h - 1) * (w - 1)
    a = np.empty(len(order), np.int64)
    b = np.empty(len(order), np.int64)
    for i, e in enumerate(order):
        if e < n_right:
            y, x = divmod(e, w - 1)
            a[i], b[i] = y * w + x + 1, y * w + x
            continue
        e -= n_right
        if e < n_down:
            a[i], b[i] = e + w, e
            continue
        e -= n_down
        if e < n_diag:
            y, x = divmod(e, w - 1)
            a[i], b[i] = (y + 1) * w + x + 1, y * w + x
            continue
        y, x = divmod(e - n_diag, w - 1)
        a[i], b[i] = y * w + x + 1, (y + 1) * w + x
    return a, b


@numba.njit(cache=True)
def _root(forest: np.ndarray, n: int) -> int:
    """The root (smallest index) of n's tree, halving the path on the way."""
    while forest[n] < n:
        forest[n] = forest[forest[n]]
        n = forest[n]
    return n


@numba.njit(cache=True)
def _set_root(forest: np.ndarray, n: int, root: int) -> None:
    while forest[n] < n:
        j = forest[n]
        forest[n] = root
        n = j
    forest[n] = root


@numba.njit(cache=True)
def _join(forest: np.ndarray, n: int, m: int) -> int:
    """Union of the trees of roots n and m under the smaller index; the new root."""
    root = min(n, m)
    _set_root(forest, n, root)
    _set_root(forest, m, root)
    return root


@numba.njit(cache=True)
def _segment(a: np.ndarray, b: np.ndarray, costs: np.ndarray, npix: int, scale: float,
             min_size: int) -> np.ndarray:
    """Labels 0..n-1 (numbered by first pixel) of the union-find over sorted edges."""
    forest = np.arange(npix)
    size = np.ones(npix, np.int64)
    inner = np.zeros(npix)
    for e in range(len(costs)):
        s0, s1 = _root(forest, a[e]), _root(forest, b[e])
        if s0 == s1:
            continue
        # scikit-image keeps the thresholds in float32
        if costs[e] < min(np.float32(inner[s0] + scale / size[s0]),
                          np.float32(inner[s1] + scale / size[s1])):
            s = _join(forest, s0, s1)
            size[s] = size[s0] + size[s1]
            inner[s] = costs[e]
    for e in range(len(costs)):  # merge what is still below min_size
        s0, s1 = _root(forest, a[e]), _root(forest, b[e])
        if s0 != s1 and (size[s0] < min_size or size[s1] < min_size):
            s = _join(forest, s0, s1)
            size[s] = size[s0] + size[s1]
    labels = np.empty(npix, np.int64)
    n = 0
    for i in range(npix):  # a root is its segment's first pixel
        r = _root(forest, i)
        if r == i:
            labels[i] = n
            n += 1
        else:
            labels[i] = labels[r]
    return labels


class PixelGraph:
    """The smoothed, weighted and sorted 8-connected graph of an H x W x C image.

    Args:
        image: uint8 H x W x C (or H x W).
        sigma: Gaussian smoothing before the colour distances, as scikit-image's.
    """

    def __init__(self, image: np.ndarray, sigma: float = 0.8) -> None:
        img = np.atleast_3d(image)
        if img.dtype != np.uint8:
            raise TypeError(f'PixelGraph takes a uint8 image, not {img.dtype}')
        img = gaussian(img_as_float64(img), sigma=[sigma, sigma, 0], mode='reflect',
                       channel_axis=-1)
        self.shape = img.shape[:2]
        costs = _edge_costs(np.ascontiguousarray(img))
        order = np.argsort(costs)  # scikit-image's sort, so ties fall as there
        self.costs = costs[order]
        self.a, self.b = _edge_ends(order, *self.shape)

    def segment(self, scale: float, min_size: int) -> np.ndarray:
        """H x W labels 0..n-1, as ``felzenszwalb(image, scale, sigma, min_size)``."""
        h, w = self.shape
        return _segment(self.a, self.b, self.costs, h * w, float(scale) / 255.0,
                        int(min_size)).reshape(h, w)
