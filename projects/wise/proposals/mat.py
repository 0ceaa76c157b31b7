"""MCG / COB proposal files (.mat), as users of the released PRM and CountSeg code have them.

MCG's and COB's candidate files hold an over-segmentation ``superpixels`` (H x W, ids
from 1), each candidate's superpixel ids ``labels`` (a cell array) and ``scores``, at the
top level or in one struct (``candidates``). They become :class:`SegmentProposals` as
they are: one over-segmentation, each candidate a set of its leaves, so selection and
refinement count over superpixels as with the built-in proposals. A file holding dense
``masks`` (H x W x N logical) and ``scores`` is read too.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from ..errors import ProposalError
from .base import Proposals
from .segments import SegmentProposals


def _fields(path: Path) -> dict[str, Any]:
    """The file's variables, or those of the one struct that holds the candidates."""
    try:
        data = scipy.io.loadmat(path, simplify_cells=True)
    except NotImplementedError:  # scipy's answer to HDF5-based .mat files
        raise ProposalError(f'{path}: a MATLAB v7.3 (HDF5) file, which scipy cannot read: '
                            "save it again with save(..., '-v7')") from None
    except (scipy.io.matlab.MatReadError, OSError, ValueError, TypeError, IndexError,
            KeyError) as e:
        raise ProposalError(f'{path}: not a MATLAB .mat file (truncated or corrupt?): '
                            f'{e}') from None
    if 'superpixels' in data or 'masks' in data:
        return data
    structs = [v for v in data.values()
               if isinstance(v, dict) and ('superpixels' in v or 'masks' in v)]
    if len(structs) != 1:
        raise ProposalError(f'{path}: no MCG / COB candidates (superpixels, labels and '
                            'scores, or masks and scores) in the file')
    return structs[0]


def _scores(path: Path, fields: dict[str, Any], n: int) -> np.ndarray:
    if 'scores' not in fields:
        raise ProposalError(f'{path}: no "scores": the selection weighs candidates by '
                            'their objectness')
    scores = np.asarray(fields['scores'], np.float64).reshape(-1)
    if len(scores) != n or not np.isfinite(scores).all():
        raise ProposalError(f'{path}: {len(scores)} scores for {n} candidates, or not '
                            'all finite')
    return scores


def read_mat(path: Path, hw: tuple[int, int]) -> Proposals:
    """One image's candidates, checked against its size; ProposalError naming the file
    where it is unreadable or inconsistent."""
    fields = _fields(path)
    if 'superpixels' not in fields:
        masks = np.asarray(fields['masks'], bool)
        masks = masks[..., None] if masks.ndim == 2 else masks
        if masks.shape[:2] != tuple(hw):
            raise ProposalError(f'{path}: proposal mask size {list(masks.shape[:2])} != '
                                f'image size {list(hw)}')
        scores = _scores(path, fields, masks.shape[2])
        return Proposals.from_masks(masks.transpose(2, 0, 1), scores, str(path))
    superpixels = np.asarray(fields['superpixels'])
    if superpixels.shape != tuple(hw):
        raise ProposalError(f'{path}: proposal mask size {list(superpixels.shape)} != '
                            f'image size {list(hw)}')
    ids, atoms = np.unique(superpixels, return_inverse=True)
    labels = fields.get('labels', [])
    if np.isscalar(labels) or isinstance(labels, np.ndarray) and labels.dtype != object:
        labels = [labels]  # a one-candidate cell array comes out as its ids
    scores = _scores(path, fields, len(labels))
    leaf_sets = []
    for i, members in enumerate(labels):
        members = np.unique(np.asarray(members).reshape(-1))
        at = np.searchsorted(ids, members)
        if not len(members) or (at >= len(ids)).any() or (ids[np.minimum(at, len(ids) - 1)]
                                                           != members).any():
            raise ProposalError(f'{path}: candidate {i + 1} names no superpixel, or one '
                                'absent from "superpixels"')
        leaf_sets.append(at)
    leaf_of = np.arange(len(ids))[:, None]
    return SegmentProposals.from_leaf_sets(atoms.reshape(hw), leaf_of, leaf_sets, scores,
                                           str(path))
