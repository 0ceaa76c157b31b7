# WISE on the crowded built-in variant: the demo Mask R-CNN on its pseudo masks.
_base_ = './mask-rcnn_r18_shapes-crowded_full.py'

train_dataloader = dict(dataset=dict(ann_file='annotations/train_pseudo.json'))
custom_hooks = [dict(type='ProposalRefineHook', enabled=False)]
