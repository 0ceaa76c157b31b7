# WISE (SOLOv2) + Refine: solov2_r50_voc_pseudo.py with the refine hook on.
_base_ = './solov2_r50_voc_pseudo.py'

custom_hooks = [dict(type='ProposalRefineHook')]
