"""Packing for models trained from image-level labels."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform, LoadImageFromFile, to_tensor

from mmdet.registry import TRANSFORMS
from mmdet.structures import DetDataSample

from ..errors import DataError


@TRANSFORMS.register_module()
class LoadImageChecked(LoadImageFromFile):
    """mmcv's LoadImageFromFile, but a missing, empty or undecodable image raises a
    DataError naming the file: mmcv lets OpenCV's assertion or a bare assert
    through, deep inside a data loader worker."""

    def transform(self, results: dict) -> dict | None:
        try:
            return super().transform(results)
        except Exception as e:  # FileNotFoundError, cv2.error, AssertionError, ...
            why = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            raise DataError(f'{results["img_path"]}: cannot load image ({why})') from None


@TRANSFORMS.register_module()
class PackImageLabels(BaseTransform):
    """PackDetInputs for image-level labels: the image and its classes, nothing else.

    Packs ``inputs`` (the CHW uint8 image tensor, contiguous) and a
    :class:`DetDataSample` with the ``meta_keys`` found in the results and, if
    the results hold ``image_labels``, the field ``gt_image_labels``: a
    LongTensor of the 0-based classes present. Unlike PackDetInputs it adds no
    (even empty) ``gt_instances``, so a model cannot mistake missing boxes for
    "no objects"; any box or mask keys in the results are left behind. With
    ``image_counts`` in the results (a dataset's ``with_counts``) it also packs
    ``gt_image_counts``, a LongTensor of the objects of each class in
    ``gt_image_labels``.

    Args:
        meta_keys (Sequence[str]): results keys copied into the sample's
            metainfo when present.
    """

    def __init__(self,
                 meta_keys: Sequence[str] = ('img_id', 'img_path', 'ori_shape', 'img_shape',
                                             'scale_factor', 'flip', 'flip_direction')
                 ) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        packed: dict = {}
        if 'img' in results:
            img = results['img']
            if img.ndim < 3:
                img = img[..., None]
            # as PackDetInputs: the cheaper of the two ways to a contiguous CHW tensor
            if img.flags.c_contiguous:
                packed['inputs'] = to_tensor(img).permute(2, 0, 1).contiguous()
            else:
                packed['inputs'] = to_tensor(np.ascontiguousarray(img.transpose(2, 0, 1)))

        sample = DetDataSample(
            metainfo={k: results[k] for k in self.meta_keys if k in results})
        if 'image_labels' in results:
            sample.gt_image_labels = torch.as_tensor(
                np.asarray(results['image_labels'], dtype=np.int64).reshape(-1))
        if 'image_counts' in results:
            sample.gt_image_counts = torch.as_tensor(
                np.asarray(results['image_counts'], dtype=np.int64).reshape(-1))
        packed['data_samples'] = sample
        return packed

    def __repr__(self) -> str:
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'
