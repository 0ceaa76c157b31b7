# The demo PRM on the hard built-in variant (tools/make_shapes_dataset.py --variant
# hard: photographs, distractors in class colours, hollow / concave / elongated classes).
_base_ = './prm_r18_shapes.py'

data_root = 'data/shapes-hard/'
metainfo = dict(classes=('ring', 'crescent', 'bar', 'arrow', 'frame'))
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='MultiLabelMAP', ann_file=data_root + 'annotations/val_labels.json'),
    dict(type='PeakLocalisationMetric', ann_file=data_root + 'annotations/val_instances.json'),
]
test_evaluator = val_evaluator
