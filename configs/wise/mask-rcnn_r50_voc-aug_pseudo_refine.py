# WISE + Refine on train_aug: mask-rcnn_r50_voc-aug_pseudo.py with the refine hook on.
_base_ = './mask-rcnn_r50_voc-aug_pseudo.py'

custom_hooks = [dict(type='ProposalRefineHook')]
