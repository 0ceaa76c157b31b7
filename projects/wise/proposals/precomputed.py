"""Proposals computed offline: one file per image, or one COCO results json for all.

A per-image file is ``<image stem>.segments`` (built-in proposals as superpixel sets,
~30 KB at 500x375; see segments.py), ``<image stem>.json[.gz]``, the COCO
results list that DeepMask / SharpMask write (and tools/gen_proposals.py for
sources of arbitrary masks), or ``<image stem>.mat``, MCG's and COB's candidates
(mat.py), looked for in that order.

The single-file form (MCG/COB/SAM run elsewhere) holds ~1000 RLEs for each of
10k+ images, gigabytes of JSON: it is never loaded whole. A first streaming
pass records where each image's objects lie in the file (a byte span or two
per image), and each call parses only those bytes.
"""
from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Iterator

from ..errors import ProposalError
from ..registry import PROPOSAL_SOURCES
from ..utils.io import atomic_write
from .base import Proposals, ProposalSource
from .mat import read_mat
from .segments import SegmentProposals

_CHUNK = 1 << 20
_INDEX_VERSION = 1
_WS = ' \t\n\r'

Spans = dict[str, list[list[int]]]  # str(image_id) -> [[start, end) byte spans]


def _scan_objects(path: Path) -> Iterator[tuple[int, int, dict]]:
    """Yield (start, end, object) for each element of a JSON list of objects.

    Bytes are decoded as latin-1 so that character offsets are byte offsets;
    JSON's structure is ASCII, so only non-ASCII text inside strings comes out
    mis-decoded (see ``_key``). One object is in memory at a time.
    ijson gives no byte offsets: fed byte by byte for them, it scans 54 MB in 26 s (this: 1.2 s).
    """
    decoder = json.JSONDecoder()
    buf, base, pos = '', 0, 0  # buf[0] is byte `base` of the file

    def bad(what: str, at: int | None = None) -> ProposalError:
        return ProposalError(f'{path}: not a JSON list of objects (truncated or corrupt?): '
                             f'{what} at byte {base + (pos if at is None else at)}')

    with open(path, 'rb') as f:
        def more() -> bool:
            """Drop the parsed text and read on; False at the end of the file."""
            nonlocal buf, base, pos
            chunk = f.read(_CHUNK)
            base, buf, pos = base + pos, buf[pos:] + chunk.decode('latin-1'), 0
            return bool(chunk)

        def skip_ws() -> str:
            """The next non-blank character ('' at the end of the file)."""
            nonlocal pos
            while True:
                while pos < len(buf) and buf[pos] in _WS:
                    pos += 1
                if pos < len(buf) or not more():
                    return buf[pos:pos + 1]

        if skip_ws() != '[':
            raise bad('expected "["')
        pos += 1
        nxt = skip_ws()
        if nxt == ']':
            return
        while True:
            if nxt != '{':
                raise bad('expected an object' if nxt else 'unexpected end of file')
            while True:
                try:
                    obj, end = decoder.raw_decode(buf, pos)
                    break
                except json.JSONDecodeError as e:
                    # Only an object cut by the chunk's end is worth more text; a
                    # corrupt one must not pull the rest of the file into memory.
                    cut = e.pos >= len(buf) - 64 or e.msg.startswith('Unterminated string')
                    if not (cut and more()):
                        raise bad(e.msg, e.pos) from None
            yield base + pos, base + end, obj
            pos = end
            sep = skip_ws()
            if sep == ']':
                return
            if sep != ',':
                raise bad('expected "," or "]"')
            pos += 1
            nxt = skip_ws()


def _key(image_id: Any) -> str:
    """Index key of an image id; undoes the latin-1 decoding of ``_scan_objects``."""
    if isinstance(image_id, str):
        try:
            return image_id.encode('latin-1').decode('utf-8')
        except UnicodeError:
            return image_id
    return str(image_id)


def build_index(path: Path) -> Spans:
    """Byte spans of each image's objects; consecutive objects of an image share a span."""
    spans: Spans = {}
    last = None
    for start, end, obj in _scan_objects(path):
        if 'image_id' not in obj:
            raise ProposalError(f'{path}: object at byte {start} has no "image_id"')
        key = _key(obj['image_id'])
        if key == last:
            spans[key][-1][1] = end
        else:
            spans.setdefault(key, []).append([start, end])
        last = key
    return spans


def from_results(entries: list, where: str, hw: tuple[int, int]) -> Proposals:
    """Proposals from COCO results objects ``{"segmentation": RLE, "score": float}``."""
    segms, scores = [], []
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or 'segmentation' not in e \
                or not isinstance(e.get('score'), (int, float)):
            raise ProposalError(f'{where}: proposal {i} needs "segmentation" and a '
                                'numeric "score"')
        segms.append(e['segmentation'])
        scores.append(e['score'])
    return Proposals.from_coco(segms, scores, hw, where)


