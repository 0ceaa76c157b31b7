"""Self-training rounds: the train split labelled again by the detector WISE trained.

A Mask R-CNN trained on pseudo masks finds objects that its labels missed (and taught
as background); labelling the train images again with it, and training again on that,
is the field's answer to such "semantic drift" (BESTIE's self-refinement, CVPR 2022).
The new labels stay held to the image labels (:class:`RelabelRule`): no instance of
an absent class, and a present class the model does not find keeps the previous
round's instances. ``Relabeller`` has ``PseudoLabeller``'s interface, so
``tools/relabel.py`` shards, resumes and reports as gen_pseudo does.
"""
from __future__ import annotations

import copy
import os
import os.path as osp
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from pycocotools import mask as mask_util

from ..errors import DataError, OptionError, ProposalError
from ..proposals import ProposalSource
from ..registry import PROPOSAL_SOURCES
from ..utils.io import load_coco_json
from ..utils.masks import bytes_counts, encode_masks, rle_fields
from .labeller import config_digest, instances_twin, sha256

#: pipeline steps that read annotations, which the images being labelled do not have
_ANNOTATION_LOADERS = ('LoadAnnotations', 'mmdet.LoadAnnotations')


@dataclass(frozen=True)
class RelabelRule:
    """Which of a detector's predictions become an image's new pseudo instances.

    Args:
        score_thr: a prediction scoring less is dropped.
        nms_iou: of kept predictions whose masks overlap by this much (after
            refinement, two predictions of one object may pick the same proposal), the
            best-scored stays, whatever its class; None: every kept prediction stays.
        keep_unmatched: keep the previous instances that no kept prediction overlaps
            by ``match_iou`` (objects the model may have lost), as well.
        match_iou: the overlap at which a prediction accounts for a previous instance.

    Instances are dicts with ``label`` (0-based), ``rle`` and ``score``.
    """

    #: the defaults were chosen on the built-in variants' val splits
    #: (docs/self_training.md, bench/tables/relabel_choice.json)
    score_thr: float = 0.5
    nms_iou: float | None = 0.5
    keep_unmatched: bool = False
    match_iou: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.score_thr <= 1.0:
            raise OptionError(f'score_thr must be in [0, 1], got {self.score_thr}')
        for name in ('nms_iou', 'match_iou'):
            value = getattr(self, name)
            if value is not None and not 0.0 < value <= 1.0:
                raise OptionError(f'{name} must be in (0, 1], got {value}')

    def predictions_kept(self, predictions: list[dict], labels: set[int],
                         events: Counter) -> list[dict]:
        """The predictions of labelled classes that reach the score cut."""
        present = [p for p in predictions if p['label'] in labels]
        kept = [p for p in present if p['score'] >= self.score_thr]
        events['predictions'] += len(predictions)
        events['absent_class_predictions'] += len(predictions) - len(present)
        events['below_score_thr'] += len(present) - len(kept)
        return kept

    def suppress(self, kept: list[dict], events: Counter) -> list[dict]:
        """Greedy mask NMS over every class (:attr:`nms_iou`), best score first."""
        if self.nms_iou is None or len(kept) < 2:
            return kept
        ranked = sorted(kept, key=lambda p: -p['score'])
        rles = [bytes_counts(p['rle']) for p in ranked]
        iou = np.asarray(mask_util.iou(rles, rles, [0] * len(rles))).reshape(len(rles), -1)
        keep: list[int] = []
        for i in range(len(ranked)):
            if all(iou[i, j] < self.nms_iou for j in keep):
                keep.append(i)
        events['suppressed_predictions'] += len(ranked) - len(keep)
        return [ranked[i] for i in keep]

    def complete(self, kept: list[dict], previous: list[dict], labels: set[int],
                 events: Counter) -> list[dict]:
        """``kept`` and the previous instances that must stay: every instance of a
        labelled class the predictions lack, and with ``keep_unmatched`` those no
        prediction overlaps."""
        previous = [q for q in previous if q['label'] in labels]
        found = {p['label'] for p in kept}
        stay = [q for q in previous if q['label'] not in found]
        events['classes_from_previous'] += len({q['label'] for q in stay})
        events['classes_without_instance'] += len(labels - found - {q['label'] for q in stay})
        if self.keep_unmatched:
            rest = [q for q in previous if q['label'] in found]
            if rest:
                iou = np.asarray(mask_util.iou([bytes_counts(q['rle']) for q in rest],
                                               [bytes_counts(p['rle']) for p in kept],
                                               [0] * len(kept))).reshape(len(rest), len(kept))
                lost = [q for q, row in zip(rest, iou) if row.max() < self.match_iou]
                events['unmatched_previous_kept'] += len(lost)
                stay += lost
        events['previous_kept'] += len(stay)
        return [*kept, *stay]


