# The built-in shapes data (tools/make_shapes_dataset.py, VOC's layout) as image-level
# labels: VOC's pipelines and metrics at 128 px, one loader worker for a 2-core CPU.
# val chooses options and checkpoints; the held-out test split is what gets reported.
_base_ = './voc_image_labels.py'

data_root = 'data/shapes/'
metainfo = dict(classes=('circle', 'square', 'triangle', 'star', 'cross'))
train_pipeline = [dict(t, scale=(128, 128)) if t.type == 'Resize' else t
                  for t in _base_.train_pipeline]
test_pipeline = [dict(t, scale=(128, 128)) if t.type == 'Resize' else t
                 for t in _base_.test_pipeline]
train_dataloader = dict(
    num_workers=1,
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/train_labels.json', pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = dict(
    num_workers=1,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='annotations/test_labels.json',
                 pipeline=test_pipeline))
# the base's metrics, on this data root's ground truth
val_evaluator = [dict(m, ann_file=m.ann_file.replace(_base_.data_root, data_root))
                 for m in _base_.val_evaluator]
test_evaluator = [dict(m, ann_file=m['ann_file'].replace('/val_', '/test_'))
                  for m in val_evaluator]
