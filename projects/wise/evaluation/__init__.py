"""Evaluation: the WISE paper's VOC instance-segmentation metric (AP25/50/75, ABO),
the PRM classifier's classification mAP and peak localisation, and ILC's counting
errors."""
from .counting_metric import CountingMetric
from .prm_metrics import MultiLabelMAP, PeakLocalisationMetric
from .voc_instance_metric import VOCInstanceMetric

__all__ = ['CountingMetric', 'MultiLabelMAP', 'PeakLocalisationMetric', 'VOCInstanceMetric']
