# PRM + Density (ILC, Cholakkal et al. CVPR 2019) on the built-in shapes data: the demo
# PRM's network, data and schedule with ILC's head (a shared 1x1 conv, then class and
# density branches; 16 channels, ILC's 3C rounded to even halves), trained from object
# counts. The spatial losses start at epoch 2 of 8 (ILC: 20 of 300), once peaks exist.
_base_ = './prm_r18_shapes.py'

# Its class maps peak near 7 where the PRM's reach 70, so its peak threshold is ILC's
# default, 3, for WISE's 30.
model = dict(type='PRMDensity', hidden_channels=16, test_cfg=dict(peak_thr=3.0))
train_dataloader = dict(dataset=dict(with_counts=True))
custom_hooks = [dict(type='SpatialCountLossHook', begin=2)]
