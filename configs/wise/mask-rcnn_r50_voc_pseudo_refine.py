# WISE + Refine: at test time each predicted mask becomes the object proposal of highest
# IoU with it, label and score kept. Proposals: <data_root>/proposals/, one
# deepmask/SharpMask-style json per image at its original size (or tools/gen_proposals.py's).
_base_ = './mask-rcnn_r50_voc_pseudo.py'

custom_hooks = [dict(type='ProposalRefineHook')]
