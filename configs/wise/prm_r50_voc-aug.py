# prm_r50_voc.py trained on the image-level labels of SBD's train_aug (10,582 images:
# SBD train + val + VOC train, less VOC val) instead of VOC 2012 train (1,464).
_base_ = './prm_r50_voc.py'

train_dataloader = dict(dataset=dict(ann_file='annotations/train_aug_labels.json'))
