# mask-rcnn_r50_voc_full.py trained on SBD's train_aug masks (10,582 images) instead of
# VOC 2012 train (1,464). Same schedule (50K iterations).
_base_ = './mask-rcnn_r50_voc_full.py'

train_dataloader = dict(dataset=dict(ann_file='annotations/train_aug_instances.json'))
