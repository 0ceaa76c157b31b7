"""A weight-free proposal generator: selective-search-style hierarchical grouping.

WISE needs class-agnostic masks (the paper used MCG); this source needs no
download. Felzenszwalb superpixels in two colour spaces and two scales are
greedily merged by selective search's similarities (colour and texture
histograms, size, fill) plus the weakness of the colour edge along the shared
border, two similarity mixes each; every region of every hierarchy is a
proposal, identical masks once.

Objectness: WISE keeps, for each object's peak, the covering proposal of most
objectness (or samples by it), so among the regions covering an object the one
that is the object must score above its parts and above merges with its
background or its neighbours. A region scores how clearly its boundary is an
edge that its inside lacks, in Lab colour differences of 4-neighbour pixel
pairs (sigma-1 smoothed, shared by every hierarchy so masks from different
ones compare):

- contrast: 2 P(boundary pair differs more than an inside pair) - 1 (ties
  half), clipped to [0, 1]. Pixels on the image frame count as boundary
  without an edge: a background region bounded by the frame has no evidence of
  a closed contour there. A part of an object has a weak cut on its boundary;
  object + background has the object's edge inside and a weak outer boundary.
- no strong inner edge: times 1 - 2 (inside pairs at least as different as
  the boundary's median) / boundary pairs, clipped at 0: 1 for a uniform
  object, less for a merge of touching objects (their shared edge is inside),
  0 once such inner edges are half as long as the boundary.
- evidence: times n / (n + 4 min_size), n inside pairs: a sliver of a few
  pixels shows nothing about uniformity.

This is the contrast and closed-contour evidence of classic objectness
(Alexe et al., Edge Boxes, CPMC/MCG's contour features) for regions instead of
boxes, with no absolute threshold (a rank statistic, bins doubling every two
steps), so it carries to photos whose contrast or texture differ from the
demo's; in [0, 1], 1 for a uniform region with a strong closed boundary. The
hierarchy order still sets which regions exist. On 100 demo train images
with ground-truth centres as peaks the pseudo masks' ABO is 88 with the best
objectness and 85 with objectness sampling (52 and 43 when regions scored
their persistence in the hierarchy, formed minus absorbed similarity); recall
in the top 100 / 500 of the demo val split stays 95% / 99% (selective search's
randomised hierarchy level, which favours background agglomerates: 79% / 97%).
Proposals are a function of the image (no randomness). They come back as the
superpixel sets they are (SegmentProposals: the over-segmentations' common
refinement and each region's superpixels), which match predictions by counting
and store in tens of KB. The per-pixel and per-merge loops are compiled (numba:
here, felzenszwalb.py, grouping.py) and give the numpy / scikit-image results
bit for bit (tests/test_builtin_kernels.py), so stored proposals stay valid.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numba
import numpy as np
from pycocotools import mask as mask_util
from scipy import ndimage
from threadpoolctl import threadpool_limits

from ..errors import ProposalError
from ..registry import PROPOSAL_SOURCES
from ..utils.io import read_image
from .base import ProposalSource
from .felzenszwalb import PixelGraph
from .grouping import greedy_grouping
from .segments import SegmentProposals

COLOUR_BINS = 25
TEXTURE_BINS = 10
ORIENTATIONS = 8
COLOUR_DIM = 3 * COLOUR_BINS
HIST_DIM = COLOUR_DIM + 3 * ORIENTATIONS * TEXTURE_BINS
COLOUR_SPACES = {'rgb': None, 'hsv': cv2.COLOR_RGB2HSV_FULL, 'lab': cv2.COLOR_RGB2LAB}
# Objectness: Lab colour difference of neighbouring pixels in half-octave bins 1..128
EDGE_BINS = 2.0 ** (np.arange(15) / 2)
NUM_EDGE_BINS = len(EDGE_BINS) + 1


def to_space(rgb: np.ndarray, space: str) -> np.ndarray:
    """A uint8 H x W x 3 image in the given colour space, every channel over 0..255."""
    code = COLOUR_SPACES[space]
    return rgb if code is None else cv2.cvtColor(rgb, code)


@numba.njit(cache=True)
def _feature_codes(image: np.ndarray, gx: np.ndarray, gy: np.ndarray, cos: np.ndarray,
                   sin: np.ndarray) -> np.ndarray:
    """p x 27 histogram bins of every pixel: colour (25 a channel), then the positive
    response in each orientation of each channel (10 bins up to the image's largest)."""
    h, w, c = image.shape
    orientations = len(cos)
    codes = np.empty((h * w, c + c * orientations), np.int16)
    top = 0.0
    for y in range(h):
        for x in range(w):
            for ch in range(c):
                for o in range(orientations):
                    top = max(top, np.float64(gx[y, x, ch]) * cos[o]
                              + np.float64(gy[y, x, ch]) * sin[o])
    scale = TEXTURE_BINS / max(top, 1e-6)
    for y in range(h):
        for x in range(w):
            p = y * w + x
            for ch in range(c):
                codes[p, ch] = ((np.int64(image[y, x, ch]) * COLOUR_BINS) >> 8) \
                    + ch * COLOUR_BINS
                for o in range(orientations):
                    r = max(np.float64(gx[y, x, ch]) * cos[o]
                            + np.float64(gy[y, x, ch]) * sin[o], 0.0)
                    k = ch * orientations + o
                    codes[p, c + k] = min(np.int64(r * scale), TEXTURE_BINS - 1) \
                        + c * COLOUR_BINS + k * TEXTURE_BINS
    return codes


@numba.njit(cache=True)
def _histograms(labels: np.ndarray, codes: np.ndarray, n: int, dim: int) -> np.ndarray:
    """n x dim counts of every region's pixel codes."""
    hist = np.zeros((n, dim), np.int64)
    for p in range(len(labels)):
        for code in codes[p]:
            hist[labels[p], code] += 1
    return hist


@dataclass
class Pixels:
    """What every over-segmentation of one colour-space image shares."""

    image: np.ndarray  # h x w x 3 uint8
    codes: np.ndarray  # p x 27: each pixel's histogram bin per colour/texture channel
    pair_diff: np.ndarray  # colour difference of 4-neighbours (sigma-1 smoothed), as edge_bins

    @classmethod
    def of(cls, image: np.ndarray) -> Pixels:
        """Selective search's features: colour in 25 bins a channel; texture as the
        positive Gaussian-derivative response (sigma 1) in 8 orientations a
        channel, 10 bins each."""
        smooth = cv2.GaussianBlur(image.astype(np.float32), (0, 0), 1.0)
        gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=1)
        gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=1)
        theta = np.arange(ORIENTATIONS) * 2 * np.pi / ORIENTATIONS
        codes = _feature_codes(image, gx, gy, np.cos(theta), np.sin(theta))
        pair_diff = np.concatenate([np.linalg.norm(smooth[:, :-1] - smooth[:, 1:], axis=2).ravel(),
                                    np.linalg.norm(smooth[:-1] - smooth[1:], axis=2).ravel()])
        return cls(image, codes, pair_diff)


