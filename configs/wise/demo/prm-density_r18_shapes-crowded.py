# PRM + Density on the crowded built-in variant: the crowded PRM's network and data with
# the demo ILC head, losses, head lr and peak threshold (./prm-density_r18_shapes.py).
_base_ = ['./prm_r18_shapes-crowded.py', '../_base_/models/prm-density.py']

model = dict(_base_.prm_density, hidden_channels=16)
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=_base_.prm_density_head_lr))
train_dataloader = dict(dataset=dict(with_counts=True))
custom_hooks = [dict(type='SpatialCountLossHook', begin=2)]
