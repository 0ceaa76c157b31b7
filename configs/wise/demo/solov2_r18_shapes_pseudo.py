# WISE with SOLOv2 on the built-in shapes data: the demo Mask R-CNN's data, schedule,
# metric and refine hook (./mask-rcnn_r18_shapes_pseudo.py), and ../solov2_r50_voc_pseudo.py's
# model at the demo's size: the from-scratch half-width ResNet-18 and 64-channel FPN of
# the demo Mask R-CNN, SOLOv2-light's two stacked convs, and COCO's scale ranges scaled
# from ~800 px to the demo's 128 px.
_base_ = './mask-rcnn_r18_shapes_pseudo.py'

channels = 64
model = dict(
    _delete_=True,
    type='SOLOv2',
    data_preprocessor={{_base_.model.data_preprocessor}},
    backbone={{_base_.model.backbone}},
    neck={{_base_.model.neck}},
    mask_head=dict(
        type='SOLOV2Head',
        num_classes=5,
        in_channels=channels,
        feat_channels=128,
        stacked_convs=2,
        strides=[8, 8, 16, 32, 32],
        scale_ranges=((1, 16), (8, 32), (16, 64), (32, 128), (64, 2048)),
        pos_scale=0.2,
        num_grids=[40, 36, 24, 16, 12],
        cls_down_index=0,
        mask_feature_head=dict(
            feat_channels=channels,
            start_level=0,
            end_level=3,
            out_channels=channels,
            mask_stride=4,
            norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)),
        loss_mask=dict(type='DiceLoss', use_sigmoid=True, loss_weight=3.0),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=1.0)),
    test_cfg=dict(nms_pre=500, score_thr=0.1, mask_thr=0.5, filter_thr=0.05,
                  kernel='gaussian', sigma=2.0, max_per_img=100))

# SOLOv2 predicts no boxes (mmdet fills zeros): masks are scored, boxes are not. Its
# scores (focal loss, decayed by matrix NMS) sit far below Mask R-CNN's softmax ones, so
# the protocol's 0.5 cut becomes SOLOv2's own output threshold (test_cfg.score_thr).
val_evaluator = dict(metric='segm', score_thr=0.1)
test_evaluator = val_evaluator
