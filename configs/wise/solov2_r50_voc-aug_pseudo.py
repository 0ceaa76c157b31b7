# WISE (SOLOv2) on SBD's train_aug pseudo masks (prm_r50_voc-aug.py's PRM).
_base_ = './solov2_r50_voc_pseudo.py'

train_dataloader = dict(dataset=dict(ann_file='annotations/train_aug_pseudo.json'))
