# The demo PRM on the hard built-in variant (tools/make_shapes_dataset.py --variant
# hard: photographs, distractors in class colours, hollow / concave / elongated classes).
# Its classes are thin (rings, frames, bars a few pixels wide): at the demo's stride 16
# (8 x 8 maps) half of their peaks miss the object or fall in its hole, so the last two
# stages are dilated instead (stride 8). The finer maps respond higher and fire more
# often, hence a peak threshold of 50 for WISE's 30 (docs/over_firing.md).
_base_ = './prm_r18_shapes.py'

model = dict(backbone=dict(strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4)),
             test_cfg=dict(peak_thr=50.0))

data_root = 'data/shapes-hard/'
metainfo = dict(classes=('ring', 'crescent', 'bar', 'arrow', 'frame'))
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
test_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
# the base's metrics, on this data root's ground truth
val_evaluator = [dict(m, ann_file=m.ann_file.replace(_base_.data_root, data_root))
                 for m in _base_.val_evaluator]
test_evaluator = [dict(m, ann_file=m.ann_file.replace(_base_.data_root, data_root))
                  for m in _base_.test_evaluator]
