# Fully supervised Mask R-CNN R-50-FPN on PASCAL VOC 2012: the upper bound of the WISE
# paper (58.9 / 51.4 / 32.4 mask mAP25/50/75 on VOC 2012 val). mmdet's COCO recipe on
# VOC (./_base_/datasets/voc_instance.py: 800/1333, flips + colour jitter) with the
# paper's schedule: batch 1, SGD lr 0.00125, 50K iterations.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    './_base_/datasets/voc_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    './_base_/default_runtime.py',
]

model = dict(roi_head=dict(bbox_head=dict(num_classes=20), mask_head=dict(num_classes=20)))

train_dataloader = dict(batch_size=1, sampler=dict(type='InfiniteSampler'), batch_sampler=None)
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=50000,
                 val_interval=10000)
optim_wrapper = dict(optimizer=dict(lr=0.00125))
# The paper states a constant lr; a short warmup keeps the first steps stable.
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=5000, max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(base_batch_size=1)
