# The demo PRM on the crowded built-in variant (tools/make_shapes_dataset.py --variant
# crowded: 4-12 smaller instances of one or two classes per image). Neighbours a few
# pixels apart need the hard variant's finer maps: stride 8 (16 x 16), threshold 50.
_base_ = './prm_r18_shapes.py'

model = dict(backbone=dict(strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4)),
             test_cfg=dict(peak_thr=50.0))

data_root = 'data/shapes-crowded/'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
# the base's metrics, on this data root's ground truth
val_evaluator = [dict(m, ann_file=m.ann_file.replace(_base_.data_root, data_root))
                 for m in _base_.val_evaluator]
test_evaluator = [dict(m, ann_file=m.ann_file.replace(_base_.data_root, data_root))
                  for m in _base_.test_evaluator]
