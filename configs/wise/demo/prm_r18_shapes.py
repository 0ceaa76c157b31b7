# PRM classifier on the built-in shapes data, sized for a 2-core CPU: a from-scratch,
# half-width ResNet-18 whose last stage is dilated (stride 16, as fine peaks need small
# strides; no weights can be downloaded here, so BatchNorm trains and the backbone gets
# the full lr), x4 sub-pixel peaks, 128 px images, AdamW, 8 epochs. Same data path and
# metrics as real VOC.
_base_ = [
    '../_base_/models/prm_r50.py',
    '../_base_/datasets/shapes_image_labels.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(depth=18, base_channels=32, strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2),
                  norm_eval=False, init_cfg=None),
    num_classes=5,
    in_channels=256,
    sub_pixel_scale=4)  # test_cfg: WISE's peak_thr 30 suits these maps too

max_epochs = 8
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min=1e-5),
]
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
