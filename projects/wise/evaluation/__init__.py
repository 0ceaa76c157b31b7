"""Evaluation: the WISE paper's VOC instance-segmentation metric (AP25/50/75, ABO),
and the PRM classifier's classification mAP and peak localisation."""
from .prm_metrics import MultiLabelMAP, PeakLocalisationMetric
from .voc_instance_metric import VOCInstanceMetric

__all__ = ['VOCInstanceMetric', 'MultiLabelMAP', 'PeakLocalisationMetric']
