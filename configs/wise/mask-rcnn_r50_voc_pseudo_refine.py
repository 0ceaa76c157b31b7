# WISE + Refine: at test time each predicted mask becomes the object proposal
# of highest IoU with it (label and score kept). Proposals at the original
# image size, one deepmask/SharpMask-style json per image (tools/gen_proposals.py
# writes the same format from the built-in generator).
_base_ = './mask-rcnn_r50_voc_pseudo.py'

data_root = 'data/VOCdevkit/VOC2012/'
custom_hooks = [
    dict(type='ProposalRefineHook',
         proposals=dict(type='precomputed', root=data_root + 'proposals/'),
         min_iou=0.0),
]
