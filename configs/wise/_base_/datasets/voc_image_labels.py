# PASCAL VOC 2012 images with their image-level labels only (no box or mask), for the
# PRM classifier: 448 px, flips, batch 16. The classes are ImageLabelDataset's METAINFO
# (VOC's 20). The val split's GT instances only score how well peaks find objects.
dataset_type = 'ImageLabelDataset'
data_root = 'data/VOCdevkit/VOC2012/'
backend_args = None

train_pipeline = [
    dict(type='LoadImageChecked', backend_args=backend_args),
    dict(type='Resize', scale=(448, 448), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackImageLabels'),
]
test_pipeline = [
    dict(type='LoadImageChecked', backend_args=backend_args),
    dict(type='Resize', scale=(448, 448), keep_ratio=False),
    dict(type='PackImageLabels'),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
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
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/val_labels.json',
        data_prefix=dict(img='JPEGImages/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# Classification mAP, and how well peaks find objects.
val_evaluator = [
    dict(type='MultiLabelMAP', ann_file=data_root + 'annotations/val_labels.json'),
    dict(type='PeakLocalisationMetric', ann_file=data_root + 'annotations/val_instances.json'),
]
test_evaluator = val_evaluator