def edge_bins(rgb: np.ndarray) -> np.ndarray:
    """Bin (of EDGE_BINS) of the Lab colour difference of every 4-neighbour pixel pair
    of a sigma-1 smoothed uint8 RGB image: horizontal pairs, then vertical, row-major."""
    lab = cv2.GaussianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32), (0, 0), 1.0)
    diff = np.concatenate([np.linalg.norm(lab[:, :-1] - lab[:, 1:], axis=2).ravel(),
                           np.linalg.norm(lab[:-1] - lab[1:], axis=2).ravel()])
    return np.searchsorted(EDGE_BINS, diff)


@dataclass
class _Superpixels:
    """One over-segmentation and the statistics that grouping needs."""

    labels: np.ndarray  # h x w int, 0..n-1
    hist: np.ndarray  # n x D: colour | texture histograms, each L1-normalised
    size: np.ndarray  # n
    bbox: np.ndarray  # n x 4: x0, y0, x1, y1 (exclusive)
    pairs: np.ndarray  # m x 2 adjacent superpixels (a < b)
    border_len: np.ndarray  # m: pixel pairs along the shared border
    border_diff: np.ndarray  # m: summed colour difference across it
    border_edges: np.ndarray  # m x NUM_EDGE_BINS: histogram of edge_bins across it
    inner_edges: np.ndarray  # n x NUM_EDGE_BINS: the same for pixel pairs inside
    frame: np.ndarray  # n: pixel sides on the image frame


