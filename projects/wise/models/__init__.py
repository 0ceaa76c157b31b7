"""PRM: peak stimulation, peak backpropagation and the classifiers built on them (PRM,
PRM + Density); DeepMask, a learned class-agnostic proposal network."""
from .deepmask import DeepMask
from .peak_backprop import peak_backprop_mode, peak_response_maps
from .peak_stimulation import PEAK_FILTERS, find_peaks, peak_stimulation
from .prm_classifier import GAPClassifier, PRMClassifier
from .prm_density import PRMDensity

__all__ = ['DeepMask', 'GAPClassifier', 'PEAK_FILTERS', 'PRMClassifier', 'PRMDensity', 'find_peaks',
           'peak_backprop_mode', 'peak_response_maps', 'peak_stimulation']
