# PRM classifier (Zhou et al., CVPR 2018): ImageNet ResNet-50 whose BatchNorm keeps its
# ImageNet statistics while its affine weights train, 1x1 conv class response maps
# upsampled x8 (sub-pixel peaks), 3x3 peak stimulation above the class median, class
# score = mean of the peaks; VOC's 20 classes.
model = dict(
    type='PRMClassifier',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(3, ),
        frozen_stages=-1,
        # BatchNorm: affine weights train (requires_grad), statistics frozen (norm_eval).
        # WISE's code freezes both (requires_grad=False); PRM's trains both
        # (norm_eval=False). docs/fidelity.md
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    num_classes=20,
    in_channels=2048,
    sub_pixel_scale=8,
    win_size=3,
    peak_filter='median',
    peak_grad='prm',  # PRM's released backward: every peak gets the whole gradient
    # WISE's code keeps every class (score >= 0) and peaks whose upsampled
    # response reaches 30; lower peak_thr if your maps are on another scale.
    test_cfg=dict(score_thr=0.0, peak_thr=30.0, with_prm=False))
