# mmdet's runtime with WISE's modules registered, a stop at the first NaN/inf loss
# before a checkpoint of it is written (FiniteLossHook runs ahead of CheckpointHook),
# and checkpoints renamed into place whole, so a full disk never leaves half of one.
_base_ = 'mmdet::_base_/default_runtime.py'
custom_imports = dict(imports=['projects.wise'], allow_failed_imports=False)

default_hooks = dict(checkpoint=dict(backend_args=dict(backend='atomic_local')),
                     finite_loss=dict(type='FiniteLossHook'))
