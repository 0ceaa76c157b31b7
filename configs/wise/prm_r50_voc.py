# PRM classifier (Zhou et al., CVPR 2018) as stage 1 of WISE, trained from
# image-level labels only. PRM's recipe: ImageNet ResNet-50 with BatchNorm
# frozen, 1x1 conv class response maps upsampled x8 (sub-pixel peaks), 3x3 peak
# stimulation above the median, 448 px, flips, batch 16, 20 epochs, SGD lr 0.01
# (backbone 0.01x), momentum 0.9, weight decay 1e-4.
_base_ = 'mmdet::_base_/default_runtime.py'
custom_imports = dict(imports=['projects.wise'], allow_failed_imports=False)

classes = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat',
           'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person',
           'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor')
data_root = 'data/VOCdevkit/VOC2012/'
metainfo = dict(classes=classes)
image_size = 448

model = dict(
    type='PRMClassifier',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(3, ),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    num_classes=len(classes),
    in_channels=2048,
    sub_pixel_scale=8,
    win_size=3,
    peak_filter='median',
    # WISE's code keeps every class (score >= 0) and peaks whose upsampled
    # response reaches 30; lower peak_thr if your maps are on another scale.
    test_cfg=dict(score_thr=0.0, peak_thr=30.0, with_prm=False))

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
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='ImageLabelDataset',
        data_root=data_root,
        metainfo=metainfo,
        # image-level labels of SBD + VOC train (10,582 images): nothing else.
        ann_file='annotations/train_aug_labels.json',
        data_prefix=dict(img='JPEGImages/'),
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ImageLabelDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/val_labels.json',
        data_prefix=dict(img='JPEGImages/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# Classification mAP, and how well peaks find objects (GT used only to score).
val_evaluator = [
    dict(type='MultiLabelMAP', ann_file=data_root + 'annotations/val_labels.json'),
    dict(type='PeakLocalisationMetric', ann_file=data_root + 'annotations/val_instances.json'),
]
test_evaluator = val_evaluator

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=20, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.01)}))
param_scheduler = []  # PRM trains at a constant learning rate
# finite_loss: stop at a NaN/inf loss before a checkpoint of it is written
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2,
                                     backend_args=dict(backend='atomic_local')),
                     finite_loss=dict(type='FiniteLossHook'))
auto_scale_lr = dict(enable=False, base_batch_size=16)
