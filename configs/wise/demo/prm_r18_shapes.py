# PRM classifier on the built-in shapes data, sized for a 2-core CPU: a
# from-scratch, half-width ResNet-18 whose last stage is dilated (stride 16,
# as fine peaks need small strides; no weights can be downloaded here, so
# BatchNorm trains and the backbone gets the full lr), 128 px images, AdamW.
# Same data path and metrics as real VOC.
_base_ = '../prm_r50_voc.py'

classes = ('circle', 'square', 'triangle', 'star', 'cross')
data_root = 'data/shapes/'
metainfo = dict(classes=classes)
image_size = 128

model = dict(
    backbone=dict(depth=18, base_channels=32, strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2),
                  norm_eval=False, init_cfg=None),
    num_classes=len(classes),
    in_channels=256,
    sub_pixel_scale=4)  # test_cfg: WISE's peak_thr 30 suits these maps too

train_pipeline = [
    dict(type='LoadImageChecked', backend_args=None),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackImageLabels'),
]
test_pipeline = [
    dict(type='LoadImageChecked', backend_args=None),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=False),
    dict(type='PackImageLabels'),
]
train_dataloader = dict(
    num_workers=1,
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/train_labels.json', pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='MultiLabelMAP', ann_file=data_root + 'annotations/val_labels.json'),
    dict(type='PeakLocalisationMetric', ann_file=data_root + 'annotations/val_instances.json'),
]
test_evaluator = val_evaluator

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
