# DeepMask as the released facebookresearch/deepmask builds it ("DeepMask-ours"): an
# ImageNet ResNet-50 up to its stride-16 stage, BatchNorm frozen (statistics and affine
# terms), a 1x1 reduction to 128, a 512-d embedding of the central 160 px window of a
# 192 px patch, a 56 x 56 mask head and an objectness head. Its 3x3 convs pad with
# zeros where the released trunk mirrors the edge pixel.
model = dict(
    type='DeepMask',
    data_preprocessor=dict(type='ImgDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375]),
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=3,
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(2, ),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    in_channels=1024,
    window=160,
    context=16,
    mask_size=56,
    score_weight=1 / 32)
