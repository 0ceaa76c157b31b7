"""PRM: peak stimulation, peak backpropagation and the classifier built on them."""
from .peak_backprop import peak_backprop_mode, peak_response_maps
from .peak_stimulation import PEAK_FILTERS, find_peaks, peak_stimulation
from .prm_classifier import GAPClassifier, PRMClassifier

__all__ = ['GAPClassifier', 'PEAK_FILTERS', 'PRMClassifier', 'find_peaks', 'peak_backprop_mode',
           'peak_response_maps', 'peak_stimulation']
