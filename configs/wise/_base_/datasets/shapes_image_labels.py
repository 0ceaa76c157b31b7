# The built-in shapes data as image-level labels: VOC's loaders and metrics
# (./voc_image_labels.py) moved to the shapes' folder, classes and 128 px images
# (projects/wise/datasets/shapes_config.py). val chooses options and checkpoints; the
# held-out test split is what gets reported.
_base_ = './voc_image_labels.py'
from projects.wise.datasets.shapes_config import on_shapes  # noqa: E402

(data_root, metainfo, train_pipeline, test_pipeline, train_dataloader, val_dataloader,
 test_dataloader, val_evaluator, test_evaluator) = on_shapes(_base_)
