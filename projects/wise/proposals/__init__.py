"""Class-agnostic object proposals for pseudo masks and test-time refinement."""
from .base import PROPOSAL_SOURCES, ProposalError, Proposals, ProposalSource
from .builtin import BuiltinProposals
from .precomputed import PrecomputedProposals
from .sam import SAMProposals
from .segments import SegmentProposals

__all__ = ['PROPOSAL_SOURCES', 'BuiltinProposals', 'PrecomputedProposals', 'ProposalError',
           'ProposalSource', 'Proposals', 'SAMProposals', 'SegmentProposals']
