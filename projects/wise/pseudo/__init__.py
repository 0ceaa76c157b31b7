"""Pseudo masks from PRM peaks and class-agnostic proposals (WISE's second stage)."""
from .generator import ImageResult, pseudo_instances
from .labeller import PseudoLabeller, build_split, default_gt_file, instances_twin
from .oracle import GTPoints
from .peak_set import PeakSet, restrict_to_counts, restrict_to_labels
from .peaks import load_prm, prm_peaks
from .relabel import Relabeller, RelabelRule
from .report import summarize
from .selectors import (SUPPRESSED, BestObjectness, ObjectnessSampling, PRMRetrieval,
                        ProposalSelector)
from .shards import Labeller, label_shard, label_split, merge
from .visualization import draw_pseudo_masks, save_pseudo_masks
from .writer import PartsFile, iter_records, parts_path, write_coco

__all__ = ['SUPPRESSED', 'BestObjectness', 'GTPoints', 'ImageResult', 'ObjectnessSampling',
           'PRMRetrieval', 'PartsFile', 'PeakSet', 'ProposalSelector', 'PseudoLabeller',
           'Labeller', 'RelabelRule', 'Relabeller', 'build_split', 'default_gt_file',
           'instances_twin', 'draw_pseudo_masks', 'iter_records', 'label_shard', 'label_split',
           'load_prm', 'merge', 'parts_path', 'prm_peaks', 'pseudo_instances',
           'restrict_to_counts', 'restrict_to_labels', 'save_pseudo_masks', 'summarize',
           'write_coco']
