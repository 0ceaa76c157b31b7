# WISE on the hard built-in variant with soft negatives: a background RoI overlapping no
# pseudo instance (IoU < 0.1) may be an object the pseudo masks missed, and weighs 0.3 in
# the classification loss (projects/wise/detection). Under test, not a pipeline row
# (docs/over_firing.md: WISE (improved) only, 3 seeds; the easy demo not yet measured).
_base_ = './mask-rcnn_r18_shapes-hard_pseudo.py'

model = dict(
    roi_head=dict(bbox_head=dict(type='SoftNegativeBBoxHead')),
    train_cfg=dict(rcnn=dict(sampler=dict(type='FarNegativeSampler', iou_thr=0.1,
                                          far_weight=0.3))))
