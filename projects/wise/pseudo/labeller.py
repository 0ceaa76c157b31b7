"""Pseudo instances of a split's images: WISE's second stage, one image at a time.

``PseudoLabeller`` is what ``tools/gen_pseudo.py`` runs over a split, and what a
notebook calls to label one image::

    labeller = PseudoLabeller.from_config(
        'configs/wise/demo/prm_r18_shapes.py', 'work_dirs/demo/prm/epoch_8.pth',
        proposals=dict(type='precomputed', root='data/shapes/proposals'))
    record = labeller(0)        # record['annotations']: COCO instances of image 0
"""
from __future__ import annotations

import hashlib
import json
import os
import os.path as osp
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdet.registry import DATASETS

from ..errors import DataError, OptionError
from ..models.named_rules import named_rule
from ..proposals import ProposalSource
from ..proposals.recall import proposal_recall
from ..registry import PROPOSAL_SELECTORS, PROPOSAL_SOURCES
from ..utils.io import read_image
from ..utils.masks import rle_fields
from .generator import INSTANCE_SCORES, pseudo_instances
from .oracle import GTPoints
from .peaks import PREDICTED, PeakRules, load_prm, prm_peaks
from .selectors import ProposalSelector
from .visualization import save_pseudo_masks

#: proposal budgets at which the report gives best-IoU recall
RECALL_KS = (100, 500, 1000)
#: where ``counts`` come from: the split's own (its labels json's ``label_counts``), or the
#: PRM + Density model's predictions
COUNT_SOURCES = ('given', PREDICTED)


def build_split(cfg: Config, split: str = 'train', ann_file: str | None = None,
                with_counts: bool = False):
    """``split``'s dataset of a PRM config with its test pipeline, in test mode so that
    every image, labelled or not, gets a record; ``with_counts``: with its counts. A
    config with nothing to test on (no val split: ``test_dataloader = None``) lends
    its ``test_pipeline``."""
    ds_cfg = cfg[f'{split}_dataloader'].dataset.copy()
    test = cfg.get('test_dataloader')
    ds_cfg.pipeline = test.dataset.pipeline if test else cfg.get('test_pipeline')
    if ds_cfg.pipeline is None:
        raise OptionError(f'{cfg.filename}: neither test_dataloader nor test_pipeline: '
                          'gen_pseudo reads the images through the test pipeline')
    ds_cfg.test_mode = True
    if with_counts:
        ds_cfg.with_counts = True
    if ann_file:
        ds_cfg.ann_file = ann_file
    return DATASETS.build(ds_cfg)


def instances_twin(ann_file: str) -> str | None:
    """The ground-truth instances json of a split's annotation file, if any: the file
    itself, or the ``*_instances.json`` beside a ``*_labels.json``."""
    ann = str(ann_file)
    if ann.endswith('_instances.json'):
        return ann
    twin = ann.replace('_labels.json', '_instances.json')
    return twin if twin != ann and osp.isfile(twin) else None


def default_gt_file(dataset) -> str | None:
    """The ground-truth instances json of a split's dataset, if any."""
    return instances_twin(dataset.ann_file)


