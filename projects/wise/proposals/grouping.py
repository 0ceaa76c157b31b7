"""Selective search's greedy hierarchical grouping, compiled by numba.

The merge loop is sequential (a heap of adjacent pairs by similarity), so in
Python each merge paid a dozen numpy calls; here it is one compiled loop. The
arithmetic is numpy's, bit for bit: float32 histograms summed in numpy's
pairwise order, float32 weighting of the histogram terms, float64 elsewhere,
except exp, the C library's (numpy's SIMD exp differs in the last bit on AVX-512
CPUs); the merge order and so the proposals are those of the numpy loop it replaced.
"""
from __future__ import annotations

import heapq

import numba
import numpy as np


@numba.njit(cache=True)
def _block_sum(a: np.ndarray, lo: int, n: int) -> np.float32:
    """numpy's float32 sum of a block of at most 128: 8 accumulators, then the rest."""
    if n < 8:
        res = np.float32(0.0)
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r = a[lo:lo + 8].copy()
    i = 8
    while i < n - n % 8:
        for j in range(8):
            r[j] += a[lo + i + j]
        i += 8
    res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@numba.njit(cache=True)
def pairwise_sum(a: np.ndarray, lo: int, n: int) -> np.float32:
    """numpy's float32 pairwise summation of a[lo:lo + n] (halves cut at multiples of 8
    down to blocks of at most 128), so sums of up to 8192 (numpy's buffer) equal
    ``ndarray.sum`` to the bit. A stack, not recursion: numba cannot cache recursion."""
    los, ns, sums, done = np.empty(64, np.int64), np.empty(64, np.int64), \
        np.empty(64, np.float32), np.zeros(64, np.bool_)
    los[0], ns[0], top = lo, n, 0
    while True:
        if ns[top] <= 128:
            sums[top], done[top] = _block_sum(a, los[top], ns[top]), True
        elif not done[top]:  # push the first half, then (once it is summed) the second
            half = ns[top] // 2
            half -= half % 8
            los[top + 1], ns[top + 1], done[top + 1] = los[top], half, False
            done[top] = True
            top += 1
            continue
        # the entry on top is summed: fold it into its parent
        while top > 0:
            parent = top - 1
            half = ns[parent] // 2
            half -= half % 8
            if los[top] == los[parent]:  # first half done: start the second
                sums[parent] = sums[top]
                los[top], ns[top], done[top] = los[parent] + half, ns[parent] - half, False
                break
            sums[parent] += sums[top]
            top = parent
        else:
            return sums[0]


@numba.njit(cache=True)
def _similarity(hist: np.ndarray, size: np.ndarray, bbox: np.ndarray, a: int, b: int,
                length: float, diff: float, w: np.ndarray, colour_dim: int, area: float,
                edge_scale: float) -> float:
    """Weighted colour, texture, size, fill and edge similarity of regions a and b."""
    dim = hist.shape[1]
    inter = np.minimum(hist[a], hist[b])
    colour = pairwise_sum(inter, 0, colour_dim)
    texture = pairwise_sum(inter, colour_dim, dim - colour_dim)
    joint = size[a] + size[b]
    bw = max(bbox[a, 2], bbox[b, 2]) - min(bbox[a, 0], bbox[b, 0])
    bh = max(bbox[a, 3], bbox[b, 3]) - min(bbox[a, 1], bbox[b, 1])
    hist_terms = np.float32(w[0]) * colour + np.float32(w[1]) * texture  # float32, as numpy
    return (float(hist_terms) + w[2] * (1 - joint / area)
            + w[3] * (1 - (bw * bh - joint) / area)
            + w[4] * np.exp(-diff / length / edge_scale))