def _instances(anns: list[dict]) -> list[dict]:
    return [dict(label=a['category_id'] - 1, rle=a['segmentation'], score=float(a.get('score', 1)))
            for a in anns]


class Relabeller:
    """Labels the images of a previous round's pseudo json again with a detector.

    Args:
        model: the trained detector (mmdet, ``pred_instances`` with masks), in eval mode.
        pipeline: its test pipeline, without annotation loading.
        previous: the previous round's pseudo instances json (its images are labelled;
            file names relative to ``img_root``).
        image_labels: image id -> its labelled classes (0-based).
        classes: the detector's class names.
        rule: which predictions are kept (:class:`RelabelRule`).
        source: proposals each kept prediction is refined onto (the Refine hook's
            :func:`~..engine.proposal_refiner.refine`); None: the predicted masks.
        gt_ann_file: ground-truth instances of these images, for the report's quality.
    """

    #: every instance counts in the report's quality (all passed the score cut)
    quality_thr = -float('inf')

    def __init__(self, model: torch.nn.Module, pipeline: Compose, previous: dict,
                 img_root: str, image_labels: dict[int, set[int]], classes: tuple[str, ...],
                 rule: RelabelRule = RelabelRule(), source: ProposalSource | None = None,
                 gt_ann_file: str | None = None) -> None:
        self.model = model
        self.pipeline = pipeline
        self.images = previous['images']
        self.previous: dict[int, list[dict]] = defaultdict(list)
        for a in previous['annotations']:
            self.previous[a['image_id']].append(a)
        self.img_root = img_root
        self.image_labels = image_labels
        self.classes = classes
        self.rule = rule
        self.source = source
        self.fingerprint: dict[str, Any] = dict(gt_ann_file=gt_ann_file)

    @classmethod
    def from_config(cls, config: str | Config, checkpoint: str, labels_file: str,
                    previous_file: str, rule: RelabelRule = RelabelRule(),
                    proposals: dict | None = None, gt_ann_file: str | None = None,
                    device: torch.device | str | None = None) -> Relabeller:
        """Everything from a detector config and checkpoint, the split's image labels
        json and the previous round's pseudo json (the images are found as the
        config's train data finds them)."""
        from mmdet.apis import init_detector
        cfg = config if isinstance(config, Config) else Config.fromfile(config)
        init_default_scope(cfg.get('default_scope', 'mmdet'))
        if not osp.isfile(checkpoint):
            raise DataError(f'{checkpoint}: checkpoint not found')
        previous, labels = load_coco_json(previous_file), load_coco_json(labels_file)
        classes = tuple(cfg.train_dataloader.dataset.metainfo['classes'])
        image_labels = _image_labels(labels, classes, labels_file)
        missing = [im['id'] for im in previous['images'] if im['id'] not in image_labels]
        if missing:
            raise DataError(f'{previous_file}: image ids {missing[:5]} have no entry in '
                            f'{labels_file}')
        train = cfg.train_dataloader.dataset
        img_root = osp.join(train.get('data_root', ''), train.get('data_prefix', {}).get('img', ''))
        test = cfg.get('test_dataloader')
        steps = test.dataset.pipeline if test else cfg.get('test_pipeline')
        pipeline = Compose([s for s in copy.deepcopy(steps)
                            if s['type'] not in _ANNOTATION_LOADERS])
        if device is None:
            device = f'cuda:{int(os.environ.get("LOCAL_RANK", 0))}' \
                if torch.cuda.is_available() else 'cpu'
        # a palette named: mmdet would otherwise read one from the test data, which own
        # data without a val split does not have
        model = init_detector(cfg, checkpoint, palette='random', device=device).eval()
        trained_for = tuple(model.dataset_meta.get('classes', classes))
        if trained_for != classes:
            raise DataError(f'{checkpoint}: trained for the classes {trained_for}, the '
                            f'config has {classes}')
        source = PROPOSAL_SOURCES.build(proposals) if proposals else None
        gt_ann_file = gt_ann_file or instances_twin(labels_file)
        relabeller = cls(model, pipeline, previous, img_root, image_labels, classes, rule,
                         source, gt_ann_file)
        relabeller.fingerprint = dict(
            config=config_digest(cfg), checkpoint=sha256(checkpoint), labels=sha256(labels_file),
            previous=sha256(previous_file), rule=asdict(rule), proposals=proposals,
            gt_ann_file=gt_ann_file)
        return relabeller

    def __len__(self) -> int:
        return len(self.images)

    def __call__(self, index: int) -> dict:
        """Image ``index``'s record, as ``PseudoLabeller`` writes it."""
        image = self.images[index]
        record = dict(index=index, image=image, annotations=[], events={}, errors=[],
                      seconds={})
        labels = self.image_labels[image['id']]
        if not labels:
            record['events'] = {'images_without_labels': 1}
            return record
        t0 = time.perf_counter()
        events: Counter = Counter(images=1)
        path = osp.join(self.img_root, image['file_name'])
        kept = self._kept(self.predict(path), labels, events)
        if self.source is not None and kept:
            kept = self._refined(kept, dict(img_path=path, height=image['height'],
                                            width=image['width'], img_id=image['id']),
                                 events, record['errors'])
        kept = self.rule.suppress(kept, events)
        instances = self.rule.complete(kept, _instances(self.previous[image['id']]), labels,
                                       events)
        events['instances'] += len(instances)
        record['annotations'] = [
            dict(image_id=image['id'], category_id=inst['label'] + 1,
                 **rle_fields(bytes_counts(inst['rle'])), iscrowd=0,
                 score=round(inst['score'], 4))
            for inst in instances]
        record['events'] = dict(events)
        record['seconds'] = dict(total=round(time.perf_counter() - t0, 5))
        return record

    def predict(self, path: str) -> InstanceData:
        """The detector's predictions of one image, every class: ``labels``, ``scores``
        and ``masks`` at the image's size."""
        if not osp.isfile(path):
            raise DataError(f'{path}: image not found')
        try:
            data = self.pipeline(dict(img_path=path, img_id=0))
        except DataError:  # the config's checked loader has named the file
            raise
        except Exception as e:  # mmcv's loaders raise many types
            raise DataError(f'{path}: cannot load image ({e})') from None
        data = dict(inputs=[data['inputs']], data_samples=[data['data_samples']])
        with torch.no_grad():
            return self.model.test_step(data)[0].pred_instances

    def _kept(self, pred: InstanceData, labels: set[int], events: Counter) -> list[dict]:
        """The predictions the rule keeps, with their masks as RLEs (only theirs are
        encoded: of a hundred predictions an image, most are cut)."""
        kept = self.rule.predictions_kept(
            [dict(label=label, score=score, index=i) for i, (label, score) in
             enumerate(zip(pred.labels.tolist(), pred.scores.tolist()))], labels, events)
        rles = encode_masks(pred.masks[[p['index'] for p in kept]].cpu().numpy())
        return [dict(label=p['label'], rle=rle, score=p['score']) for p, rle in zip(kept, rles)]

    def _refined(self, kept: list[dict], image: dict, events: Counter,
                 errors: list[str]) -> list[dict]:
        """Each kept prediction as the proposal of highest IoU with it (as the Refine
        hook does); an image whose proposals cannot be had keeps its masks."""
        try:
            proposals = self.source(image)
        except ProposalError as e:
            events['images_without_proposals'] += 1
            errors.append(str(e))
            return kept
        iou = proposals.iou([bytes_counts(p['rle']) for p in kept])
        if not iou.size:
            return kept
        best = iou.argmax(axis=1)
        out = []
        for p, j, v in zip(kept, best, iou[np.arange(len(kept)), best]):
            out.append(dict(p, rle=proposals.rles[j]) if v > 0 else p)
            events['refined'] += int(v > 0)
        return out


def _image_labels(labels: dict, classes: tuple[str, ...], path: str) -> dict[int, set[int]]:
    """Image id -> labelled classes as the detector's 0-based labels (by name)."""
    names = {c['id']: c['name'] for c in labels.get('categories', [])}
    unknown = sorted(set(names.values()) - set(classes))
    if unknown:
        raise DataError(f'{path}: classes {unknown} are not among the detector\'s {classes}')
    try:
        return {im['id']: {classes.index(names[c]) for c in im['labels']}
                for im in labels['images']}
    except KeyError as e:
        raise DataError(f'{path}: an image or label without {e} (not an image labels '
                        'json?)') from None

