# WISE + Refine on the crowded built-in variant (proposals: data/shapes-crowded/proposals/).
_base_ = './mask-rcnn_r18_shapes-crowded_pseudo.py'

custom_hooks = [dict(type='ProposalRefineHook')]
