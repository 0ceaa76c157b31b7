# WISE (SOLOv2) + Refine on the built-in shapes data.
_base_ = './solov2_r18_shapes_pseudo.py'

custom_hooks = [dict(type='ProposalRefineHook')]
