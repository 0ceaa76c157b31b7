# DeepMask on COCO 2017 without VOC's 20 classes: proposals for VOC learned from other
# classes only, the honest counterpart of the paper's (trained on all of COCO).
_base_ = './deepmask_r50_coco.py'

VOC_IN_COCO = ('airplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair',
               'cow', 'dining table', 'dog', 'horse', 'motorcycle', 'person', 'potted plant',
               'sheep', 'couch', 'train', 'tv')
train_dataloader = dict(dataset=dict(exclude_classes=VOC_IN_COCO))
