# Fully supervised Mask R-CNN R-50-FPN on PASCAL VOC 2012: the upper bound of
# the WISE paper (58.9 / 51.4 / 32.4 mask mAP25/50/75 on VOC 2012 val).
# Only what differs from mmdet's COCO recipe is stated here: 20 VOC classes,
# VOC in COCO json (tools/dataset_converters/voc_to_coco.py), and the paper's
# schedule: short side 800 / long 1333, batch 1, SGD lr 0.00125, 50K iterations,
# horizontal flip + colour jitter.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['projects.wise'], allow_failed_imports=False)

classes = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat',
           'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person',
           'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor')
data_root = 'data/VOCdevkit/VOC2012/'
metainfo = dict(classes=classes)

model = dict(
    roi_head=dict(
        bbox_head=dict(num_classes=len(classes)),
        mask_head=dict(num_classes=len(classes))))

train_pipeline = [
    dict(type='LoadImageChecked', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=1,
    num_workers=2,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(
        type='VOCInstanceDataset',
        data_root=data_root,
        metainfo=metainfo,
        # SBD + VOC train (10,582 images); 'train_instances.json' for VOC's 1,464.
        ann_file='annotations/train_aug_instances.json',
        data_prefix=dict(img='JPEGImages/'),
        pipeline=train_pipeline))
# mmdet's test pipeline with the checked loader (a bad image names itself)
test_pipeline = [
    dict(type='LoadImageChecked', backend_args=None),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
val_dataloader = dict(
    dataset=dict(
        type='VOCInstanceDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/val_instances.json',
        data_prefix=dict(img='JPEGImages/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# The paper's metric: mask AP at IoU 0.25/0.5/0.75 + ABO, VOC void ignored,
# predictions under score 0.5 dropped (as the authors' evaluation did).
val_evaluator = dict(
    _delete_=True,
    type='VOCInstanceMetric',
    ann_file=data_root + 'annotations/val_instances.json',
    metric=('segm', 'bbox'))
test_evaluator = val_evaluator

max_iters = 50000
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=10000)
optim_wrapper = dict(optimizer=dict(lr=0.00125))
# The paper states a constant lr; a short warmup keeps the first steps stable.
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
]
# finite_loss: stop at a NaN/inf loss before a checkpoint of it is written
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=5000, max_keep_ckpts=3,
                                     backend_args=dict(backend='atomic_local')),
                     finite_loss=dict(type='FiniteLossHook'))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False, base_batch_size=1)
