# WISE (SOLOv2) + Refine on train_aug: solov2_r50_voc-aug_pseudo.py with the refine hook on.
_base_ = './solov2_r50_voc-aug_pseudo.py'

custom_hooks = [dict(type='ProposalRefineHook')]
