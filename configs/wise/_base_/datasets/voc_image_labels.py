# PASCAL VOC 2012 images with their image-level labels only (no box or mask), for the
# PRM classifier: VOC's loaders (./voc_instance.py) reading ImageLabelDataset at 448 px,
# flips, batch 16. The classes are ImageLabelDataset's METAINFO (VOC's 20). The val
# split's GT instances only score how well peaks find objects.
_base_ = './voc_instance.py'

dataset_type = 'ImageLabelDataset'
train_pipeline = [
    dict(type='LoadImageChecked', backend_args=None),
    dict(type='Resize', scale=(448, 448), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackImageLabels'),
]
test_pipeline = [
    dict(type='LoadImageChecked', backend_args=None),
    dict(type='Resize', scale=(448, 448), keep_ratio=False),
    dict(type='PackImageLabels'),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=4,
    batch_sampler=None,
    dataset=dict(
        type=dataset_type,
        # image-level labels of VOC 2012 train (1,464 images): nothing else.
        ann_file='annotations/train_labels.json',
        filter_cfg=dict(_delete_=True, filter_empty_gt=True),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    dataset=dict(type=dataset_type, ann_file='annotations/val_labels.json',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader

# Classification mAP, how well peaks find objects, and how well they count them (with
# PRM + Density, also its density maps).
val_evaluator = [
    dict(type='MultiLabelMAP', ann_file=_base_.data_root + 'annotations/val_labels.json'),
    dict(type='PeakLocalisationMetric',
         ann_file=_base_.data_root + 'annotations/val_instances.json'),
    dict(type='CountingMetric', ann_file=_base_.data_root + 'annotations/val_labels.json'),
]
test_evaluator = val_evaluator
