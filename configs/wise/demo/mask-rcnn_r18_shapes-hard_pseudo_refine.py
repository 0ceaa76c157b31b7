# WISE + Refine on the hard built-in variant (proposals: data/shapes-hard/proposals/).
_base_ = './mask-rcnn_r18_shapes-hard_pseudo.py'

custom_hooks = [dict(type='ProposalRefineHook')]
