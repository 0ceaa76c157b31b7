"""Pseudo masks from PRM peaks and class-agnostic proposals (WISE's second stage)."""
from .generator import ImageResult, pseudo_instances, restrict_to_labels
from .report import summarize
from .selectors import (SELECTORS, BestObjectness, ObjectnessSampling, PeakSet,
                        PRMRetrieval, ProposalSelector)
from .writer import PartsFile, iter_records, parts_path, write_coco

__all__ = ['SELECTORS', 'BestObjectness', 'ImageResult', 'ObjectnessSampling', 'PRMRetrieval',
           'PartsFile', 'PeakSet', 'ProposalSelector', 'iter_records', 'parts_path',
           'pseudo_instances', 'restrict_to_labels', 'summarize', 'write_coco']
