"""Datasets and the VOC on-disk layout; DeepMask's training patches."""
from .deepmask_patches import DeepMaskPatches
from .image_label_dataset import ImageLabelDataset
from .transforms import LoadImageChecked, PackImageLabels
from .voc_instance_dataset import NamedCOCO, VOCInstanceDataset

__all__ = ['DeepMaskPatches', 'NamedCOCO', 'VOCInstanceDataset', 'ImageLabelDataset',
           'LoadImageChecked', 'PackImageLabels']
