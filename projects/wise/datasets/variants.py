"""What a built-in data set looks like: its class shapes, colours, backgrounds and
object counts.

Three variants are named (``demo``, ``hard``, ``crowded``); ``sweep<N>`` is one drawn
from the seed N (:func:`draw_variant`): five classes of random outlines, each compact,
concave, elongated or hollow, a colour tie between class and hue (none, weak, strong),
a background (flat, texture, photograph) and object counts of its own. Drawn variants
are data nobody chose options on: the variant sweep (``tools/pipeline.py sweep``)
checks that the defaults hold on them.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

#: a unit outline (radius ~1) and the hole cut out of it (None: solid)
Outline = tuple[np.ndarray, np.ndarray | None]


def _regular(n: int, phase: float = 0.0) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False) + phase
    return np.stack([np.cos(t), np.sin(t)], 1)


def _star() -> np.ndarray:
    pts = _regular(10, -np.pi / 2)
    pts[1::2] *= 0.42
    return pts


def _cross() -> np.ndarray:
    a, b = 1.0, 0.34
    return np.array([[-b, -a], [b, -a], [b, -b], [a, -b], [a, b], [b, b], [b, a],
                     [-b, a], [-b, b], [-a, b], [-a, -b], [-b, -b]])


def _arrow() -> np.ndarray:
    return np.array([[-1, -0.28], [0.15, -0.28], [0.15, -0.75], [1, 0], [0.15, 0.75],
                     [0.15, 0.28], [-1, 0.28]])


# The named shapes' unit outlines; HOLES are cut out of them.
SHAPES: dict[str, Callable[[], np.ndarray]] = {
    'circle': lambda: _regular(64),
    'square': lambda: _regular(4, np.pi / 4) * 1.2,
    'triangle': lambda: _regular(3, -np.pi / 2) * 1.15,
    'star': _star,
    'cross': _cross,
    'arrow': _arrow,
    'ring': lambda: _regular(48),
    'diamond': lambda: _regular(4) * np.array([[0.6, 1.15]]),
    'crescent': lambda: _regular(48),
    'bar': lambda: np.array([[-1.5, -0.26], [1.5, -0.26], [1.5, 0.26], [-1.5, 0.26]]),
    'frame': lambda: _regular(4, np.pi / 4) * 1.2,
}
HOLES: dict[str, Callable[[], np.ndarray]] = {
    'ring': lambda: _regular(48) * 0.5,
    'crescent': lambda: _regular(48) * 0.8 + np.array([[0.45, -0.1]]),
    'frame': lambda: _regular(4, np.pi / 4) * 0.75,
}


@dataclass(frozen=True)
class Variant:
    """How a generated set looks beyond its images' random draws."""

    classes: tuple[str, ...] | None = None  # None: the first --num-classes of SHAPES
    background: str = 'texture'  # 'texture', 'photo' (scikit-image's) or 'flat'
    max_distractors: int = 0  # blobs in class colours, per image
    max_instances: int = 4
    min_instances: int = 1
    max_classes: int | None = None  # classes per image (None: any)
    radius: tuple[float, float] = (0.11, 0.22)  # of the image size
    hue_jitter: float | None = None  # degrees; None: make_dataset's argument
    #: drawn classes' outlines by name (the named ones are in SHAPES / HOLES)
    outlines: dict[str, Outline] = field(default_factory=dict, compare=False, hash=False)

    def outline(self, name: str) -> Outline:
        if name in self.outlines:
            return self.outlines[name]
        return SHAPES[name](), HOLES[name]() if name in HOLES else None


VARIANTS = {
    'demo': Variant(),
    'hard': Variant(classes=('ring', 'crescent', 'bar', 'arrow', 'frame'),
                    background='photo', max_distractors=3, max_instances=5),
    'crowded': Variant(min_instances=4, max_instances=12, max_classes=2, radius=(0.06, 0.11)),
}

#: the kinds of drawn outline
KINDS = ('compact', 'concave', 'elongated', 'hollow')
#: colour tie -> hue jitter (degrees) around the class hue: 180 makes colour random
COLOUR_TIES = {'none': 180.0, 'weak': 40.0, 'strong': 12.0}
BACKGROUNDS = ('flat', 'texture', 'photo')
SWEEP = re.compile(r'sweep(\d+)')


def _radial(rng: np.random.Generator, n: int, low: float, high: float) -> np.ndarray:
    """A star-shaped polygon of ``n`` vertices at jittered angles, radii in [low, high]."""
    t = (np.arange(n) + rng.uniform(-0.3, 0.3, n)) * 2 * np.pi / n
    r = rng.uniform(low, high, n)
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


def draw_outline(rng: np.random.Generator, kind: str) -> Outline:
    """A random unit outline of one of :data:`KINDS`."""
    if kind == 'compact':
        return _radial(rng, int(rng.integers(5, 10)), 0.85, 1.1), None
    if kind == 'concave':
        spikes = int(rng.integers(3, 7))
        pts = _radial(rng, 2 * spikes, 0.9, 1.15)
        pts[1::2] *= rng.uniform(0.35, 0.6)
        return pts, None
    if kind == 'elongated':
        aspect = rng.uniform(2.5, 4.0)
        return _radial(rng, int(rng.integers(6, 10)), 0.9, 1.05) * np.array(
            [[1.6, 1.6 / aspect]]), None
    if kind == 'hollow':
        outer = _radial(rng, int(rng.integers(6, 12)), 0.9, 1.05)
        return outer, outer * rng.uniform(0.45, 0.65) + rng.uniform(-0.1, 0.1, 2)
    raise ValueError(f'unknown outline kind {kind!r}; kinds: {KINDS}')


def draw_variant(seed: int, num_classes: int = 5) -> Variant:
    """The sweep's variant ``seed``: every choice drawn from its own generator."""
    rng = np.random.default_rng([2029, seed])
    kinds = rng.choice(KINDS, num_classes)
    classes = tuple(f'{kind}{i}' for i, kind in enumerate(kinds))
    outlines = {name: draw_outline(rng, kind) for name, kind in zip(classes, kinds)}
    tie = str(rng.choice(list(COLOUR_TIES)))
    low = rng.uniform(0.08, 0.12)
    return Variant(classes=classes, background=str(rng.choice(BACKGROUNDS)),
                   max_distractors=int(rng.integers(0, 4)),
                   max_instances=int(rng.integers(3, 7)),
                   radius=(low, low + rng.uniform(0.08, 0.12)),
                   hue_jitter=COLOUR_TIES[tie], outlines=outlines)


def variant_by_name(name: str) -> Variant:
    """A named variant, or ``sweep<N>``: the one drawn from seed N."""
    if name in VARIANTS:
        return VARIANTS[name]
    if m := SWEEP.fullmatch(name):
        return draw_variant(int(m[1]))
    raise ValueError(f'unknown variant {name!r}: {", ".join(VARIANTS)} or sweep<N>')


def describe(style: Variant) -> dict:
    """What a variant is, in words and numbers (the sweep's table says it)."""
    tie = next((k for k, v in COLOUR_TIES.items() if v == style.hue_jitter), 'strong')
    return dict(classes=list(style.classes or ()), background=style.background,
                colour_tie=tie, max_instances=style.max_instances,
                max_distractors=style.max_distractors,
                radius=[round(r, 3) for r in style.radius])
