# WISE + Refine on the built-in shapes data (proposals: data/shapes/proposals/, from
# tools/gen_proposals.py).
_base_ = './mask-rcnn_r18_shapes_pseudo.py'

custom_hooks = [dict(type='ProposalRefineHook')]