def config_digest(cfg: Config) -> str:
    """The sha256 of a resolved config: what a labelling run's fingerprint names."""
    text = json.dumps(cfg.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


class PseudoLabeller:
    """Labels images of ``dataset``: peaks -> one proposal each -> COCO annotations.

    Args:
        dataset: an image-label dataset with the PRM's test pipeline.
        source: where each image's proposals come from.
        selector: how a peak picks its proposal.
        model: the trained PRM (None with ``oracle``).
        rules: which of its peaks are kept, and where they are (its config's test_cfg).
        image_labels: keep the peaks of the labelled classes (training); False: of
            the classes the PRM scores present (the test-time PRM baseline).
        gt: ground-truth instances (proposal recall in the records; the oracle's peaks).
        oracle: ground-truth instance centres instead of PRM peaks.
        counts: keep as many peaks of a class as it has objects (WISE + counts):
            'given' (the dataset's ``image_counts``) or 'predicted' (a PRM + Density
            model's); None: the peaks reaching ``peak_thr``.
        instance_score: 'peak' (the peak's value) or 'selection' (the selector's
            score: ILC's retrieval score), :data:`~.generator.INSTANCE_SCORES`.
        seed: seeds each image's sampling together with its index.
        show_dir: draw each image's pseudo masks there.
    """

    def __init__(self, dataset, source: ProposalSource, selector: ProposalSelector,
                 model: torch.nn.Module | None = None, *, rules: PeakRules = PeakRules(),
                 image_labels: bool = True, gt: GTPoints | None = None,
                 oracle: bool = False, counts: str | None = None,
                 instance_score: str = 'peak', seed: int = 0,
                 show_dir: Path | None = None) -> None:
        if counts is not None and counts not in COUNT_SOURCES:
            raise OptionError(f'--counts {counts!r}: choose one of {", ".join(COUNT_SOURCES)}')
        if counts is not None and oracle:
            raise OptionError('--counts and --oracle: the oracle has one peak per object')
        if oracle and gt is None:
            raise OptionError('--oracle needs ground-truth instances (--gt-ann-file)')
        if oracle and selector.needs_maps:
            raise OptionError(f'--oracle has no peak response maps for '
                              f'{type(selector).__name__}')
        if not oracle and model is None:
            raise OptionError('a PRM model is needed unless labelling from the oracle')
        if instance_score not in INSTANCE_SCORES:
            raise OptionError(f'instance_score {instance_score!r}: choose one of '
                              f'{", ".join(INSTANCE_SCORES)}')
        self.dataset = dataset
        self.source = source
        self.selector = selector
        self.model = model
        self.rules = rules
        self.instance_score = instance_score
        self.image_labels = image_labels
        self.gt = gt
        self.oracle = oracle
        self.counts = counts
        self.seed = seed
        self.show_dir = None if show_dir is None else Path(show_dir)
        #: what the output depends on (set by from_config): parts of another run are
        #: never resumed or merged
        self.fingerprint: dict[str, Any] = {}

    @classmethod
    def from_config(cls, config: str | Config, checkpoint: str | None, proposals: dict,
                    selector: dict | None = None, *, split: str = 'train',
                    ann_file: str | None = None, gt_ann_file: str | None = None,
                    peak_thr: float | None = None, image_labels: bool = True,
                    oracle: bool = False, counts: str | None = None, seed: int = 0,
                    show_dir: Path | None = None,
                    device: torch.device | str | None = None) -> PseudoLabeller:
        """Everything from a PRM config and checkpoint; ``proposals`` and ``selector``
        are configs of ``PROPOSAL_SOURCES`` and ``PROPOSAL_SELECTORS`` (default: the paper's
        objectness sampling)."""
        cfg = config if isinstance(config, Config) else Config.fromfile(config)
        init_default_scope(cfg.get('default_scope', 'mmdet'))
        selector = selector or dict(type='objectness_sampling')
        dataset = build_split(cfg, split, ann_file, with_counts=counts == 'given')
        gt_file = gt_ann_file or default_gt_file(dataset)
        built_selector = PROPOSAL_SELECTORS.build(selector)
        if device is None:
            device = torch.device(f'cuda:{int(os.environ.get("LOCAL_RANK", 0))}'
                                  if torch.cuda.is_available() else 'cpu')
        test_cfg = cfg.model.get('test_cfg', {})
        instance_score = test_cfg.get('instance_score', 'peak')
        try:
            rules = PeakRules.from_test_cfg(test_cfg, peak_thr)
            named_rule(INSTANCE_SCORES, 'instance_score', instance_score)
        except ValueError as e:
            raise OptionError(f'{cfg.filename}: model.test_cfg: {e}') from None
        model = None
        if not oracle:
            model = load_prm(cfg, checkpoint, len(dataset.metainfo['classes']), device,
                             with_crm=built_selector.needs_maps,
                             with_density=built_selector.needs_density)
        gt = GTPoints(gt_file, dataset.metainfo['classes']) if gt_file else None
        labeller = cls(dataset, PROPOSAL_SOURCES.build(proposals), built_selector, model,
                       rules=rules, image_labels=image_labels, gt=gt, oracle=oracle,
                       counts=counts, instance_score=instance_score, seed=seed,
                       show_dir=show_dir)
        labeller.fingerprint = dict(config=config_digest(cfg),
                            checkpoint=None if oracle else sha256(checkpoint),
                            split=split, ann_file=ann_file, gt_ann_file=gt_file,
                            proposals=proposals, selector=selector, peak_thr=peak_thr,
                            image_labels=image_labels, oracle=oracle, seed=seed,
                            **({'counts': counts} if counts else {}))
        return labeller

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.dataset.metainfo['classes'])

    @property
    def quality_thr(self) -> float:
        """The score from which an instance counts in the report's quality: peak values
        under 0 are weak peaks; selection scores (ILC's retrieval) may be negative and
        all count."""
        return 0.0 if self.instance_score == 'peak' else -float('inf')

    def __call__(self, index: int) -> dict:
        """Image ``index``'s record: its COCO ``image`` and ``annotations``, and what
        happened (``events``, ``errors``, proposal ``recall``, ``seconds``)."""
        info = self.dataset.get_data_info(index)
        img_id = info['img_id']
        if not isinstance(img_id, int):
            raise DataError(f'{self.dataset.ann_file}: image id {img_id!r} is not an int; '
                            'convert the split to COCO json with '
                            'tools/dataset_converters/voc_to_coco.py')
        hw = (int(info['height']), int(info['width']))
        image = dict(id=img_id,
                     file_name=osp.relpath(info['img_path'], self.dataset.data_prefix['img']),
                     height=hw[0], width=hw[1])
        record = dict(index=index, image=image, annotations=[], events={}, errors=[],
                      seconds={})
        if self.image_labels and not info['image_labels']:
            record['events'] = {'images_without_labels': 1}
            return record
        t0 = time.perf_counter()
        events: Counter = Counter()
        if self.oracle:
            peaks = self.gt(img_id, hw)
        else:
            counts = dict(zip(info['image_labels'], info['image_counts'])) \
                if self.counts == 'given' else self.counts
            peaks = prm_peaks(self.model, self._load(index, info),
                              info['image_labels'] if self.image_labels else None,
                              self.rules, self.selector.needs_maps, events,
                              counts, self.selector.needs_density)
        t1 = time.perf_counter()
        rng = np.random.default_rng([self.seed, index])
        result = pseudo_instances(peaks, dict(img_path=info['img_path'], height=hw[0],
                                              width=hw[1], img_id=img_id),
                                  self.source, self.selector, rng, self.instance_score)
        result.events.update(events)
        record['annotations'] = [self.annotation(img_id, inst) for inst in result.instances]
        if self.gt is not None and result.proposals is not None:
            gts = self.gt.rles(img_id, hw)
            if gts:
                recall = proposal_recall(result.proposals, gts, RECALL_KS)
                record['recall'] = dict(num_gts=recall['num_gt'],
                                        hits=[recall['hits'][k] for k in RECALL_KS])
        record['events'] = dict(result.events)
        record['errors'] = result.errors
        record['seconds'] = dict(peaks=round(t1 - t0, 5),
                                 total=round(time.perf_counter() - t0, 5))
        if self.show_dir is not None:
            save_pseudo_masks(self.show_dir / f'{Path(info["img_path"]).stem}.png',
                              read_image(info['img_path']), record['annotations'],
                              self.classes,
                              None if self.gt is None else self.gt.objects(img_id, hw))
        return record

    def _load(self, index: int, info: dict) -> dict:
        try:
            return self.dataset[index]
        except DataError:  # LoadImageChecked has named the file already
            raise
        except Exception as e:  # a config's own loader: mmcv's raise many types
            raise DataError(f'{info["img_path"]}: cannot load image ({e})') from None

    @staticmethod
    def annotation(img_id: int, inst: dict) -> dict:
        """A pseudo instance as a COCO annotation of image ``img_id``."""
        return dict(image_id=img_id, category_id=inst['label'] + 1, **rle_fields(inst['rle']),
                    iscrowd=0, score=round(inst['score'], 4),
                    objectness=round(inst['objectness'], 4), point=inst['point'])
