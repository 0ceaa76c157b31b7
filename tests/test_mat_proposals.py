"""MCG / COB candidate files (.mat), as the released PRM and CountSeg users have them:
read as proposals, converted into the project's store, bad ones refused by one line."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from projects.wise.errors import ProposalError
from projects.wise.proposals import PrecomputedProposals, SegmentProposals

from conftest import run_tool

H, W = 12, 10


def _candidates(seed: int = 0) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """An MCG-like over-segmentation (ids from 1, one unused) and 6 candidates."""
    rng = np.random.default_rng(seed)
    superpixels = rng.choice([1, 2, 3, 5, 6, 7], size=(H, W)).astype(np.uint32)
    labels = [np.array([1.]), np.array([2., 3.]), np.array([7., 1., 5.]), np.array([6.]),
              np.array([1., 2., 3., 5., 6., 7.]), np.array([3., 3., 2.])]
    return superpixels, labels, rng.random(len(labels))


def _cell(arrays: list[np.ndarray]) -> np.ndarray:
    cell = np.empty((len(arrays), 1), object)
    for i, a in enumerate(arrays):
        cell[i, 0] = a
    return cell


def _image(stem: str = 'img') -> dict:
    return dict(img_id=1, img_path=f'/photos/{stem}.jpg', height=H, width=W)


def test_mcg_cob_and_dense_files_give_the_masks_they_describe(tmp_path: Path) -> None:
    """Bug caught: MCG's 1-based superpixel ids taken as 0-based (every mask shifted by
    one superpixel), a candidate's repeated ids or unsorted lists mis-read, COB's files
    (candidates in one struct) or dense masks not found, scores out of order."""
    superpixels, labels, scores = _candidates()
    expected = np.stack([np.isin(superpixels, ids) for ids in labels])
    mcg = dict(superpixels=superpixels, labels=_cell(labels), scores=scores[:, None])
    forms = {'mcg': mcg, 'cob': dict(candidates=mcg),
             'dense': dict(masks=expected.transpose(1, 2, 0), scores=scores)}
    for name, fields in forms.items():
        scipy.io.savemat(tmp_path / f'{name}.mat', fields)
        props = PrecomputedProposals(root=str(tmp_path))(_image(name))
        assert np.array_equal(props.decode(), expected), name
        assert np.allclose(props.scores, scores), name
        assert isinstance(props, SegmentProposals) == (name != 'dense'), name


def test_gen_proposals_converts_mat_files_into_the_store(tmp_path: Path) -> None:
    """Bug caught: a folder of MCG files that tools/gen_proposals.py cannot turn into the
    project's .segments store (what the refine hook reads per image, ~1 ms each), or
    that it converts into other masks."""
    superpixels, labels, scores = _candidates(1)
    mats = tmp_path / 'mcg'
    mats.mkdir()
    scipy.io.savemat(mats / 'a.mat', dict(superpixels=superpixels, labels=_cell(labels),
                                          scores=scores))
    ann = tmp_path / 'labels.json'
    ann.write_text(json.dumps(dict(images=[dict(id=1, file_name='a.jpg', height=H, width=W)],
                                   annotations=[], categories=[dict(id=1, name='cat')])))
    run_tool('tools/gen_proposals.py', '--ann-file', ann, '--img-root', tmp_path,
             '--out-dir', tmp_path / 'store', '--source', 'precomputed',
             '--source-opts', f'root={mats}')
    stored = SegmentProposals.load(tmp_path / 'store/a.segments', (H, W))
    assert np.array_equal(stored.decode(), np.stack([np.isin(superpixels, i) for i in labels]))
    assert np.allclose(stored.scores, scores)


@pytest.mark.parametrize('case, message', [
    ('truncated', 'not a MATLAB .mat file (truncated or corrupt?)'),
    ('v7.3', "MATLAB v7.3 (HDF5) file, which scipy cannot read: save it again with "
             "save(..., '-v7')"),
    ('no candidates', 'no MCG / COB candidates'),
    ('no scores', 'no "scores"'),
    ('scores', '5 scores for 6 candidates'),
    ('size', 'proposal mask size [12, 10] != image size [12, 11]'),
    ('absent id', 'candidate 2 names no superpixel, or one absent from "superpixels"'),
])
def test_bad_mat_files_are_refused_by_one_line_naming_the_file(tmp_path: Path, case: str,
                                                              message: str) -> None:
    """Bug caught: a corrupt, HDF5 or foreign .mat file failing with scipy's traceback (or,
    worse, read as other masks): an id that no superpixel has would give an empty or
    wrong candidate, a score list of another length a misaligned selection."""
    superpixels, labels, scores = _candidates()
    fields = dict(superpixels=superpixels, labels=_cell(labels), scores=scores)
    path = tmp_path / 'img.mat'
    image = _image()
    if case == 'no candidates':
        fields = dict(boxes=np.zeros((3, 4)))
    elif case == 'no scores':
        del fields['scores']
    elif case == 'scores':
        fields['scores'] = scores[:5]
    elif case == 'size':
        image = dict(image, width=W + 1)
    elif case == 'absent id':
        fields['labels'] = _cell([labels[0], np.array([4.])] + labels[2:])
    scipy.io.savemat(path, fields)
    if case == 'truncated':
        path.write_bytes(path.read_bytes()[:150])
    elif case == 'v7.3':
        path.write_bytes(b'MATLAB 7.3 MAT-file'.ljust(116) + bytes(8) + b'\x00\x02IM' + bytes(64))
    with pytest.raises(ProposalError) as e:
        PrecomputedProposals(root=str(tmp_path))(image)
    assert str(e.value).startswith(f'{path}: ') and message in str(e.value)
    assert '\n' not in str(e.value)
