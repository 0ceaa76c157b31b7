# WISE with SOLOv2 on the built-in shapes data: the demo Mask R-CNN's data, schedule,
# metric and refine hook (./mask-rcnn_r18_shapes_pseudo.py), and ../solov2_r50_voc_pseudo.py's
# model at the demo's size: the from-scratch half-width ResNet-18 and 64-channel FPN of
# the demo Mask R-CNN, SOLOv2-light's two stacked convs, and COCO's scale ranges scaled
# from ~800 px to the demo's 128 px. Boxes are not scored, as in ../solov2_r50_voc_pseudo.py.
_base_ = ['./mask-rcnn_r18_shapes_pseudo.py', '../_base_/models/solov2_head.py']

channels = 64
model = dict(
    _base_.solov2,
    _delete_=True,
    data_preprocessor=_base_.model.data_preprocessor,
    backbone=_base_.model.backbone,
    neck=_base_.model.neck,
    mask_head=dict(
        _base_.solov2.mask_head,
        num_classes=5,
        in_channels=channels,
        feat_channels=128,
        stacked_convs=2,
        scale_ranges=((1, 16), (8, 32), (16, 64), (32, 128), (64, 2048)),
        mask_feature_head=dict(_base_.solov2.mask_head.mask_feature_head,
                               feat_channels=channels, out_channels=channels)))
val_evaluator = dict(metric='segm', score_thr=_base_.solov2.test_cfg.score_thr)
test_evaluator = val_evaluator
