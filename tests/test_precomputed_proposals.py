"""PrecomputedProposals: per-image files and one lazily indexed COCO results file."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_util

from projects.wise.errors import ProposalError
from projects.wise.proposals import PrecomputedProposals, precomputed
from projects.wise.registry import PROPOSAL_SOURCES

# image id -> (file stem, height, width, number of proposals); 'ñandú' is non-ASCII on purpose
IMAGES = {1: ('2007_000032', 9, 7, 4), 'ñandú': ('ñandú', 5, 6, 3), 3: ('2007_000039', 8, 8, 0)}


def _image(img_id: int | str) -> dict:
    stem, h, w, _ = IMAGES[img_id]
    return dict(img_id=img_id, img_path=f'/data/JPEGImages/{stem}.jpg', height=h, width=w)


def _entries(img_id: int | str, seed: int) -> list[dict]:
    """Random masks as COCO results, with the extra keys deepmask/MCG write."""
    _, h, w, n = IMAGES[img_id]
    rng = np.random.default_rng(seed)
    masks = np.asfortranarray((rng.random((h, w, n)) > 0.6).astype(np.uint8))
    out = []
    for i, rle in enumerate(mask_util.encode(masks) if n else []):
        out.append(dict(image_id=img_id, category_id=1, note='über',
                        segmentation=dict(size=rle['size'], counts=rle['counts'].decode()),
                        score=float(rng.random())))
    return out


@pytest.fixture
def entries() -> dict:
    return {img_id: _entries(img_id, seed) for seed, img_id in enumerate(IMAGES)}


@pytest.fixture
def root(tmp_path: Path, entries: dict) -> Path:
    d = tmp_path / 'per_image'
    d.mkdir()
    for img_id, es in entries.items():
        (d / f'{IMAGES[img_id][0]}.json').write_text(json.dumps(es), encoding='utf-8')
    return d


@pytest.fixture
def ann_file(tmp_path: Path, entries: dict) -> Path:
    """All images in one file; image 1's entries are split in two runs around the others."""
    es = entries[1][:2] + entries['ñandú'] + entries[3] + entries[1][2:]
    path = tmp_path / 'results.json'
    path.write_text(json.dumps(es, indent=1, ensure_ascii=False), encoding='utf-8')
    return path


def _assert_same(a, b) -> None:
    assert a.hw == b.hw and len(a) == len(b)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.decode(), b.decode())


def test_per_image_and_single_file_give_the_same_proposals(root: Path, ann_file: Path,
                                                           entries: dict) -> None:
    by_dir = PrecomputedProposals(root=str(root))
    by_file = PrecomputedProposals(ann_file=str(ann_file))
    for img_id in (1, 'ñandú'):
        es = entries[img_id]
        a, b = by_dir(_image(img_id)), by_file(_image(img_id))
        _, h, w, n = IMAGES[img_id]
        assert a.hw == (h, w) and len(a) == n
        np.testing.assert_array_equal(a.scores, [e['score'] for e in es])
        want = mask_util.decode([dict(e['segmentation']) for e in es]).transpose(2, 0, 1)
        np.testing.assert_array_equal(a.decode(), want.astype(bool))
        _assert_same(a, b)
    # an empty file is an image without proposals; an image absent from a results
    # file is an error (test_single_file_errors_name_the_file_and_image)
    empty = by_dir(_image(3))
    assert len(empty) == 0 and empty.hw == (8, 8)


