"""SAMProposals with a tiny randomly initialised SAM (the real ones take minutes on CPU)."""
from __future__ import annotations

import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from projects.wise.errors import DataError, ProposalError
from projects.wise.proposals import SAMProposals
from projects.wise.registry import PROPOSAL_SOURCES

ROOT = Path(__file__).resolve().parents[1]
H, W = 40, 56


def tiny_sam(img_size: int = 64, dim: int = 32) -> torch.nn.Module:
    """SAM's architecture at toy size: 64 px input, one encoder block, 32 channels."""
    from segment_anything.modeling import (ImageEncoderViT, MaskDecoder, PromptEncoder, Sam,
                                           TwoWayTransformer)
    torch.manual_seed(0)
    grid = img_size // 16
    return Sam(
        image_encoder=ImageEncoderViT(
            img_size=img_size, patch_size=16, embed_dim=dim, depth=1, num_heads=2,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), out_chans=dim, use_rel_pos=True,
            window_size=2),
        prompt_encoder=PromptEncoder(embed_dim=dim, image_embedding_size=(grid, grid),
                                     input_image_size=(img_size, img_size), mask_in_chans=4),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3, transformer_dim=dim, iou_head_depth=2,
            iou_head_hidden_dim=dim,
            transformer=TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=dim * 2,
                                          num_heads=2)),
    ).eval()


@pytest.fixture
def image(tmp_path: Path) -> dict:
    rng = np.random.default_rng(0)
    img = np.zeros((H, W, 3), np.uint8)
    img[5:25, 10:40] = (200, 40, 40)
    img += rng.integers(0, 30, img.shape, dtype=np.uint8)
    path = tmp_path / 'im.png'
    Image.fromarray(img).save(path)
    return dict(img_id=7, img_path=str(path), height=H, width=W)


# random weights: no threshold would leave anything to test
LOOSE = dict(points_per_side=4, pred_iou_thresh=0, stability_score_thresh=0)


def test_sam_proposals_are_the_generator_masks_scored_iou_x_stability(image: dict) -> None:
    src = PROPOSAL_SOURCES.build(dict(type='sam', model=tiny_sam(), **LOOSE))
    assert isinstance(src, SAMProposals)
    records = []
    generate = src.generator.generate
    src.generator.generate = lambda img: records.extend(generate(img)) or records

    props = src(image)
    assert len(props) == len(records) > 0
    assert props.hw == (H, W) and props.source == image['img_path']
    np.testing.assert_allclose(
        props.scores, [r['predicted_iou'] * r['stability_score'] for r in records])
    masks = props.decode()
    assert masks.shape == (len(records), H, W)
    np.testing.assert_array_equal(masks.sum((1, 2)), [r['area'] for r in records])

    top = SAMProposals(model=tiny_sam(), max_per_image=2, **LOOSE)(image)
    np.testing.assert_allclose(top.scores, np.sort(props.scores)[::-1][:2])


def test_checkpoint_is_loaded_as_weights_only(image: dict, tmp_path: Path) -> None:
    trained = tiny_sam()
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.5)
    ckpt = tmp_path / 'sam.pth'
    torch.save(trained.state_dict(), ckpt)
    src = SAMProposals(checkpoint=str(ckpt), model=tiny_sam(), **LOOSE)
    for a, b in zip(src.model.state_dict().values(), trained.state_dict().values()):
        torch.testing.assert_close(a, b)

    pickled = tmp_path / 'pickled.pth'
    torch.save({'fn': np.random.default_rng}, pickled)  # an arbitrary object
    with pytest.raises(DataError, match=f'{pickled}: not a loadable SAM state dict'):
        SAMProposals(checkpoint=str(pickled), model=tiny_sam())
    with pytest.raises(DataError, match=f'{ckpt}: does not fit the SAM model'):
        SAMProposals(checkpoint=str(ckpt), model=tiny_sam(dim=16))
    with pytest.raises(DataError, match='not found'):
        SAMProposals(checkpoint=str(tmp_path / 'missing.pth'), model=tiny_sam())
    with pytest.raises(ValueError, match='needs a checkpoint'):
        SAMProposals()


def test_image_size_must_match_its_record(image: dict) -> None:
    src = SAMProposals(model=tiny_sam(), **LOOSE)
    with pytest.raises(ProposalError, match=r'im\.png: image is \[40, 56\] but its record'):
        src(dict(image, height=W, width=H))


def test_project_imports_without_segment_anything() -> None:
    code = ("import sys; sys.modules['segment_anything'] = None\n"
            "from projects.wise.proposals import SAMProposals\n"
            "try:\n    SAMProposals(checkpoint='x.pth')\n"
            "except ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=120).stdout
    assert 'pip install segment-anything' in out
