"""The project's own registries, beside mmdet's (mmdet/registry.py is the model).

What mmdet builds (models, datasets, transforms, metrics, hooks) registers into mmdet's
registries; these hold what only WISE's tools build from their options. Their scope is
'mmdet', the default scope of the tools and hooks that build them (another scope makes
mmengine warn and fall back on every build); ``locations`` imports the registering
modules on first use, so a registry works without importing the whole package first.
"""
from mmengine.registry import Registry

#: readers of image-level label files (csv, COCO json) into label rows
LABEL_FORMATS = Registry('wise image-label format', scope='mmdet',
                         locations=['projects.wise.datasets.label_files'])
#: class-agnostic proposal sources (builtin, precomputed, sam, deepmask)
PROPOSAL_SOURCES = Registry('wise proposal source', scope='mmdet',
                            locations=['projects.wise.proposals'])
#: how a peak picks its proposal (objectness_sampling, best_objectness, prm_retrieval)
PROPOSAL_SELECTORS = Registry('wise proposal selector', scope='mmdet',
                              locations=['projects.wise.pseudo.selectors'])
