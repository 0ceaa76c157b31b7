# PRM + Density on the tests' tiny data set (./tiny_prm.py's network, data and schedule):
# 16 channels, trained from object counts with the spatial losses from epoch 2 of 2, and
# scored on counting too.
_base_ = './tiny_prm.py'

model = dict(type='PRMDensity', hidden_channels=16)
train_dataloader = dict(dataset=dict(with_counts=True))
custom_hooks = [dict(type='SpatialCountLossHook', begin=1)]
val_evaluator = _base_.val_evaluator + [
    dict(type='CountingMetric', ann_file=_base_.data_root + 'annotations/val_labels.json')]
test_evaluator = val_evaluator
