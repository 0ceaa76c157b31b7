"""Class-agnostic object proposals for pseudo masks and test-time refinement."""
from .base import Proposals, ProposalSource
from .builtin import BuiltinProposals
from .deepmask import DeepMaskProposals
from .precomputed import PrecomputedProposals
from .sam import SAMProposals
from .segments import SegmentProposals

__all__ = ['BuiltinProposals', 'DeepMaskProposals', 'PrecomputedProposals', 'ProposalSource',
           'Proposals', 'SAMProposals', 'SegmentProposals']
