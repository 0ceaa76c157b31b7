"""Pseudo masks from PRM peaks and class-agnostic proposals (WISE's second stage)."""
from .generator import ImageResult, pseudo_instances, restrict_to_labels
from .labeller import PseudoLabeller, build_split, default_gt_file
from .oracle import GTPoints
from .peaks import load_prm, prm_peaks
from .report import summarize
from .run import label_shard, merge
from .selectors import (SELECTORS, SUPPRESSED, BestObjectness, ObjectnessSampling, PeakSet,
                        PRMRetrieval, ProposalSelector)
from .visualization import draw_pseudo_masks, save_pseudo_masks
from .writer import PartsFile, iter_records, parts_path, write_coco

__all__ = ['SELECTORS', 'SUPPRESSED', 'BestObjectness', 'GTPoints', 'ImageResult',
           'ObjectnessSampling', 'PRMRetrieval', 'PartsFile', 'PeakSet', 'ProposalSelector',
           'PseudoLabeller', 'build_split', 'default_gt_file', 'draw_pseudo_masks', 'iter_records',
           'label_shard', 'load_prm', 'merge', 'parts_path', 'prm_peaks', 'pseudo_instances',
           'restrict_to_labels', 'save_pseudo_masks', 'summarize', 'write_coco']
