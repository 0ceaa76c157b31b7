"""WISE: instance segmentation from image-level labels, on MMDetection 3.x.

Importing this package registers its datasets, transforms, models, detector parts,
metrics and hooks into mmdet's registries (configs do it through ``custom_imports``),
and lets torch>=2.6 load mmengine checkpoints safely.
"""
from .utils.checkpoint import allow_mmengine_checkpoints

allow_mmengine_checkpoints()

from . import datasets, detection, engine, evaluation, models, proposals, pseudo  # noqa: E402,F401
