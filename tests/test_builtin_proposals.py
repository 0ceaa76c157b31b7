"""The built-in proposal generator, proposal recall and tools/gen_proposals.py: valid
ranked RLEs that find the shapes, an objectness that puts the whole object above its
parts and merges, per-image files that round-trip, resumable and sharded runs, and
one-line errors that leave earlier outputs untouched."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_util

from projects.wise.errors import DataError, ProposalError
from projects.wise.proposals import (BuiltinProposals, PrecomputedProposals, Proposals,
                                     SegmentProposals)
from projects.wise.proposals.builtin import NUM_EDGE_BINS, contrast_objectness
from projects.wise.proposals.recall import gt_rles, proposal_recall
from projects.wise.registry import PROPOSAL_SOURCES

from conftest import run_tool

TOOL = 'tools/gen_proposals.py'


def _val(shapes_root: Path) -> tuple[list[dict], dict[int, list]]:
    data = json.loads((shapes_root / 'annotations/val_instances.json').read_text())
    anns: dict[int, list] = {}
    for a in data['annotations']:
        anns.setdefault(a['image_id'], []).append(a['segmentation'])
    return data['images'], anns


def _image(shapes_root: Path, im: dict) -> dict:
    return dict(img_path=str(shapes_root / 'JPEGImages' / im['file_name']),
                height=im['height'], width=im['width'], img_id=im['id'])


@pytest.fixture(scope='module')
def val_proposals(shapes_root: Path) -> list[tuple[dict, Proposals]]:
    source = PROPOSAL_SOURCES.build(dict(type='builtin'))
    images, _ = _val(shapes_root)
    return [(im, source(_image(shapes_root, im))) for im in images]


def test_proposals_are_distinct_ranked_masks_of_the_image(val_proposals: list) -> None:
    for im, props in val_proposals:
        hw = (im['height'], im['width'])
        assert props.hw == hw and 0 < len(props) <= 500
        assert all(r['size'] == list(hw) and isinstance(r['counts'], bytes) for r in props.rles)
        assert len({r['counts'] for r in props.rles}) == len(props)
        assert np.isfinite(props.scores).all()
        assert (np.diff(props.scores) <= 0).all()  # best first
        assert props.decode().any(axis=(1, 2)).all()


def test_recall_on_the_tiny_val_split(shapes_root: Path, val_proposals: list) -> None:
    _, anns = _val(shapes_root)
    hits, num_gt = {100: 0, 500: 0}, 0
    for im, props in val_proposals:
        r = proposal_recall(props, gt_rles(anns[im['id']], props.hw), ks=(100, 500))
        num_gt += r['num_gt']
        hits = {k: v + r['hits'][k] for k, v in hits.items()}
    # Measured 1.0 at both (10 instances); bench/run.py tracks the 200-image split.
    assert hits[100] / num_gt >= 0.8 and hits[500] / num_gt >= 0.9


def test_deterministic_and_max_proposals(shapes_root: Path) -> None:
    images, _ = _val(shapes_root)
    image = _image(shapes_root, images[0])
    a, b = BuiltinProposals(max_proposals=20)(image), BuiltinProposals()(image)
    assert len(a) == 20
    assert [r['counts'] for r in a.rles] == [r['counts'] for r in b.rles[:20]]
    assert np.array_equal(a.scores, b.scores[:20])


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """A textured, cluttered background with two touching uniform objects."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:96, :96]
    base = 110 + 25 * np.sin(xx / 5)[..., None] * np.array([1, -0.5, 0.3])
    img = np.clip(base + rng.normal(0, 8, (96, 96, 3)), 0, 255).astype(np.uint8)
    cv2.line(img, (0, 80), (95, 10), (40, 200, 60), 2)
    objects = np.zeros((2, 96, 96), bool)
    objects[0] = (yy - 48) ** 2 + (xx - 35) ** 2 < 18 ** 2
    objects[1] = (abs(yy - 50) < 14) & (xx >= 53) & (xx < 80) & ~objects[0]
    img[objects[0]] = (210, 60, 50)
    img[objects[1]] = (50, 70, 200)
    return img, objects


def test_objectness_ranks_the_whole_object_above_its_parts_and_merges() -> None:
    img, objects = _scene()
    props = BuiltinProposals().from_array(img)
    masks = props.decode()
    gts = mask_util.encode(np.asfortranarray(objects.transpose(1, 2, 0).astype(np.uint8)))
    iou = props.iou(gts)  # 2 x N
    cover = props.covering(np.array([[35.0, 48.0], [70.0, 50.0]]))  # 2 x N
    assert 0 <= props.scores.min() and props.scores.max() <= 1
    for k in range(2):
        # the object, not a merge with its neighbour (its 1-2 px blurred rim may be
        # a sliver of its own: VOC's void band ignores it)
        alone = (masks & objects[1 - k]).sum((1, 2)) < 0.1 * objects[1 - k].sum()
        scores = np.where(cover[k], props.scores, -np.inf)
        assert alone[scores.argmax()] and iou[k, scores.argmax()] > 0.8  # best objectness
        weights = np.where(cover[k], props.scores, 0)  # objectness sampling
        assert weights[alone & (iou[k] > 0.5)].sum() > 0.6 * weights.sum()  # (0.88, 0.69)


