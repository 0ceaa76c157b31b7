# DeepMask on the train masks of the demo variant and four drawn ones (sweep0-3: other
# classes, hollow / concave / elongated outlines, photograph and flat backgrounds): more
# kinds of object than one variant holds, as COCO's 80 classes are for VOC.
_base_ = './deepmask_r18_shapes.py'

train_dataloader = dict(dataset=dict(
    _delete_=True, type='ConcatDataset', ignore_keys=['classes'],
    datasets=[dict(_base_.train_dataloader.dataset, data_root=f'data/{root}/')
              for root in ('shapes', 'shapes-sweep0', 'shapes-sweep1', 'shapes-sweep2',
                           'shapes-sweep3')]))
