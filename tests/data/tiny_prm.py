# The demo PRM (configs/wise/demo/prm_r18_shapes.py) on the tests' tiny data set: 64 px
# images, batch 4, no loader workers, 2 epochs at a constant lr; scored by classification
# mAP and peak localisation. The data root is $WISE_TEST_DATA (conftest.py's tiny_data
# sets it), data/shapes/ without.
_base_ = '../../configs/wise/demo/prm_r18_shapes.py'

data_root = '{{$WISE_TEST_DATA:data/shapes}}/'
train_pipeline = [dict(t, scale=(64, 64)) if t.type == 'Resize' else t
                  for t in _base_.train_pipeline]
test_pipeline = [dict(t, scale=(64, 64)) if t.type == 'Resize' else t
                 for t in _base_.test_pipeline]
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, pipeline=test_pipeline,
                                   ann_file='annotations/val_labels.json'))
test_dataloader = val_dataloader
val_evaluator = [dict(m, ann_file=m.ann_file.replace(_base_.data_root, data_root))
                 for m in _base_.val_evaluator if m.type != 'CountingMetric']
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=2, val_interval=100)
param_scheduler = []
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=5))
