# DeepMask on the built-in shapes' train instances, sized for a 2-core CPU: a
# from-scratch, half-width ResNet-18 (BatchNorm trains: there are no ImageNet
# statistics to keep), 64 px windows of 96 px patches, AdamW.
_base_ = ['../_base_/models/deepmask_r50.py', '../_base_/default_runtime.py']

model = dict(
    backbone=dict(depth=18, base_channels=32, norm_cfg=dict(type='BN', requires_grad=True),
                  norm_eval=False, init_cfg=None),
    in_channels=128,
    window=64,
    context=16,
    mask_size=32,
    # objects of 13-97 px (the shapes' 1st-99th percentile is 18-56) in 128 px images
    test_cfg=dict(scales=(-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5)))
train_dataloader = dict(
    batch_size=32,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='DeepMaskPatches', data_root='data/shapes/',
                 ann_file='annotations/train_instances.json',
                 data_prefix=dict(img='JPEGImages/'), window=64, context=16, label_size=64))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=3000, val_interval=3000)
val_cfg = val_dataloader = val_evaluator = None
test_cfg = test_dataloader = test_evaluator = None
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=3000,
                        eta_min=1e-5)]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=1000, max_keep_ckpts=1),
                     logger=dict(interval=50))
log_processor = dict(by_epoch=False)
