# WISE with SOLOv2 R-50-FPN instead of Mask R-CNN: a single-stage instance segmenter
# (no boxes, no RoIs) trained on the same pseudo masks with the same data, schedule,
# metric and refinement as mask-rcnn_r50_voc_pseudo.py. The model is mmdet's
# solov2_r50_fpn_1x_coco.py: Mask R-CNN's backbone and neck (the same R-50-FPN as mmdet's
# SOLOv2's, defaults filled in) under SOLOv2's head for VOC's 20 classes
# (./_base_/models/solov2_head.py); its lr is the COCO recipe's 0.01 at batch 16, scaled
# to batch 1.
_base_ = ['./mask-rcnn_r50_voc_pseudo.py', './_base_/models/solov2_head.py']

model = dict(_base_.solov2, _delete_=True, data_preprocessor=_base_.model.data_preprocessor,
             backbone=_base_.model.backbone, neck=_base_.model.neck)
optim_wrapper = dict(optimizer=dict(lr=0.01 / 16), clip_grad=dict(max_norm=35, norm_type=2))
# SOLOv2 predicts no boxes (mmdet fills zeros): masks are scored, boxes are not. Its
# scores (focal loss, decayed by matrix NMS) sit far below Mask R-CNN's softmax ones, so
# the protocol's 0.5 cut becomes SOLOv2's own output threshold (test_cfg.score_thr).
val_evaluator = dict(metric='segm', score_thr=_base_.solov2.test_cfg.score_thr)
test_evaluator = val_evaluator
