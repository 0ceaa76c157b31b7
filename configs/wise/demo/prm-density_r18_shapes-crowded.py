# PRM + Density on the crowded built-in variant: the crowded PRM's network and data with
# the demo ILC head, losses, head lr and peak threshold (./prm-density_r18_shapes.py).
_base_ = './prm_r18_shapes-crowded.py'

model = dict(type='PRMDensity', hidden_channels=16, test_cfg=dict(peak_thr=20.0))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    name: dict(lr_mult=30.0)
    for name in ('shared', 'class_branch', 'classifier', 'density_branch', 'density')}))
train_dataloader = dict(dataset=dict(with_counts=True))
custom_hooks = [dict(type='SpatialCountLossHook', begin=2)]
