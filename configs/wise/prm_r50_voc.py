# PRM classifier (Zhou et al., CVPR 2018) as stage 1 of WISE, trained from image-level
# labels only (./_base_/datasets/voc_image_labels.py: 448 px, flips, batch 16) with
# PRM's schedule: 20 epochs, SGD lr 0.01 (backbone 0.01x), momentum 0.9, wd 1e-4.
_base_ = [
    './_base_/models/prm_r50.py',
    './_base_/datasets/voc_image_labels.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    './_base_/default_runtime.py',
]

train_cfg = dict(max_epochs=20, val_interval=5)
optim_wrapper = dict(optimizer=dict(lr=0.01),
                     paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.01)}))
param_scheduler = []  # PRM trains at a constant learning rate
default_hooks = dict(checkpoint=dict(interval=5, max_keep_ckpts=2))
