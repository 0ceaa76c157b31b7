# WISE on SBD's train_aug (10,582 images): mask-rcnn_r50_voc_pseudo.py trained on the
# pseudo masks gen_pseudo writes for train_aug with prm_r50_voc-aug.py's PRM.
_base_ = './mask-rcnn_r50_voc_pseudo.py'

train_dataloader = dict(dataset=dict(ann_file='annotations/train_aug_pseudo.json'))
