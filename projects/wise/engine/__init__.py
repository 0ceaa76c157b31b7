"""Runner hooks: WISE's test-time proposal refinement."""
from .proposal_refiner import best_proposals, encode_masks, refine
from .refine_hook import ProposalRefineHook

__all__ = ['ProposalRefineHook', 'best_proposals', 'encode_masks', 'refine']