def test_contrast_objectness_of_edge_histograms() -> None:
    def hist(counts: dict[int, float]) -> np.ndarray:
        h = np.zeros(NUM_EDGE_BINS, np.float32)
        for b, c in counts.items():
            h[b] = c
        return h
    boundary = np.stack([hist({12: 100}),  # uniform inside a strong closed contour
                         hist({5: 100}),  # no more contrast on the boundary than inside
                         hist({12: 100}),  # two objects: their shared edge inside
                         hist({0: 100}),  # the whole image: only the frame
                         hist({12: 10})])  # a sliver
    inside = np.stack([hist({0: 4000}), hist({5: 4000}), hist({0: 4000, 12: 30}),
                       hist({0: 4000}), hist({0: 4})])
    score = contrast_objectness(boundary, inside, evidence=40)
    assert score[0] == pytest.approx(4000 / 4040, rel=1e-5)
    assert score[1] == 0 and score[3] == 0
    # 30 inside pairs tie with the boundary; they take 2 * 30 / 100 of the uniformity
    assert score[2] == pytest.approx(4000 / 4030 * 0.4 * 4030 / 4070, rel=1e-5)
    assert score[4] < 0.1


def test_flat_and_tiny_images() -> None:
    source = BuiltinProposals()
    flat = source.from_array(np.full((40, 30, 3), 128, np.uint8))
    assert flat.decode().all(axis=(1, 2)).any()  # the whole image, at least
    assert source.from_array(np.zeros((1, 1, 3), np.uint8)).hw == (1, 1)


def test_large_image_is_segmented_at_working_size_masks_at_full_size() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(90, 110, (300, 400, 3), dtype=np.uint8)
    img[100:200, 150:260] = (200, 30, 30)
    props = BuiltinProposals(max_side=128).from_array(img)
    truth = np.zeros((300, 400), np.uint8)
    truth[100:200, 150:260] = 1
    assert props.hw == (300, 400)
    assert props.iou([mask_util.encode(np.asfortranarray(truth))]).max() > 0.9


def test_bad_arguments_and_images(shapes_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match='hsl'):
        BuiltinProposals(colour_spaces=('hsv', 'hsl'))
    with pytest.raises(ValueError, match='5 weights'):
        BuiltinProposals(similarities=((1, 1),))
    with pytest.raises(DataError, match='nope.jpg'):
        BuiltinProposals()(dict(img_path=str(tmp_path / 'nope.jpg'), height=4, width=4))
    image = _image(shapes_root, _val(shapes_root)[0][0])
    with pytest.raises(ProposalError, match=f'{image["img_path"]}: image is 96x96, expected'):
        BuiltinProposals()({**image, 'height': 50})


def test_proposal_recall_counts_only_the_top_k() -> None:
    gt = np.zeros((2, 20, 20), bool)
    gt[0, 2:10, 2:10] = True
    gt[1, 12:18, 12:18] = True
    props = Proposals.from_masks(np.stack([gt[0], ~gt[0], gt[1][::-1]]), [0.1, 0.9, 0.5])
    rles = mask_util.encode(np.asfortranarray(gt.transpose(1, 2, 0).astype(np.uint8)))
    r = proposal_recall(props, rles, ks=(1, 2, 3))
    assert r['num_gt'] == 2 and r['hits'] == {1: 0, 2: 0, 3: 1}
    assert r['recall'][3] == 0.5
    assert proposal_recall(props[:0], rles, ks=(5,))['hits'] == {5: 0}
    assert proposal_recall(props, [], ks=(5,))['num_gt'] == 0


def test_gt_rles_reads_polygons_and_rles() -> None:
    poly = [[2, 2, 8, 2, 8, 8, 2, 8]]
    rle = gt_rles([poly], (10, 10))[0]
    uncompressed = dict(size=[10, 10], counts=[11, 5, 5, 5, 74])
    compressed = mask_util.frPyObjects(uncompressed, 10, 10)
    text = dict(compressed, counts=compressed['counts'].decode())
    out = gt_rles([uncompressed, text], (10, 10))
    assert mask_util.area(rle) > 0
    assert out[0]['counts'] == out[1]['counts'] == compressed['counts']


