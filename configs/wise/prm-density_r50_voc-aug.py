# prm-density_r50_voc.py trained on SBD's train_aug image labels and counts (10,582
# images) instead of VOC 2012 train (1,464).
_base_ = './prm-density_r50_voc.py'

train_dataloader = dict(dataset=dict(ann_file='annotations/train_aug_labels.json'))
