# PRM + Density (ILC, Cholakkal et al. CVPR 2019) for a PRM classifier config
# (./prm_r50.py's model): ILC's head (PRMDensity: a shared 1x1 conv to hidden_channels,
# ILC's 3C, then class and density branches) trained from image labels and object counts.
# mmengine lets one base only state `model` and the data, so a config lists this file
# beside its PRM config and takes the head from here:
#   model = dict(_base_.prm_density, hidden_channels=60)
#   train_dataloader = dict(dataset=dict(with_counts=True))
prm_density = dict(type='PRMDensity', test_cfg=dict(peak_thr=20.0))  # ILC's demo threshold
# ILC's spatial losses, switched on once peaks exist (ILC: from epoch 20 of 300)
custom_hooks = [dict(type='SpatialCountLossHook', begin=20)]
# ILC trains its head 100x faster than its ImageNet trunk (the PRM's backbone lr_mult
# 0.01); beside a trunk that learns from scratch at the full rate, 30x (docs/counts.md)
prm_density_head_lr = {
    name: dict(lr_mult=30.0)
    for name in ('shared', 'class_branch', 'classifier', 'density_branch', 'density')}
# ILC's BatchNorm trains (norm_eval=False): on several GPUs (--scale-schedule leaves 2 an
# image each) its statistics are synchronised; mmengine converts the model to SyncBN only
# when distributed, and the CPU launcher (gloo, no SyncBN on CPU) keeps BN
sync_bn = 'torch'
