"""Class-agnostic object proposals for pseudo masks and test-time refinement."""
from .base import PROPOSAL_SOURCES, ProposalError, Proposals, ProposalSource

__all__ = ['PROPOSAL_SOURCES', 'ProposalError', 'ProposalSource', 'Proposals']
