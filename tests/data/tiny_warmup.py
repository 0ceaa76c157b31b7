# ./tiny_full.py for 8 iterations, its lr warming up linearly over all of them and a
# checkpoint after each: a schedule a resumed run must restore to go on as if uninterrupted.
_base_ = './tiny_full.py'

train_cfg = dict(max_iters=8)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=8)]
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=10))
