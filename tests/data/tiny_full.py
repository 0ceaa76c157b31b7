# The demo's fully supervised Mask R-CNN (configs/wise/demo/mask-rcnn_r18_shapes_full.py)
# on the tests' tiny data set, trained in seconds: 96 px images without colour jitter,
# batch 2, no loader workers, 4 iterations at a constant lr on the ground-truth instances.
# The data root is $WISE_TEST_DATA (conftest.py's tiny_data sets it), data/shapes/ without.
_base_ = '../../configs/wise/demo/mask-rcnn_r18_shapes_full.py'

data_root = '{{$WISE_TEST_DATA:data/shapes}}/'
train_pipeline = [dict(t, scale=(96, 96)) if t.type == 'Resize' else t
                  for t in _base_.train_pipeline if t.type != 'PhotoMetricDistortion']
test_pipeline = [dict(t, scale=(96, 96)) if t.type == 'Resize' else t
                 for t in _base_.test_pipeline]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline,
                                     ann_file='annotations/train_instances.json'))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, pipeline=test_pipeline,
                                   ann_file='annotations/val_instances.json'))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val_instances.json')
test_evaluator = val_evaluator
train_cfg = dict(max_iters=4, val_interval=100)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2, max_keep_ckpts=5))
