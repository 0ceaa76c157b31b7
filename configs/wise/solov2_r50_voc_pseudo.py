# WISE with SOLOv2 R-50-FPN instead of Mask R-CNN: a single-stage instance segmenter
# (no boxes, no RoIs) trained on the same pseudo masks with the same data, schedule,
# metric and refinement as mask-rcnn_r50_voc_pseudo.py. The model is mmdet's
# solov2_r50_fpn_1x_coco.py (mmdet ships it only inside a COCO config): its backbone and
# neck are Mask R-CNN's, its head is stated here for VOC's 20 classes; its lr is the COCO
# recipe's 0.01 at batch 16, scaled to batch 1.
_base_ = './mask-rcnn_r50_voc_pseudo.py'

model = dict(
    _delete_=True,
    type='SOLOv2',
    # Mask R-CNN's R-50-FPN (the same as mmdet's SOLOv2's, defaults filled in)
    data_preprocessor={{_base_.model.data_preprocessor}},
    backbone={{_base_.model.backbone}},
    neck={{_base_.model.neck}},
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

optim_wrapper = dict(optimizer=dict(lr=0.01 / 16), clip_grad=dict(max_norm=35, norm_type=2))
# SOLOv2 predicts no boxes (mmdet fills zeros): masks are scored, boxes are not. Its
# scores (focal loss, decayed by matrix NMS) sit far below Mask R-CNN's softmax ones, so
# the protocol's 0.5 cut becomes SOLOv2's own output threshold (test_cfg.score_thr).
val_evaluator = dict(metric='segm', score_thr=0.1)
test_evaluator = val_evaluator