def test_gen_proposals_shards_resumes_and_round_trips(shapes_root: Path, tmp_path: Path,
                                                      val_proposals: list) -> None:
    ann = shapes_root / 'annotations/val_instances.json'
    out = tmp_path / 'props'
    run_tool(TOOL, '--ann-file', ann, '--out-dir', out, '--shard', '1/2')
    stems = [Path(im['file_name']).stem for im, _ in val_proposals]
    assert sorted(p.stem for p in out.glob('[!.]*')) == stems[1::2]
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob('[!.]*')}

    proc = run_tool(TOOL, '--ann-file', ann, '--out-dir', out, '--recall')
    assert f'{len(stems)}/{len(stems)} images ({len(stems[1::2])} already done' in proc.stdout
    assert {p.name: p.stat().st_mtime_ns for p in out.glob('*.segments')
            if p.name in mtimes} == mtimes
    written = PrecomputedProposals(root=str(out))
    for (im, props), stem in zip(val_proposals, stems):
        loaded = written(dict(img_path=f'{stem}.jpg', height=im['height'], width=im['width']))
        assert isinstance(loaded, SegmentProposals)
        assert loaded.source == str(out / f'{stem}.segments')
        assert np.array_equal(loaded.decode(), props.decode())
        assert np.array_equal(loaded.scores, props.scores)
    report = json.loads((out / 'recall.json').read_text())
    assert report['num_images'] == len(stems) and report['recall']['500'] >= 0.9
    assert not list(out.glob('.*.tmp'))

    # resuming into it with other options would mix two kinds of proposals: refused
    proc = run_tool(TOOL, '--ann-file', ann, '--out-dir', out, '--max-proposals', '7',
                    check=False)
    assert proc.returncode == 1 and f'{out}/.source.json: {out} holds proposals of' in \
        proc.stderr and 'use another --out-dir' in proc.stderr


def test_gen_proposals_bad_image_exits_2_naming_it(shapes_root: Path, tmp_path: Path) -> None:
    ann = shapes_root / 'annotations/val_labels.json'
    images = json.loads(ann.read_text())['images']
    img_root = tmp_path / 'images'
    shutil.copytree(shapes_root / 'JPEGImages', img_root)
    bad = img_root / images[2]['file_name']
    bad.write_bytes(b'not a jpeg')
    out = tmp_path / 'props'
    out.mkdir()
    first = out / f'{Path(images[0]["file_name"]).stem}.json'
    first.write_text('[]')  # an earlier output: skipped, untouched
    proc = run_tool(TOOL, '--ann-file', ann, '--img-root', img_root, '--out-dir', out,
                    '--max-proposals', '10', check=False)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('gen_proposals.py: error:') and str(bad) in last
    assert first.read_text() == '[]'
    second = f'{Path(images[1]["file_name"]).stem}.segments'
    assert sorted(p.name for p in out.glob('[!.]*')) == sorted([first.name, second])


def test_gen_proposals_refuses_colliding_file_stems(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    from tools import gen_proposals as tool
    ann = tmp_path / 'x.json'
    ann.write_text(json.dumps(dict(categories=[], images=[
        dict(id=i, file_name=f'{d}/x.jpg', height=4, width=4) for i, d in enumerate('ab')])))
    assert tool.main(['--ann-file', str(ann), '--out-dir', str(tmp_path / 'out')]) == 1
    assert "share the file stem 'x'" in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


def _drawn(hw: tuple[int, int], ellipse: tuple | None = None, polygon: list | None = None):
    m = np.zeros(hw, np.uint8)
    if ellipse is not None:
        cv2.ellipse(m, ellipse[0], ellipse[1], 0, 0, 360, 1, -1)
    else:
        cv2.fillPoly(m, [np.array(polygon, np.int32)], 1)
    return mask_util.encode(np.asfortranarray(m))


def test_real_photographs_objects_are_among_the_proposals() -> None:
    # would catch: proposals tuned to drawn shapes that miss real objects (a face in a
    # portrait, a cat filling a close-up), or masks of degenerate sizes on photographs
    from skimage import data
    objects = {  # hand-drawn masks of scikit-image's photographs
        'astronaut': dict(face=dict(ellipse=((222, 130), (42, 55))),
                          patch=dict(ellipse=((171, 385), (37, 37)))),
        'chelsea': dict(cat=dict(polygon=[(0, 0), (400, 0), (380, 60), (365, 130),
                                          (350, 200), (330, 300), (0, 300)]),
                        left_eye=dict(ellipse=((172, 115), (37, 30))),
                        right_eye=dict(ellipse=((318, 137), (25, 25))))}
    source = BuiltinProposals()
    for name, drawn in objects.items():
        img = getattr(data, name)()
        hw = img.shape[:2]
        props = source.from_array(img)
        area = props.decode().sum((1, 2)) / (hw[0] * hw[1])
        assert len(props) == 500 and props.hw == hw
        assert area.min() > 2e-4 and np.median(area) < 0.1 and (area > 0.15).any()
        for what, shape in drawn.items():
            best = props.iou([_drawn(hw, **shape)]).max()
            assert best >= 0.5, (name, what, best)  # 0.80 0.93 / 0.81 0.76 0.77
