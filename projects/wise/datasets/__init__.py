"""Datasets and the VOC on-disk layout."""
from .image_label_dataset import ImageLabelDataset
from .transforms import LoadImageChecked, PackImageLabels
from .voc_instance_dataset import NamedCOCO, VOCInstanceDataset

__all__ = ['NamedCOCO', 'VOCInstanceDataset', 'ImageLabelDataset', 'LoadImageChecked',
           'PackImageLabels']
