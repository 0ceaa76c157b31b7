"""Runner parts: WISE's test-time proposal refinement, a non-finite-loss guard, atomic
checkpoint writes, ILC's second-stage switch."""
from .atomic_backend import AtomicLocalBackend
from .finite_loss_hook import FiniteLossHook
from .proposal_refiner import best_proposals, refine
from .refine_hook import ProposalRefineHook, enable_refinement
from .spatial_count_loss_hook import SpatialCountLossHook

__all__ = ['AtomicLocalBackend', 'FiniteLossHook', 'ProposalRefineHook',
           'SpatialCountLossHook', 'best_proposals', 'enable_refinement', 'refine']
