"""Evaluation: the WISE paper's VOC instance-segmentation metric (AP25/50/75, ABO)."""
from .voc_instance_metric import VOCInstanceMetric

__all__ = ['VOCInstanceMetric']
