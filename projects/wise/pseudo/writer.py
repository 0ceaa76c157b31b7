"""Streaming, resumable output of gen_pseudo.

Each worker appends one JSON line per finished image to its own parts file
(flushed and fsynced), so a kill loses at most the image in flight and a rerun
continues where it stopped. The final COCO json is assembled from the parts in
image order with annotation ids given at merge time, so an interrupted, a
resumed and a sharded run all write the same bytes. Nothing holds more than
one image's annotations in memory.

A parts file opens with the run it belongs to (config, checkpoint digest, the
options that shape the output). A rerun resumes only its own run's parts: after
a retrained PRM or a changed option it starts over, and the merge refuses to mix
shards of different runs.
"""
from __future__ import annotations

import heapq
import json
import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import DataError
from ..utils.io import atomic_write


def parts_path(out: Path, shard: int, num_shards: int) -> Path:
    return Path(f'{out}.parts') / f'shard-{shard:03d}-of-{num_shards:03d}.jsonl'


def _header(run: dict) -> bytes:
    return (json.dumps({'run': run}, separators=(',', ':'), sort_keys=True) + '\n').encode()


def _changed(found: dict, run: dict) -> list[str]:
    return sorted(k for k in {*found, *run} if found.get(k) != run.get(k))


class PartsFile:
    """One worker's append-only record of finished images of one ``run``."""

    def __init__(self, path: Path, run: dict) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        #: why earlier parts were dropped ('' if none were, or they were resumed)
        self.restarted = ''
        self.done = self._recover(run)
        self._f = open(self.path, 'a', encoding='utf-8')

    def _recover(self, run: dict) -> set[int]:
        """Indices already written by this run; a torn last line (a kill mid-write) is
        cut off, and another run's parts are dropped."""
        header = _header(run)
        if self.path.exists():
            with open(self.path, 'rb') as f:
                first = f.readline()
            if first != header:
                try:
                    found = json.loads(first)['run']
                    self.restarted = f'written by another run (different ' \
                                     f'{", ".join(_changed(found, run))})'
                except (ValueError, KeyError, TypeError):
                    self.restarted = 'no run header'
                os.truncate(self.path, 0)
        if not self.path.exists() or self.path.stat().st_size == 0:
            with open(self.path, 'wb') as f:
                f.write(header)
                f.flush()
                os.fsync(f.fileno())
            return set()
        done = set()
        with open(self.path, 'rb') as f:
            good = len(f.readline())  # the header
            for line in f:
                if not line.endswith(b'\n'):
                    break
                try:
                    done.add(int(json.loads(line)['index']))
                except (ValueError, KeyError, TypeError):
                    break
                good += len(line)
        if good != self.path.stat().st_size:
            os.truncate(self.path, good)
        return done

    def append(self, record: dict) -> None:
        self._f.write(json.dumps(record, separators=(',', ':')) + '\n')
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()


def _read(path: Path, run: dict) -> Iterator[dict]:
    with open(path, encoding='utf-8') as f:
        try:
            found = json.loads(f.readline())['run']
        except (ValueError, KeyError, TypeError):
            raise DataError(f'{path}: no run header (not written by gen_pseudo?)') from None
        if found != run:
            raise DataError(f'{path}: written by another run (different '
                            f'{", ".join(_changed(found, run))}); rerun that shard with the '
                            'same arguments')
        last = -1
        for n, line in enumerate(f, 2):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f'{path}: line {n} is not JSON ({e})') from None
            if record['index'] <= last:
                raise DataError(f'{path}: line {n}: image index {record["index"]} out of order')
            last = record['index']
            yield record


def iter_records(paths: list[Path], num_images: int, run: dict) -> Iterator[dict]:
    """Every image's record once, in image order, from all parts files of ``run``."""
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DataError(f'parts files missing: {missing} (did every shard finish?)')
    expected = 0
    for record in heapq.merge(*(_read(p, run) for p in paths), key=lambda r: r['index']):
        if record['index'] != expected:
            what = 'twice' if record['index'] < expected else 'missing'
            raise DataError(f'{paths[0].parent}: image index '
                            f'{expected if what == "missing" else record["index"]} is {what}')
        expected += 1
        yield record
    if expected != num_images:
        raise DataError(f'{paths[0].parent}: {num_images - expected} of {num_images} images '
                        'not done yet (rerun the same command to finish them)')


def write_coco(paths: list[Path], num_images: int, run: dict, categories: list[dict],
               out: Path) -> None:
    """The final COCO instances json, streamed (two passes over the parts)."""
    with atomic_write(out) as f:
        f.write('{"images":[')
        for i, r in enumerate(iter_records(paths, num_images, run)):
            f.write((',' if i else '') + json.dumps(r['image'], separators=(',', ':')))
        f.write('],"annotations":[')
        ann_id = 0
        for r in iter_records(paths, num_images, run):
            for ann in r['annotations']:
                ann_id += 1
                f.write((',' if ann_id > 1 else '')
                        + json.dumps({'id': ann_id, **ann}, separators=(',', ':')))
        f.write('],"categories":' + json.dumps(categories, separators=(',', ':')) + '}\n')
