# DeepMask taught by boxes only: every object's mask is its filled box ("DeepMask,
# bounding box" of the WISE paper's table, after Khoreva et al.'s "Simple Does It").
_base_ = './deepmask_r50_coco.py'

train_dataloader = dict(dataset=dict(supervision='box'))
