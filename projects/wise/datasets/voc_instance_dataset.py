"""VOC instances in COCO json (from tools/dataset_converters/voc_to_coco.py)."""
from __future__ import annotations

from collections.abc import Sequence

from mmdet.datasets import CocoDataset
from mmdet.datasets.api_wrappers import COCO
from mmdet.registry import DATASETS

from ..errors import DataError
from ..utils.io import load_coco_json, safe_join
from .image_label_dataset import require_images
from .voc_layout import VOC_CLASSES


class NamedCOCO(COCO):
    """mmdet's COCO API with two fixes that matter once class lists are edited.

    * a missing or truncated file raises a DataError naming it;
    * ``get_cat_ids(cat_names=...)`` answers in the order of the names asked
      for and refuses unknown names (pycocotools answers in file order and
      silently drops unknown names, which shifts every label after them).
    """

    def __init__(self, annotation_file: str | None = None) -> None:
        super().__init__(None)
        self.annotation_file = annotation_file
        if annotation_file is not None:
            self.dataset = load_coco_json(annotation_file)
            self.createIndex()
            self.img_ann_map, self.cat_img_map = self.imgToAnns, self.catToImgs

    def get_cat_ids(self, cat_names: Sequence[str] = (), sup_names: Sequence[str] = (),
                    cat_ids: Sequence[int] = ()) -> list[int]:
        if not cat_names or sup_names or cat_ids:
            return super().get_cat_ids(list(cat_names), list(sup_names), list(cat_ids))
        by_name = {c['name']: c['id'] for c in self.dataset.get('categories', [])}
        unknown = [n for n in cat_names if n not in by_name]
        if unknown:
            raise DataError(f'{self.annotation_file}: classes {unknown} are not among its '
                            f'categories {sorted(by_name)}')
        return [by_name[n] for n in cat_names]


@DATASETS.register_module()
class VOCInstanceDataset(CocoDataset):
    """CocoDataset for VOC-layout data: VOC classes by default, checked loading."""

    METAINFO = dict(classes=VOC_CLASSES, palette=CocoDataset.METAINFO['palette'][:len(VOC_CLASSES)])
    COCOAPI = NamedCOCO

    def parse_data_info(self, raw_data_info: dict) -> dict | list[dict]:
        """CocoDataset's, refusing image names that leave the image folder."""
        safe_join(self.data_prefix['img'], raw_data_info['raw_img_info']['file_name'],
                  self.ann_file)
        return super().parse_data_info(raw_data_info)

    def filter_data(self) -> list[dict]:
        """CocoDataset's, refusing to leave no image at all."""
        skipped_by = None if self.test_mode or not self.data_list else self.filter_cfg
        return require_images(super().filter_data(), self.ann_file, skipped_by)
