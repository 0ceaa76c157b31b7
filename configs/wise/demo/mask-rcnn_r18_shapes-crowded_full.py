# The demo's fully supervised Mask R-CNN on the crowded built-in variant.
_base_ = './mask-rcnn_r18_shapes_full.py'

data_root = 'data/shapes-crowded/'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
val_evaluator = dict(ann_file=data_root + 'annotations/val_instances.json')
test_evaluator = dict(ann_file=data_root + 'annotations/test_instances.json')
