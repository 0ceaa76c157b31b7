# WISE: the fully supervised recipe (Mask R-CNN R-50-FPN, 800/1333, batch 1,
# SGD lr 0.00125, 50K iterations, flips + colour jitter) trained on the pseudo
# masks of tools/gen_pseudo.py instead of ground truth. Evaluation is unchanged.
_base_ = './mask-rcnn_r50_voc_full.py'

data_root = 'data/VOCdevkit/VOC2012/'
train_dataloader = dict(dataset=dict(ann_file='annotations/train_aug_pseudo.json'))

# Test-time refinement (WISE + Refine), listed but off: switch it on with
# mask-rcnn_r50_voc_pseudo_refine.py or --cfg-options custom_hooks.0.enabled=True.
# Proposals: one deepmask/SharpMask-style json per image at the original size
# (tools/gen_proposals.py writes the same format from the built-in generator).
custom_hooks = [
    dict(type='ProposalRefineHook',
         proposals=dict(type='precomputed', root=data_root + 'proposals/'),
         min_iou=0.0,
         enabled=False),
]
