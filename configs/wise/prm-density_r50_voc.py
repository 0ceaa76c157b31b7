# PRM + Density (ILC, Cholakkal et al. CVPR 2019), as its released code trains it
# (GuoleiSun/CountSeg, VOC 2007 counting config), on VOC 2012's image labels and counts:
# the PRM's ImageNet ResNet-50 with BatchNorm training, no sub-pixel upsampling, a
# shared 1x1 conv to 3C = 60 channels, class and density branches
# (./_base_/models/prm-density.py); SGD lr 0.01 (backbone 0.01x), halved every 50 of 300
# epochs; spatial losses from epoch 20.
_base_ = ['./prm_r50_voc.py', './_base_/models/prm-density.py']

# ILC's released inference (docs/counts.md): classes scoring >= 0.5 (none: every class),
# peaks >= min(20, the kept classes' strongest), no weak-peak fallback, and each instance
# scored by its retrieval score.
model = dict(_base_.prm_density, backbone=dict(norm_eval=False), hidden_channels=60,
             sub_pixel_scale=1,
             test_cfg=dict(_base_.prm_density.test_cfg, score_thr=0.5, score_fallback=True,
                           cap_peak_thr=True, weak_peaks=False, instance_score='selection'))
train_dataloader = dict(dataset=dict(with_counts=True))
max_epochs = 300
train_cfg = dict(max_epochs=max_epochs, val_interval=10)
param_scheduler = [dict(type='StepLR', by_epoch=True, step_size=50, gamma=0.5)]
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=2))