def superpixels(px: Pixels, labels: np.ndarray, edges: np.ndarray) -> _Superpixels:
    """The region statistics of an over-segmentation (``labels``: h x w, 0..n-1) of
    ``px.image``; ``edges`` are the image's ``edge_bins``."""
    n = int(labels.max()) + 1
    flat = labels.ravel()
    size = np.bincount(flat, minlength=n)
    d = HIST_DIM
    hist = _histograms(flat, px.codes, n, d).astype(np.float32)
    hist[:, :COLOUR_DIM] /= 3 * size[:, None]
    hist[:, COLOUR_DIM:] /= (px.codes.shape[1] - 3) * size[:, None]
    bbox = np.array([[s[1].start, s[0].start, s[1].stop, s[0].stop]
                     for s in ndimage.find_objects(labels + 1)], np.float64)
    # Borders between 4-neighbours with different labels; colour difference across them.
    a = np.concatenate([labels[:, :-1].ravel(), labels[:-1].ravel()])
    b = np.concatenate([labels[:, 1:].ravel(), labels[1:].ravel()])
    cut = a != b
    diff = px.pair_diff[cut]
    nb = NUM_EDGE_BINS
    inner = np.bincount(a[~cut] * nb + edges[~cut], minlength=n * nb).reshape(n, nb)
    a, b = a[cut], b[cut]
    uniq, inv = np.unique(np.minimum(a, b) * n + np.maximum(a, b), return_inverse=True)
    m = len(uniq)
    border = np.bincount(inv * nb + edges[cut], minlength=m * nb).reshape(m, nb)
    frame = np.bincount(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]),
                        minlength=n)
    return _Superpixels(labels, hist, size, bbox, np.stack([uniq // n, uniq % n], 1),
                        np.bincount(inv).astype(np.float64), np.bincount(inv, weights=diff),
                        border.astype(np.float32), inner.astype(np.float32),
                        frame.astype(np.float32))


def common_refinement(label_maps: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The atoms of S label maps (each 0..n_s-1) of one image: an atom map 0..A-1 and
    the A x S leaf of every atom in every map, map s's labels numbered after map s-1's."""
    code, bound = np.zeros(label_maps[0].shape, np.int64), 1
    for labels in label_maps:
        n = int(labels.max()) + 1
        if bound * n >= 2 ** 62:  # compact the codes before they overflow
            code = np.unique(code, return_inverse=True)[1].reshape(code.shape)
            bound = int(code.max()) + 1
        code, bound = code * n + labels, bound * n
    atoms = np.unique(code, return_inverse=True)[1].reshape(code.shape)
    offsets = np.cumsum([0] + [int(m.max()) + 1 for m in label_maps[:-1]])
    leaf_of = np.zeros((int(atoms.max()) + 1, len(label_maps)), np.int64)
    for s, (labels, offset) in enumerate(zip(label_maps, offsets)):
        leaf_of[atoms.ravel(), s] = labels.ravel() + offset
    return atoms, leaf_of


def _leaf_rles(labels: np.ndarray, n: int) -> list[dict]:
    """COCO RLEs of every label of an H x W map, from its column-major runs (no masks)."""
    h, w = labels.shape
    flat = labels.ravel(order='F')
    starts = np.flatnonzero(np.concatenate([[True], flat[1:] != flat[:-1]]))
    ends = np.append(starts[1:], flat.size)
    lab = flat[starts]
    order = np.argsort(lab, kind='stable')
    starts, ends, lab = starts[order], ends[order], lab[order]
    first = np.concatenate([[True], lab[1:] != lab[:-1]])
    prev_end = np.where(first, 0, np.roll(ends, 1))
    gaps = starts - prev_end
    last = np.append(first[1:], True)
    counts = np.stack([gaps, ends - starts], 1)
    bounds = np.flatnonzero(first)
    groups = np.split(counts, bounds[1:])
    tails = flat.size - ends[last]
    objs = [dict(size=[h, w], counts=np.append(g.ravel(), t).astype(np.uint32).tolist())
            for g, t in zip(groups, tails)]
    rles = mask_util.frPyObjects(objs, h, w)
    out: list[dict] = [None] * n  # type: ignore[list-item]
    for i, r in zip(lab[bounds], rles):
        out[int(i)] = r
    return out


@dataclass
class _Hierarchy:
    """The 2n-1 regions of one greedy grouping: n leaves, then merges in order.

    ``formed`` and ``absorbed`` are the similarities (in [0, 1]) of the merge
    that made a region and of the one that consumed it (kept for inspection;
    the ranking is ``contrast_objectness``). A leaf was made by no merge
    (formed 0); the root is consumed by none (absorbed = formed).
    """

    children: np.ndarray  # (2n-1) x 2, -1 for leaves
    formed: np.ndarray
    absorbed: np.ndarray

    def members(self, n: int) -> np.ndarray:
        """(2n-1) x n bool: the superpixels of every region."""
        member = np.zeros((len(self.children), n), bool)
        member[np.arange(n), np.arange(n)] = True
        for k, (i, j) in enumerate(self.children[n:].tolist(), n):
            np.logical_or(member[i], member[j], out=member[k])
        return member


def group(sp: _Superpixels, weights: Sequence[float]) -> _Hierarchy:
    """Greedy hierarchical grouping: merge the most similar adjacent pair until one is left.

    Similarity = weighted mean of (colour, texture, size, fill, edge) terms:
    colour and texture histogram intersection, size (small regions first), fill
    (regions that fill their joint box) as selective search, and the weakness of
    the colour edge along the shared border (exp(-mean difference / the image's
    median one)), which keeps objects apart from touching look-alikes.
    """
    edge_scale = max(float(np.median(sp.border_diff / sp.border_len)), 1e-6) \
        if len(sp.pairs) else 1.0
    total = sum(weights)
    children, formed, absorbed = greedy_grouping(
        sp.hist, sp.size, sp.bbox, sp.pairs, sp.border_len, sp.border_diff,
        np.array([w / total for w in weights]), COLOUR_DIM, float(sp.labels.size), edge_scale)
    return _Hierarchy(children, formed, absorbed)


def edge_histograms(member: np.ndarray, sp: _Superpixels) -> tuple[np.ndarray, np.ndarray]:
    """Histograms of ``edge_bins`` on the boundary (image frame sides in bin 0: no edge)
    and inside of every region (``member``: R x n superpixels), R x NUM_EDGE_BINS each,
    from superpixel sums."""
    a, b = member[:, sp.pairs[:, 0]], member[:, sp.pairs[:, 1]]
    boundary = (a ^ b).astype(np.float32) @ sp.border_edges
    inside = ((a & b).astype(np.float32) @ sp.border_edges
              + member.astype(np.float32) @ sp.inner_edges)
    boundary[:, 0] += member.astype(np.float32) @ sp.frame
    return boundary, inside


def contrast_objectness(boundary: np.ndarray, inside: np.ndarray,
                        evidence: float) -> np.ndarray:
    """Objectness in [0, 1] of regions from their boundary and inside edge
    histograms (R x bins, bins ordered weak to strong); see the module docstring.

    contrast = 2 P(boundary pair > inside pair) - 1, ties half, clipped at 0;
    times 1 - 2 (inside pairs in or above the boundary median's bin) / boundary
    pairs, clipped at 0; times n_inside / (n_inside + evidence).
    """
    n_b = boundary.sum(1)
    n_in = inside.sum(1)
    pb = boundary / np.maximum(n_b, 1)[:, None]
    pi = inside / np.maximum(n_in, 1)[:, None]
    below = np.cumsum(pi, 1) - pi  # P(inside pair in a lower bin)
    contrast = np.clip(2 * (pb * (below + 0.5 * pi)).sum(1) - 1, 0, 1)
    median_bin = (np.cumsum(pb, 1) < 0.5).sum(1)
    at_least = np.cumsum(inside[:, ::-1], 1)[:, ::-1]  # inside pairs in bin >= j
    strong = at_least[np.arange(len(inside)), np.minimum(median_bin, inside.shape[1] - 1)]
    uniform = np.clip(1 - 2 * strong / np.maximum(n_b, 1), 0, 1)
    return contrast * uniform * n_in / (n_in + evidence)


def region_rles(h: _Hierarchy, leaves: list[dict]) -> list[dict]:
    """RLE of every region: leaves as given, the rest as unions of their children."""
    rles = list(leaves) + [None] * (len(h.children) - len(leaves))
    for k in range(len(leaves), len(h.children)):
        i, j = h.children[k]
        rles[k] = mask_util.merge([rles[i], rles[j]])
    return rles


@PROPOSAL_SOURCES.register_module(name='builtin')
class BuiltinProposals(ProposalSource):
    """Selective-search-style proposals; see the module docstring.

    Args:
        max_proposals: keep this many best-scored distinct masks.
        colour_spaces: over-segment and group in each of these (rgb, hsv, lab).
        scales: Felzenszwalb ``scale`` for a 128 x 128 working image; scaled
            with the working area so region sizes stay relative to the image.
        min_size: smallest superpixel as a fraction of the working image.
        similarities: (colour, texture, size, fill, edge) weights; one
            hierarchy per entry, segmentation and colour space.
        max_side: segment at most at this resolution (long side); masks come
            back at full size. Bounds the time on large images.
    """

    def __init__(self, max_proposals: int = 500,
                 colour_spaces: tuple[str, ...] = ('hsv', 'lab'),
                 scales: tuple[float, ...] = (50, 100),
                 min_size: float = 6e-4, sigma: float = 0.8,
                 similarities: tuple[tuple[float, ...], ...] = ((1, 1, 1, 1, 1),
                                                                (0, 1, 1, 1, 1)),
                 max_side: int = 256) -> None:
        colour_spaces = (colour_spaces,) if isinstance(colour_spaces, str) else colour_spaces
        unknown = set(colour_spaces) - set(COLOUR_SPACES)
        if unknown:
            raise ValueError(f'unknown colour spaces {sorted(unknown)} (known: '
                             f'{", ".join(COLOUR_SPACES)})')
        self.similarities = tuple(tuple(float(v) for v in s) for s in similarities)
        if any(len(s) != 5 or min(s) < 0 or not sum(s) for s in self.similarities):
            raise ValueError(f'similarities {similarities}: each needs 5 weights >= 0 '
                             '(colour, texture, size, fill, edge), not all 0')
        self.max_proposals = max_proposals
        self.colour_spaces = tuple(colour_spaces)
        self.scales = tuple(np.atleast_1d(scales).tolist())
        self.min_size = min_size
        self.sigma = sigma
        self.max_side = max_side

    def __call__(self, image: dict) -> SegmentProposals:
        rgb = read_image(image['img_path'])
        hw = (image.get('height', rgb.shape[0]), image.get('width', rgb.shape[1]))
        if tuple(rgb.shape[:2]) != hw:
            raise ProposalError(f'{image["img_path"]}: image is {rgb.shape[1]}x{rgb.shape[0]}, '
                                f'expected {hw[1]}x{hw[0]}')
        return self.from_array(rgb, source=str(image['img_path']))

    def from_array(self, rgb: np.ndarray, source: str = '') -> SegmentProposals:
        """Proposals of a uint8 H x W x 3 RGB image, on one core: its matrices are small,
        so BLAS threads would only spin (twice the CPU time, no sooner done); parallelism
        is across images (gen_proposals' shards, loader workers)."""
        with threadpool_limits(limits=1, user_api='blas'):
            return self._from_array(rgb, source)

    def _from_array(self, rgb: np.ndarray, source: str) -> SegmentProposals:
        h, w = rgb.shape[:2]
        f = min(1.0, self.max_side / max(h, w))
        work = rgb if f == 1 else cv2.resize(rgb, (round(w * f), round(h * f)),
                                             interpolation=cv2.INTER_AREA)
        work_area = work.shape[0] * work.shape[1]
        min_size = max(2, round(self.min_size * work_area))
        edges = edge_bins(work)
        segs = []
        for space in self.colour_spaces:
            px = Pixels.of(to_space(work, space))
            graph = PixelGraph(px.image, self.sigma)
            segs += [superpixels(px, graph.segment(scale * work_area / 128 ** 2, min_size), edges)
                     for scale in self.scales]
        atoms, leaf_of = common_refinement([sp.labels for sp in segs])
        if f != 1:
            atoms = cv2.resize(atoms.astype(np.int32), (w, h), interpolation=cv2.INTER_NEAREST)
        # Identical RLEs once, at their best score. The key is the RLE's bytes, as
        # proposals have always been told apart; a proposal is stored as its leaves.
        best: dict[bytes, float] = {}
        rle_of: dict[bytes, dict] = {}
        leaves_of: dict[bytes, np.ndarray] = {}
        offsets = np.cumsum([0] + [len(sp.size) for sp in segs])
        for sp, offset in zip(segs, offsets):
            labels = sp.labels if f == 1 else cv2.resize(
                sp.labels.astype(np.int32), (w, h), interpolation=cv2.INTER_NEAREST)
            leaves = _leaf_rles(labels, len(sp.size))
            for weights in self.similarities:
                hier = group(sp, weights)
                member = hier.members(len(sp.size))
                score = contrast_objectness(*edge_histograms(member, sp), 4 * min_size)
                for r, region, sc in zip(region_rles(hier, leaves), member, score.tolist()):
                    key = r['counts']
                    if sc > best.get(key, -np.inf):
                        if key not in rle_of:
                            rle_of[key] = r
                            leaves_of[key] = np.flatnonzero(region) + offset
                        best[key] = sc
        keys = sorted(best, key=best.get, reverse=True)[:self.max_proposals]
        return SegmentProposals.from_leaf_sets(atoms, leaf_of, [leaves_of[k] for k in keys],
                                               np.array([best[k] for k in keys]), source,
                                               rles=[rle_of[k] for k in keys])