@numba.njit(cache=True)
def _group(leaf_hist: np.ndarray, leaf_size: np.ndarray, leaf_bbox: np.ndarray,
           pairs: np.ndarray, lengths: np.ndarray, diffs: np.ndarray, w: np.ndarray,
           colour_dim: int, area: float, edge_scale: float):
    n = len(leaf_size)
    total = 2 * n - 1
    hist = np.zeros((total, leaf_hist.shape[1]), np.float32)
    hist[:n] = leaf_hist
    size = np.zeros(total)
    size[:n] = leaf_size
    bbox = np.zeros((total, 4))
    bbox[:n] = leaf_bbox
    children = np.full((total, 2), -1, np.int64)
    formed = np.zeros(total)
    absorbed = np.zeros(total)
    # Live regions sit in n slots (a merge takes its first part's): border length and
    # summed colour difference between the live regions of slots s, t
    border = np.zeros((n, n))
    across = np.zeros((n, n))
    slot = np.arange(total)
    region = np.arange(n)
    heap = [(0.0, 0, 0)]
    heap.pop()
    for p in range(len(pairs)):
        a, b = pairs[p, 0], pairs[p, 1]
        border[a, b] = border[b, a] = lengths[p]
        across[a, b] = across[b, a] = diffs[p]
        s = _similarity(hist, size, bbox, a, b, lengths[p], diffs[p], w, colour_dim, area,
                        edge_scale)
        heap.append((-s, a, b))
    heapq.heapify(heap)
    alive = np.zeros(total, np.bool_)
    alive[:n] = True
    k = n
    while len(heap) > 0:
        neg, i, j = heapq.heappop(heap)
        if not (alive[i] and alive[j]):  # a stale pair: one side was merged already
            continue
        alive[i] = alive[j] = False
        alive[k] = True
        children[k, 0], children[k, 1] = i, j
        formed[k] = absorbed[i] = absorbed[j] = -neg
        size[k] = size[i] + size[j]
        si, sj, sk = np.float32(size[i]), np.float32(size[j]), np.float32(size[k])
        for d in range(hist.shape[1]):
            hist[k, d] = (si * hist[i, d] + sj * hist[j, d]) / sk
        bbox[k, 0] = min(bbox[i, 0], bbox[j, 0])
        bbox[k, 1] = min(bbox[i, 1], bbox[j, 1])
        bbox[k, 2] = max(bbox[i, 2], bbox[j, 2])
        bbox[k, 3] = max(bbox[i, 3], bbox[j, 3])
        s_k, s_j = slot[i], slot[j]
        slot[k] = s_k
        region[s_k] = k
        for t in range(n):
            length = border[s_k, t] + border[s_j, t]
            diff = across[s_k, t] + across[s_j, t]
            border[s_j, t] = border[t, s_j] = 0.0
            across[s_j, t] = across[t, s_j] = 0.0
            if t == s_k or t == s_j or length == 0.0:
                border[s_k, t] = border[t, s_k] = 0.0
                across[s_k, t] = across[t, s_k] = 0.0
                continue
            border[s_k, t] = border[t, s_k] = length
            across[s_k, t] = across[t, s_k] = diff
            m = region[t]
            s = _similarity(hist, size, bbox, k, m, length, diff, w, colour_dim, area,
                            edge_scale)
            heapq.heappush(heap, (-s, k, m))
        k += 1
    absorbed[k - 1] = formed[k - 1]
    return children[:k], formed[:k], absorbed[:k]


def greedy_grouping(hist: np.ndarray, size: np.ndarray, bbox: np.ndarray, pairs: np.ndarray,
                    lengths: np.ndarray, diffs: np.ndarray, weights: np.ndarray,
                    colour_dim: int, area: float, edge_scale: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge the most similar adjacent pair of regions until one is left.

    Args:
        hist: n x D float32 colour | texture histograms (first ``colour_dim`` colour).
        size, bbox: pixels and x0, y0, x1, y1 of each region.
        pairs, lengths, diffs: adjacent pairs, their border length and summed colour
            difference across it.
        weights: (colour, texture, size, fill, edge), summing to 1.
        area: the image's pixels; edge_scale: the scale of the edge term,
            exp(-mean colour difference across the border / edge_scale).

    Returns:
        children ((2n-1) x 2, -1 for leaves), and the similarity of the merge that
        formed each region and of the one that absorbed it.
    """
    if len(size) == 1:
        return np.full((1, 2), -1, np.int64), np.zeros(1), np.zeros(1)
    return _group(np.ascontiguousarray(hist, np.float32), np.asarray(size, np.float64),
                  np.asarray(bbox, np.float64), np.asarray(pairs, np.int64),
                  np.asarray(lengths, np.float64), np.asarray(diffs, np.float64),
                  np.asarray(weights, np.float64), colour_dim, float(area), float(edge_scale))
