# WISE's Mask R-CNN as its released code trains it (ServiceNow/wise_ils train.py, on
# maskrcnn-benchmark's e2e_mask_rcnn_R_50_FPN_1x): the images at their own size, no flips
# or colour jitter, batch 1, SGD lr 0.00125 for 10 epochs (about 14.6K iterations of VOC
# 2012 train) after its 500-iteration warmup from 1/3, and tested at their own size too;
# its refinement takes only proposals of objectness above 0.75. The paper's recipe
# (./mask-rcnn_r50_voc_pseudo.py, the default) trains at 800/1333 with flips and colour
# jitter for 50K iterations (docs/fidelity.md).
_base_ = './mask-rcnn_r50_voc_pseudo.py'

native = dict(type='Resize', scale_factor=1.0, keep_ratio=True)  # also sets scale_factor
train_pipeline = [native if t.type == 'Resize' else t for t in _base_.train_pipeline
                  if t.type not in ('RandomFlip', 'PhotoMetricDistortion')]
test_pipeline = [native if t.type == 'Resize' else t for t in _base_.test_pipeline]
train_dataloader = dict(sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=10, val_interval=10)
param_scheduler = [
    dict(type='LinearLR', start_factor=1 / 3, by_epoch=False, begin=0, end=500),
]
default_hooks = dict(checkpoint=dict(by_epoch=True, interval=1, max_keep_ckpts=2))
log_processor = dict(by_epoch=True)
custom_hooks = [dict(type='ProposalRefineHook', enabled=False, min_objectness=0.75)]
