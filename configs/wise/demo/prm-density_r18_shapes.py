# PRM + Density (ILC, Cholakkal et al. CVPR 2019) on the built-in shapes data: the demo
# PRM's network, data and schedule with ILC's head (../_base_/models/prm-density.py;
# 16 channels, ILC's 3C rounded to even halves), trained from object counts. The spatial
# losses start at epoch 2 of 8 (ILC: 20 of 300), once peaks exist.
_base_ = ['./prm_r18_shapes.py', '../_base_/models/prm-density.py']

# This trunk learns from scratch at the full rate, and the head at 30x: at 1x its
# BN-normalised class maps peak near 7 with near-equal false peaks (16 % of peaks on an
# object); at 30x its peaks are as precise as the PRM's (docs/counts.md). Peak threshold
# 20: ILC's demo.
model = dict(_base_.prm_density, hidden_channels=16)
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=_base_.prm_density_head_lr))
train_dataloader = dict(dataset=dict(with_counts=True))
custom_hooks = [dict(type='SpatialCountLossHook', begin=2)]
