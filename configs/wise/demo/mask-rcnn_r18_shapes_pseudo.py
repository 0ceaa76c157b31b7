# WISE on the built-in shapes data: the demo Mask R-CNN trained on the pseudo masks
# that tools/gen_pseudo.py wrote for the train split.
_base_ = './mask-rcnn_r18_shapes_full.py'

train_dataloader = dict(dataset=dict(ann_file='annotations/train_pseudo.json'))

# Refinement listed but off, as in ../mask-rcnn_r50_voc_pseudo.py.
custom_hooks = [dict(type='ProposalRefineHook', enabled=False)]
