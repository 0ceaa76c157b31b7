# DeepMask on COCO 2017 train instances, the released recipe: patches of 192 px
# (projects/wise/datasets/deepmask_patches.py), batch 32, SGD momentum 0.9, weight decay
# 5e-4, lr 1e-3 for 50 "epochs" of 4,000 batches, 5e-4 to 120, then 1e-4. The proposals
# of WISE's paper (SharpMask, trained on all of COCO, VOC's classes included).
_base_ = ['./_base_/models/deepmask_r50.py', './_base_/default_runtime.py']

data_root = 'data/coco/'
train_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='DeepMaskPatches', data_root=data_root,
                 ann_file='annotations/instances_train2017.json',
                 data_prefix=dict(img='train2017/'), window=160, context=16, label_size=112,
                 supervision='mask'))
epoch = 4000  # the released code's epoch, in batches
train_cfg = dict(type='IterBasedTrainLoop', max_iters=150 * epoch, val_interval=150 * epoch)
val_cfg = val_dataloader = val_evaluator = None
test_cfg = test_dataloader = test_evaluator = None
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=1e-3, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, milestones=[50 * epoch], gamma=0.5),
    dict(type='MultiStepLR', by_epoch=False, milestones=[120 * epoch], gamma=0.2),
]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=10 * epoch, max_keep_ckpts=3),
                     logger=dict(interval=100))
log_processor = dict(by_epoch=False)
