"""Generate the built-in "shapes" dataset in the exact PASCAL VOC 2012 layout.

The images, labels and variants are ``projects.wise.datasets.shapes``'s:
``--variant demo`` (textured backgrounds), ``hard`` (photographs, distractors
in class colours, hollow / concave / elongated classes, up to 5 instances) or
``crowded`` (4-12 smaller instances of one or two classes: counting matters).

    python tools/make_shapes_dataset.py data/shapes --num-train 2000 --num-val 200 --num-test 200
    python tools/make_shapes_dataset.py data/shapes-hard --variant hard
    python tools/make_shapes_dataset.py data/shapes-sweep3 --variant sweep3
"""
from __future__ import annotations

import argparse
from pathlib import Path

from projects.wise.datasets.shapes import make_dataset
from projects.wise.datasets.variants import SHAPES, variant_by_name


def _variant(name: str) -> str:
    try:
        variant_by_name(name)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return name


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('out', type=Path, help='output root (becomes a VOC2012-style folder)')
    p.add_argument('--num-train', type=int, default=2000)
    p.add_argument('--num-val', type=int, default=200,
                   help='images for choosing options, thresholds and checkpoints')
    p.add_argument('--num-test', type=int, default=200,
                   help='held-out images, for reporting only (0: none)')
    p.add_argument('--variant', type=_variant, default='demo',
                   help='demo: plain textured backgrounds; hard: photographs, distractors, '
                        'hollow / concave / elongated classes (its own 5 classes); crowded: '
                        '4-12 instances of 1-2 classes; sweep<N>: classes, colours, '
                        'backgrounds and counts drawn from the seed N')
    p.add_argument('--num-classes', type=int, default=5,
                   help=f'1..{len(SHAPES)} (the demo variant: the first N shapes)')
    p.add_argument('--image-size', type=int, default=128)
    p.add_argument('--max-instances', type=int,
                   help="most instances per image (default: the variant's, 4, 5 or 12)")
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--clutter', type=float, default=1.0,
                   help='background clutter in [0, 1]: texture contrast and line count')
    p.add_argument('--max-rotation', type=float, default=20.0,
                   help='shapes are rotated uniformly within +-this many degrees')
    p.add_argument('--hue-jitter', type=float, default=15.0,
                   help='object hue = class hue +- this many degrees (180: random colour; '
                        'a sweep<N> variant draws its own)')
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    make_dataset(a.out, a.num_train, a.num_val, a.num_classes, a.image_size,
                 a.max_instances, a.seed, a.clutter, a.max_rotation, a.hue_jitter, a.variant,
                 a.num_test)


if __name__ == '__main__':
    main()
