"""Runner parts: WISE's test-time proposal refinement, a non-finite-loss guard, atomic
checkpoint writes."""
from .atomic_backend import AtomicLocalBackend
from .finite_loss_hook import FiniteLossHook, NonFiniteLossError
from .proposal_refiner import best_proposals, refine
from .refine_hook import ProposalRefineHook, enable_refinement

__all__ = ['AtomicLocalBackend', 'FiniteLossHook', 'NonFiniteLossError', 'ProposalRefineHook',
           'best_proposals', 'enable_refinement', 'refine']
