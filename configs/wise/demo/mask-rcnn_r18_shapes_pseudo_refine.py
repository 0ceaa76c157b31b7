# WISE + Refine on the built-in shapes data (proposals from tools/gen_proposals.py).
_base_ = './mask-rcnn_r18_shapes_pseudo.py'

custom_hooks = [
    dict(type='ProposalRefineHook',
         proposals=dict(type='precomputed', root='data/shapes/proposals/'),
         min_iou=0.0,
         enabled=True),
]