def test_index_spans_bytes_of_each_image(ann_file: Path, entries: dict,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    spans = precomputed.build_index(ann_file)
    assert set(spans) == {'1', 'ñandú'}  # image 3 has no entries
    assert len(spans['1']) == 2 and len(spans['ñandú']) == 1
    data = ann_file.read_bytes()
    for key, img_id in (('1', 1), ('ñandú', 'ñandú')):
        got = [e for s, t in spans[key] for e in json.loads(b'[' + data[s:t] + b']')]
        assert got == entries[img_id]
    monkeypatch.setattr(precomputed, '_CHUNK', 5)  # objects and separators across chunks
    assert precomputed.build_index(ann_file) == spans


def test_single_file_is_indexed_once_and_cached(ann_file: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    build = precomputed.build_index
    monkeypatch.setattr(precomputed, 'build_index', lambda p: calls.append(p) or build(p))
    src = PrecomputedProposals(ann_file=str(ann_file))
    assert not calls  # nothing is read until the first image
    first = src(_image(1))
    src(_image('ñandú'))
    assert len(calls) == 1
    cache = ann_file.with_name('results.json.index.json')
    assert cache.is_file()
    _assert_same(PrecomputedProposals(ann_file=str(ann_file))(_image(1)), first)
    assert len(calls) == 1  # a new source (another process) reads the cached index
    ann_file.write_text('[]')  # a changed file invalidates the cache
    with pytest.raises(ProposalError, match='no proposals for'):
        PrecomputedProposals(ann_file=str(ann_file))(_image(1))
    assert len(calls) == 2


def test_index_without_writable_cache(ann_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args, **kwargs):
        raise PermissionError('read-only')
    monkeypatch.setattr(precomputed, 'atomic_write', fail)
    assert len(PrecomputedProposals(ann_file=str(ann_file))(_image(1))) == 4


def test_max_per_image_keeps_the_best(root: Path, ann_file: Path, entries: dict) -> None:
    best = sorted((e['score'] for e in entries[1]), reverse=True)[:2]
    for kw in (dict(root=str(root)), dict(ann_file=str(ann_file))):
        p = PrecomputedProposals(max_per_image=2, **kw)(_image(1))
        np.testing.assert_array_equal(p.scores, best)
        assert len(PrecomputedProposals(max_per_image=2, **kw)(_image('ñandú'))) == 2


def test_gzipped_per_image_file(tmp_path: Path, entries: dict) -> None:
    with gzip.open(tmp_path / '2007_000032.json.gz', 'wt') as f:
        json.dump(entries[1], f)
    assert len(PrecomputedProposals(root=str(tmp_path))(_image(1))) == 4


def test_built_from_the_registry(root: Path, ann_file: Path) -> None:
    src = PROPOSAL_SOURCES.build(dict(type='precomputed', root=str(root), max_per_image=3))
    assert isinstance(src, PrecomputedProposals) and len(src(_image(1))) == 3
    src = PROPOSAL_SOURCES.build(dict(type='precomputed', ann_file=str(ann_file)))
    assert len(src(_image(1))) == 4


def test_needs_exactly_one_of_root_and_ann_file(root: Path, ann_file: Path) -> None:
    with pytest.raises(ValueError, match='exactly one'):
        PrecomputedProposals()
    with pytest.raises(ValueError, match='exactly one'):
        PrecomputedProposals(root=str(root), ann_file=str(ann_file))


def _raises(src: PrecomputedProposals, image: dict, *parts: str) -> str:
    """The one-line ProposalError message, checked to contain each part."""
    with pytest.raises(ProposalError) as e:
        src(image)
    msg = str(e.value)
    assert '\n' not in msg
    for part in parts:
        assert part in msg, msg
    return msg


def test_per_image_errors_name_the_file(root: Path, entries: dict) -> None:
    src = PrecomputedProposals(root=str(root))
    missing = dict(_image(1), img_path='/data/JPEGImages/nope.jpg')
    _raises(src, missing, 'not found', 'nope.jpg',
            *(str(root / f'nope{suffix}') for suffix in ('.segments', '.json', '.json.gz')))

    path = root / '2007_000032.json'
    text = path.read_text()
    path.write_text(text[:len(text) // 2])
    _raises(src, _image(1), str(path), 'not valid JSON')

    path.write_text(json.dumps(entries[1]))
    _raises(src, dict(_image(1), height=10), str(path), 'mask size [9, 7] != image size [10, 7]')

    path.write_text(json.dumps({'proposals': entries[1]}))
    _raises(src, _image(1), str(path), 'expected a JSON list')

    path.write_text(json.dumps([{k: v for k, v in entries[1][0].items() if k != 'score'}]))
    _raises(src, _image(1), str(path), 'proposal 0 needs')

    gz = root / '2007_000039.json.gz'
    (root / '2007_000039.json').unlink()
    gz.write_bytes(gzip.compress(b'[]')[:-6])
    _raises(src, _image(3), str(gz), 'not valid JSON')


def test_single_file_errors_name_the_file_and_image(ann_file: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    src = PrecomputedProposals(ann_file=str(ann_file))
    _raises(src, dict(_image(1), img_id=42), str(ann_file), 'image_id 42', 'no proposals for')
    _raises(src, _image(3), str(ann_file), 'image_id 3', '2007_000039.jpg')
    _raises(src, dict(_image(1), width=8), str(ann_file), 'image_id 1', '!= image size [9, 8]')
    no_id = {k: v for k, v in _image(1).items() if k != 'img_id'}
    _raises(src, no_id, str(ann_file), 'needs the image id')

    missing = tmp_path / 'missing.json'
    _raises(PrecomputedProposals(ann_file=str(missing)), _image(1), str(missing), 'not found')

    monkeypatch.setattr(precomputed, '_CHUNK', 16)  # also as the scan reads in pieces
    data = ann_file.read_bytes()
    for cut in (len(data) - 2, len(data) // 2, 1, 0):
        bad = tmp_path / f'cut{cut}.json'
        bad.write_bytes(data[:cut])
        _raises(PrecomputedProposals(ann_file=str(bad)), _image(1), str(bad), 'truncated')
    for text, why in (('{"image_id": 1}', 'expected "["'), ('[1, 2]', 'expected an object'),
                      ('[{"image_id": 1} {"image_id": 1}]', 'expected "," or "]"'),
                      ('[{"image_id": 1},]', 'expected an object'),
                      ('[{"score": 1}]', 'has no "image_id"'),
                      ('[{"image_id": 1, "score": x}, ' + '{"image_id": 2}, ' * 999 + '{}]',
                       'Expecting value at byte 26')):
        bad = tmp_path / 'bad.json'
        bad.write_text(text)
        bad.with_name('bad.json.index.json').unlink(missing_ok=True)
        _raises(PrecomputedProposals(ann_file=str(bad)), _image(1), str(bad), why)


def test_empty_single_file(tmp_path: Path) -> None:
    path = tmp_path / 'empty.json'
    path.write_text(' [ ] \n')
    assert precomputed.build_index(path) == {}
    _raises(PrecomputedProposals(ann_file=str(path)), _image(1), str(path), 'no proposals')
