# SOLOv2's head (Wang et al., NeurIPS 2020) and test settings as mmdet's
# solov2_r50_fpn_1x_coco.py states them (mmdet ships them only inside that COCO config),
# for VOC's 20 classes on a 256-channel FPN. A config puts them in place of a Mask R-CNN's
# heads, keeping its preprocessor, backbone and neck; as mmengine lets one base only state
# `model`, they are named `solov2` here:
#   _base_ = ['./mask-rcnn_r50_voc_pseudo.py', './_base_/models/solov2_head.py']
#   model = dict(_base_.solov2, _delete_=True, data_preprocessor=_base_.model.data_preprocessor,
#                backbone=_base_.model.backbone, neck=_base_.model.neck)
solov2 = dict(
    type='SOLOv2',
    mask_head=dict(
        type='SOLOV2Head',
        num_classes=20,
        in_channels=256,
        feat_channels=512,
        stacked_convs=4,
        strides=[8, 8, 16, 32, 32],
        scale_ranges=((1, 96), (48, 192), (96, 384), (192, 768), (384, 2048)),
        pos_scale=0.2,
        num_grids=[40, 36, 24, 16, 12],
        cls_down_index=0,
        mask_feature_head=dict(
            feat_channels=128,
            start_level=0,
            end_level=3,
            out_channels=256,
            mask_stride=4,
            norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)),
        loss_mask=dict(type='DiceLoss', use_sigmoid=True, loss_weight=3.0),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=1.0)),
    test_cfg=dict(nms_pre=500, score_thr=0.1, mask_thr=0.5, filter_thr=0.05,
                  kernel='gaussian', sigma=2.0, max_per_img=100))
