"""Image-level labels (a csv / text list or a COCO json) over an image folder to the
project's ``<split>_labels.json`` (docs/data.md#your-own-data).

    python tools/dataset_converters/labels_to_coco.py labels.csv \\
        --images data/mine/JPEGImages --out data/mine/annotations/train_labels.json

``labels.csv`` has a row ``image,label1;label2`` per image. A bad row is one line
naming the file and row, and nothing is written.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from projects.wise.datasets.label_files import class_list, instances_json, labels_json
from projects.wise.registry import LABEL_FORMATS
from projects.wise.utils.cli import run_tool
from projects.wise.utils.io import dump_json


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('labels', type=Path, help='the label file')
    p.add_argument('--images', type=Path, required=True,
                   help='the folder the image names are relative to')
    p.add_argument('--out', type=Path, required=True, help='the labels json to write')
    p.add_argument('--format', choices=sorted(LABEL_FORMATS.module_dict),
                   help='the label file format (default: coco for .json, else csv)')
    p.add_argument('--instances-out', type=Path,
                   help='also write the instance masks of a COCO json (a val split that '
                        'scores) on the same images and category ids')
    classes = p.add_mutually_exclusive_group()
    classes.add_argument('--classes', help='a,b,c: the class list, category ids 1..K '
                         '(default: the file\'s categories, or its labels sorted)')
    classes.add_argument('--classes-file', type=Path, help='one class name a line')
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def run() -> None:
        data = labels_json(args.labels, args.images,
                           class_list(args.classes, args.classes_file), args.format)
        instances = None if args.instances_out is None \
            else instances_json(args.labels, data)
        dump_json(data, args.out)
        if instances is not None:
            dump_json(instances, args.instances_out)
        names = ', '.join(c['name'] for c in data['categories'])
        print(f'[labels_to_coco] {len(data["images"])} images, classes {names} -> {args.out}',
              flush=True)

    return run_tool('labels_to_coco.py', run)


if __name__ == '__main__':
    sys.exit(main())
