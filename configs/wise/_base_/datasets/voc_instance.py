# PASCAL VOC 2012 instances in COCO json (tools/dataset_converters/voc_to_coco.py),
# scored with the WISE paper's metric. The classes are VOCInstanceDataset's METAINFO
# (VOC's 20); for others set metainfo=dict(classes=...) and the heads' num_classes.
dataset_type = 'VOCInstanceDataset'
# VOC_ROOT=/path/to/VOC2012 in the environment moves it (mmengine substitutes it).
data_root = '{{$VOC_ROOT:data/VOCdevkit/VOC2012}}/'
backend_args = None

# mmdet's COCO pipelines with the checked loader (a bad image names itself) and the
# paper's augmentation: horizontal flips and colour jitter.
train_pipeline = [
    dict(type='LoadImageChecked', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageChecked', backend_args=backend_args),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        # VOC 2012 train (1,464 images), the split of the authors' code; the
        # *_voc-aug configs train on SBD's train_aug (10,582).
        ann_file='annotations/train_instances.json',
        data_prefix=dict(img='JPEGImages/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/val_instances.json',
        data_prefix=dict(img='JPEGImages/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

# Mask AP at IoU 0.25/0.5/0.75 + ABO, VOC void ignored, predictions under score 0.5
# dropped (as the authors' evaluation did).
val_evaluator = dict(
    type='VOCInstanceMetric',
    ann_file=data_root + 'annotations/val_instances.json',
    metric=('segm', 'bbox'))
test_evaluator = val_evaluator
