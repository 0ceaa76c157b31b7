# WISE + Refine: at test time each predicted mask becomes the object proposal
# of highest IoU with it, label and score kept.
_base_ = './mask-rcnn_r50_voc_pseudo.py'

custom_hooks = [
    dict(type='ProposalRefineHook',
         proposals=dict(type='precomputed', root='data/VOCdevkit/VOC2012/proposals/'),
         min_iou=0.0,
         enabled=True),
]
