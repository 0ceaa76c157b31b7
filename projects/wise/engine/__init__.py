"""Runner hooks: WISE's test-time proposal refinement."""
from .proposal_refiner import best_proposals, refine
from .refine_hook import ProposalRefineHook

__all__ = ['ProposalRefineHook', 'best_proposals', 'refine']