def read_results_file(path: Path, hw: tuple[int, int]) -> Proposals:
    """A per-image COCO results list, plain or gzipped JSON."""
    try:
        with (gzip.open(path, 'rt', encoding='utf-8') if path.suffix == '.gz'
              else open(path, encoding='utf-8')) as f:
            entries = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError, EOFError, gzip.BadGzipFile) as e:
        raise ProposalError(f'{path}: not valid JSON (truncated or corrupt?): {e}') from None
    if not isinstance(entries, list):
        raise ProposalError(f'{path}: expected a JSON list of proposals, '
                            f'got {type(entries).__name__}')
    return from_results(entries, str(path), hw)


#: per-image file suffix -> reader(path, (height, width)), in order of preference
FILE_READERS: dict[str, Callable[[Path, tuple[int, int]], Proposals]] = {
    SegmentProposals.FILE_SUFFIX: SegmentProposals.load,
    '.json': read_results_file,
    '.json.gz': read_results_file,
    '.mat': read_mat,
}


def done_name(ann_file: Path, shard: int = 0, num_shards: int = 1) -> str:
    """The record that tools/gen_proposals.py leaves in its out dir when a shard of an
    annotation file's images is done (what a pipeline stage waits for)."""
    return f'.done_{Path(ann_file).stem}_{shard}of{num_shards}.json'


def image_file(root: Path, stem: str) -> Path | None:
    """The proposal file of the image with this file stem in ``root``, if any."""
    for suffix in FILE_READERS:
        path = root / f'{stem}{suffix}'
        if path.is_file():
            return path
    return None


@PROPOSAL_SOURCES.register_module('precomputed')
class PrecomputedProposals(ProposalSource):
    """Reads proposals from ``root/<image stem>.{segments,json,json.gz,mat}`` or from
    one ``ann_file``.

    JSON holds COCO results: ``{"segmentation": RLE, "score": float}``
    objects (plus ``"image_id"`` in ``ann_file``; other keys are ignored).
    ``ann_file`` is indexed on first use; the index is cached beside it as
    ``<ann_file>.index.json`` when that directory is writable, so other
    processes (ranks, dataloader workers, later runs) skip the scan.
    """

    def __init__(self, root: str | None = None, ann_file: str | None = None,
                 max_per_image: int | None = None) -> None:
        if (root is None) == (ann_file is None):
            raise ValueError('precomputed proposals need exactly one of root= and ann_file=')
        self.root = Path(root) if root is not None else None
        self.ann_file = Path(ann_file) if ann_file is not None else None
        self.max_per_image = max_per_image
        self._spans: Spans | None = None

    def __call__(self, image: dict) -> Proposals:
        hw = (int(image['height']), int(image['width']))
        if self.root is not None:
            props = self._read_image_file(image, hw)
        else:
            props = from_results(*self._read_ann_file(image), hw)
        return props if self.max_per_image is None else props.top(self.max_per_image)

    def _read_image_file(self, image: dict, hw: tuple[int, int]) -> Proposals:
        stem = Path(image['img_path']).stem
        path = image_file(self.root, stem)
        if path is None:
            tried = ', '.join(str(self.root / f'{stem}{suffix}') for suffix in FILE_READERS)
            raise ProposalError(f'proposals of {image["img_path"]} not found: no {tried}')
        return FILE_READERS[path.name[len(stem):]](path, hw)

    def _read_ann_file(self, image: dict) -> tuple[list, str]:
        if 'img_id' not in image:
            raise ProposalError(f'{self.ann_file}: needs the image id of {image["img_path"]}')
        where = f'{self.ann_file} (image_id {image["img_id"]})'
        spans = self._index().get(_key(image['img_id']))
        if spans is None:
            raise ProposalError(f'{where}: no proposals for {image["img_path"]}')
        entries = []
        with open(self.ann_file, 'rb') as f:
            for start, end in spans:
                f.seek(start)
                data = f.read(end - start)
                try:
                    entries += json.loads(b'[' + data + b']')
                except (json.JSONDecodeError, UnicodeDecodeError) as e:
                    raise ProposalError(f'{where}: file changed since it was indexed? '
                                        f'({e})') from None
        return entries, where

    def _index(self) -> Spans:
        """The in-memory index, else the cached one if it matches the file, else a scan."""
        if self._spans is not None:
            return self._spans
        try:
            st = self.ann_file.stat()
        except FileNotFoundError:
            raise ProposalError(f'{self.ann_file}: proposal file not found') from None
        stamp = dict(version=_INDEX_VERSION, size=st.st_size, mtime_ns=st.st_mtime_ns)
        cache = self.ann_file.with_name(self.ann_file.name + '.index.json')
        try:
            with open(cache, encoding='utf-8') as f:
                cached = json.load(f)
            if {k: cached.get(k) for k in stamp} == stamp and isinstance(cached['spans'], dict):
                self._spans = cached['spans']
                return self._spans
        except (OSError, ValueError, KeyError, AttributeError):
            pass  # no usable cache: scan
        self._spans = build_index(self.ann_file)
        try:
            with atomic_write(cache) as f:
                json.dump(dict(stamp, spans=self._spans), f)
        except OSError:
            pass  # read-only data directory: the in-memory index serves this process
        return self._spans


__all__ = ['FILE_READERS', 'PrecomputedProposals', 'build_index', 'image_file']
