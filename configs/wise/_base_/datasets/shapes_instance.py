# The built-in shapes data (tools/make_shapes_dataset.py, VOC's layout) as instances:
# VOC's pipelines and metric at 128 px, one loader worker for a 2-core CPU. val chooses
# options and checkpoints; the held-out test split is what gets reported.
_base_ = './voc_instance.py'

data_root = 'data/shapes/'
metainfo = dict(classes=('circle', 'square', 'triangle', 'star', 'cross'))
train_pipeline = [dict(t, scale=(128, 128)) if t.type == 'Resize' else t
                  for t in _base_.train_pipeline]
test_pipeline = [dict(t, scale=(128, 128)) if t.type == 'Resize' else t
                 for t in _base_.test_pipeline]
train_dataloader = dict(
    num_workers=1,
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/train_instances.json', pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = dict(
    num_workers=1,
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/test_instances.json', pipeline=test_pipeline))
val_evaluator = dict(ann_file=data_root + 'annotations/val_instances.json')
test_evaluator = dict(ann_file=data_root + 'annotations/test_instances.json')
