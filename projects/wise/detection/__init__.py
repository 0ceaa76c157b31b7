"""Parts for the detector trained on pseudo masks: soft negatives, for the objects that
pseudo masks miss."""
from .soft_negatives import FarNegativeSampler, SoftNegativeBBoxHead

__all__ = ['FarNegativeSampler', 'SoftNegativeBBoxHead']
