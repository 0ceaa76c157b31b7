# The demo's fully supervised Mask R-CNN on the hard built-in variant.
_base_ = './mask-rcnn_r18_shapes_full.py'

data_root = 'data/shapes-hard/'
metainfo = dict(classes=('ring', 'crescent', 'bar', 'arrow', 'frame'))
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
test_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
val_evaluator = dict(ann_file=data_root + 'annotations/val_instances.json')
test_evaluator = dict(ann_file=data_root + 'annotations/test_instances.json')
