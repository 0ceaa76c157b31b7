# WISE: the fully supervised recipe (Mask R-CNN R-50-FPN, 800/1333, batch 1, SGD lr
# 0.00125, 50K iterations, flips + colour jitter) trained on the pseudo masks of
# tools/gen_pseudo.py instead of ground truth. Evaluation is unchanged.
_base_ = './mask-rcnn_r50_voc_full.py'

train_dataloader = dict(dataset=dict(ann_file='annotations/train_pseudo.json'))

# Test-time refinement (WISE + Refine), listed but off: mask-rcnn_r50_voc_pseudo_refine.py
# or `tools/test.py ... --refine` switch it on.
custom_hooks = [dict(type='ProposalRefineHook', enabled=False)]
