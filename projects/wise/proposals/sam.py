"""Segment Anything's automatic mask generator as an on-the-fly proposal source.

segment_anything is imported only when a SAMProposals is built, so the project
imports without it. Checkpoints are read with ``weights_only=True``: its own
builder unpickles whatever the file holds.
"""
from __future__ import annotations

import pickle
from typing import Any

import torch

from ..errors import DataError, ProposalError
from ..registry import PROPOSAL_SOURCES
from ..utils.io import read_image
from .base import Proposals, ProposalSource


def load_sam_weights(model: torch.nn.Module, checkpoint: str) -> None:
    """Load a plain state dict (as Meta ships SAM's) without unpickling objects."""
    try:
        state = torch.load(checkpoint, map_location='cpu', weights_only=True)
    except FileNotFoundError:
        raise DataError(f'{checkpoint}: SAM checkpoint not found') from None
    except (pickle.UnpicklingError, RuntimeError, EOFError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f'{checkpoint}: not a loadable SAM state dict ({first})') from None
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:
        raise DataError(f'{checkpoint}: does not fit the SAM model '
                        f'({str(e).strip().splitlines()[0]})') from None


@PROPOSAL_SOURCES.register_module('sam')
class SAMProposals(ProposalSource):
    """SAM masks of the whole image, objectness = predicted IoU x stability score.

    ``model`` replaces the ``model_type`` build (``segment_anything.modeling.Sam``
    of any size, e.g. a small one in tests); ``checkpoint``, when given, is
    loaded into whichever model is used. ``generator_kwargs`` go to
    ``SamAutomaticMaskGenerator`` (points_per_side, pred_iou_thresh, ...);
    its output mode is always COCO RLE, which Proposals keeps as is.
    """

    def __init__(self, checkpoint: str | None = None, model_type: str = 'vit_h',
                 device: str = 'cpu', max_per_image: int | None = None,
                 model: torch.nn.Module | None = None, **generator_kwargs: Any) -> None:
        try:
            from segment_anything import SamAutomaticMaskGenerator, sam_model_registry
        except ImportError:
            raise ImportError('the "sam" proposal source needs segment-anything '
                              '(pip install segment-anything==1.0)') from None
        if model is None:
            if checkpoint is None:
                raise ValueError('SAMProposals needs a checkpoint= (or a model=): '
                                 'randomly initialised SAM gives no useful proposals')
            if model_type not in sam_model_registry:
                raise ValueError(f'unknown SAM model_type {model_type!r}; '
                                 f'one of {sorted(sam_model_registry)}')
            model = sam_model_registry[model_type](checkpoint=None)
        if checkpoint is not None:
            load_sam_weights(model, checkpoint)
        self.model = model.to(device).eval()
        self.max_per_image = max_per_image
        self.generator = SamAutomaticMaskGenerator(
            self.model, **{**generator_kwargs, 'output_mode': 'coco_rle'})

    def __call__(self, image: dict) -> Proposals:
        path = image['img_path']
        img = read_image(path)  # RGB, as SAM expects
        hw = (int(image['height']), int(image['width']))
        if img.shape[:2] != hw:
            raise ProposalError(f'{path}: image is {list(img.shape[:2])} but its record '
                                f'says {list(hw)}')
        records = self.generator.generate(img)
        props = Proposals.from_coco([r['segmentation'] for r in records],
                                    [r['predicted_iou'] * r['stability_score'] for r in records],
                                    hw, str(path))
        return props if self.max_per_image is None else props.top(self.max_per_image)


__all__ = ['SAMProposals', 'load_sam_weights']
