"""The stage graph of a preset: which stages run, with what commands, reading and
writing what.

data -> proposals -> prm -> prm_check -> prm_density -> prm_density_baseline -> pseudo
-> pseudo_improved -> pseudo_check -> prm_baseline -> full -> wise -> wise_improved ->
table. ``prm_check`` and ``pseudo_check`` stop the chain when the PRM has not learned its
classes (:mod:`.teacher`; not with --smoke, whose PRM learns nothing by design). ``pseudo`` /
``wise`` use the paper's selection (``objectness_sampling``), ``*_improved`` the one
that survives an over-firing PRM best (:data:`~.presets.IMPROVED`); another detector
adds ``wise_<name>`` on the improved pseudo masks; ``prm_density`` (ILC) trains from
counts and its retrieval gives the PRM + Density row; ``pseudo_counts`` /
``wise_counts`` keep as many peaks of a class as it has objects (docs/counts.md).
With a seed, the trained stages run in ``<work>/seed<N>/``; the data and proposals are
shared by the seeds. With ``rounds`` K > 1, self-training follows WISE on the improved
pseudo masks: ``relabel_round<r>`` labels the train split again with the previous
round's Mask R-CNN (:mod:`~..pseudo.relabel`) and ``wise_round<r>`` trains on that, for
r = 2..K.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from ..proposals.precomputed import done_name
from . import commands as cmd
from .custom_configs import DEFAULT_DETECTOR, DETECTORS
from .paths import ROOT
from .presets import (DENSITY_RETRIEVAL, RELABEL, ROUND_WEIGHTS, SELECTIONS, WISE_OF, Preset,
                      wise_stage_name)
from .stage import Stage
from .table import ROW_FILES, write_table
from .teacher import check_round, check_teacher

#: stages run once for all seeds
SHARED = ('data', 'proposals')


@dataclass
class Plan:
    """One run of a preset's chain: its options and the paths every stage uses."""

    preset: Preset
    gpus: int = 1
    seed: int | None = None
    prm_options: Sequence[str] = ()
    smoke: bool = False
    detectors: Sequence[str] = (DEFAULT_DETECTOR,)
    ignore_teacher: bool = False  # a PRM that has not learned: warn, go on
    teacher_checks: bool = True  # the sweep reports the verdicts instead
    rounds: int = 1  # WISE trainings of the self-training chain (1: WISE alone)
    #: where a round's detector starts: 'init', the config's initialisation, as WISE;
    #: 'previous', the previous round's weights (:data:`~.presets.ROUND_WEIGHTS`)
    round_weights: str = ROUND_WEIGHTS
    work: str = field(init=False)

    def __post_init__(self) -> None:
        p = self.preset
        self.work = p.work if self.seed is None else f'{p.work}/seed{self.seed}'

    @property
    def seeded(self) -> list[str]:
        return [] if self.seed is None else [f'randomness.seed={self.seed}']

    @property
    def prm_train(self) -> list[str]:
        smoke = [*cmd.SMOKE_TRAIN, *cmd.smoke_prm(self.gpus)] if self.smoke else []
        return [*self.seeded, *smoke, *self.prm_options]

    @property
    def detector_train(self) -> list[str]:
        return [*self.seeded, *([*cmd.SMOKE_TRAIN, *cmd.SMOKE_DETECTOR] if self.smoke else [])]

    @property
    def test_options(self) -> tuple[str, ...]:
        return cmd.SMOKE_TEST if self.smoke else ()

    @property
    def proposals(self) -> list[str]:
        """gen_pseudo's arguments reading the proposals stage's files."""
        return ['--proposals', 'type=precomputed', f'root={self.preset.proposals_root}']

    @property
    def proposals_done(self) -> list[str]:
        """The proposals are done when recall is measured, or (no masks) when every
        shard is."""
        p = self.preset
        if p.val_masks:
            return [f'{p.proposals_root}/recall.json']
        labels = [Path(p.annotations) / f'{split}_labels.json' for split in p.splits]
        return [f'{p.proposals_root}/{done_name(f, i, p.proposal_shards)}'
                for f in labels for i in range(p.proposal_shards)]

    def stage(self, name: str, steps: list, inputs: list[str], outputs: list[str],
              **kwargs) -> Stage:
        shared = name in SHARED
        return Stage(name, steps, inputs, outputs, work=self.preset.work if shared else self.work,
                     seed=None if shared else self.seed, **kwargs)

    @property
    def checks(self) -> bool:
        """Whether the chain checks its PRM has learned (a smoke PRM has not)."""
        return self.teacher_checks and not self.smoke

    def check_file(self, name: str) -> list[str]:
        """The verdict file of check ``name``, as an input of what it guards."""
        return [f'{self.work}/checks/{name}.json'] if self.checks else []

    def pseudo_json(self, selection: str) -> str:
        return f'{self.work}/{selection}/{self.preset.train_split}_pseudo.json'

    @property
    def round_selection(self) -> str:
        """The pseudo masks self-training starts from: the improved selection's."""
        p = self.preset
        return 'pseudo_improved' if 'pseudo_improved' in p.selections else p.selections[-1]

    def trains_on(self, detector: str) -> Sequence[str]:
        """The pseudo-mask stages a detector trains on: Mask R-CNN every selection,
        another the improved one."""
        p = self.preset
        if detector == DEFAULT_DETECTOR:
            return p.selections
        return ['pseudo_improved'] if 'pseudo_improved' in p.selections else p.selections[-1:]


def data_stage(plan: Plan) -> Stage:
    p, ann = plan.preset, plan.preset.annotations
    convert = [] if p.convert_args is None else [
        cmd.python('tools/dataset_converters/voc_to_coco.py', p.data, *p.convert_args,
                   '--splits', *p.splits)]
    held_out = p.splits[1:]  # val (and test)
    val_out = ([f'{ann}/{s}_instances.json' for s in held_out] if p.val_masks
               else [f'{ann}/{s}_labels.json' for s in held_out])
    return plan.stage(
        'data', [[c] for c in [*p.make_data, *convert]],
        inputs=['tools/make_shapes_dataset.py', 'projects/wise/datasets/shapes.py',
                'tools/dataset_converters', *p.data_inputs],
        outputs=[f'{ann}/{p.train_split}_labels.json',
                 *([] if p.convert_args is None else [f'{ann}/{p.train_split}_instances.json']),
                 *val_out])


def proposals_stage(plan: Plan) -> Stage:
    """Every split's proposals, in shards side by side; then their recall on val."""
    p, ann = plan.preset, plan.preset.annotations
    img_root = ['--img-root', p.img_root] if p.img_root else []
    shards = [cmd.python('tools/gen_proposals.py', '--ann-file', f'{ann}/{split}_labels.json',
                         '--out-dir', p.proposals_root,
                         '--shard', f'{i}/{p.proposal_shards}', *img_root, *p.proposal_args)
              for split in p.splits for i in range(p.proposal_shards)]
    scored = f'{ann}/{p.test_split}_instances.json'
    recall = [[cmd.python('tools/gen_proposals.py', '--ann-file', scored,
                          '--out-dir', p.proposals_root, '--recall', *img_root,
                          *p.proposal_args)]] if p.val_masks else []
    return plan.stage('proposals', [shards, *recall],
                      inputs=[scored if p.val_masks else f'{ann}/{p.train_split}_labels.json',
                              'projects/wise/proposals'],
                      outputs=plan.proposals_done)


def classifier_stage(plan: Plan, name: str, cfg: str) -> Stage:
    """A peak classifier (PRM, PRM + Density) trained on the image labels, and tested
    on val where there is one."""
    p, work = plan.preset, f'{plan.work}/{name}'
    tests = cmd.prm_test(cfg, work, plan.gpus, plan.test_options) if p.val else []
    return plan.stage(name, [[cmd.train(cfg, work, plan.gpus, plan.prm_train)],
                             *[[c] for c in tests]],
                      inputs=[cfg, f'{p.annotations}/{p.train_split}_labels.json',
                              'projects/wise/models'],
                      outputs=[f'{work}/last_checkpoint'])


def pseudo_stage(plan: Plan, selection: str) -> Stage:
    """The train split's pseudo masks from the PRM's peaks, by one selection."""
    out = plan.pseudo_json(selection)
    line = cmd.gen_pseudo(plan.preset.prm_cfg, f'{plan.work}/prm', plan.seed, plan.gpus,
                          '--out', out, *plan.proposals, *SELECTIONS[selection])
    return plan.stage(selection, [[line]],
                      inputs=[f'{plan.work}/prm/last_checkpoint', *plan.proposals_done,
                              *(plan.check_file('prm_check') if plan.preset.val else []),
                              'projects/wise/pseudo', 'tools/gen_pseudo.py'],
                      outputs=[out])


def check_stage(plan: Plan, name: str, selections: Sequence[str] = ()) -> Stage:
    """Whether the PRM has learned its classes (:mod:`.teacher`): its val figures, and
    with ``selections`` the share of weak peaks in their pseudo masks."""
    pseudo = [plan.pseudo_json(s) for s in selections]
    out = f'{plan.work}/checks/{name}.json'
    action = partial(check_teacher, ROOT / plan.work / 'prm',
                     [ROOT / f'{p}.report.json' for p in pseudo], ROOT / out,
                     plan.ignore_teacher)
    return plan.stage(name, [], inputs=[f'{plan.work}/prm/last_checkpoint', *pseudo],
                      outputs=[out], action=action, always=True)


def oracle_stage(plan: Plan, selection: str) -> Stage:
    """The same selection's pseudo masks from ground-truth instance centres instead of
    the PRM's peaks (``oracle_<selection>``): what the selection makes of perfect peaks."""
    name = f'oracle_{selection}'
    out = f'{plan.work}/{name}/{plan.preset.train_split}_pseudo.json'
    line = cmd.gen_pseudo(plan.preset.prm_cfg, f'{plan.work}/prm', plan.seed, plan.gpus,
                          '--out', out, '--oracle', *plan.proposals, *SELECTIONS[selection])
    return plan.stage(name, [[line]],
                      inputs=[f'{plan.work}/prm/last_checkpoint', *plan.proposals_done,
                              'projects/wise/pseudo', 'tools/gen_pseudo.py'],
                      outputs=[out])


def baseline_stage(plan: Plan, name: str, cfg: str, model: str,
                   selector: Sequence[str]) -> Stage:
    """The reported split's instance masks retrieved from the peaks of the stage
    ``model`` (a table row)."""
    split = plan.preset.test_split
    out = f'{plan.work}/{name}/{split}_prm.json'
    line = cmd.gen_pseudo(cfg, f'{plan.work}/{model}', plan.seed, plan.gpus, '--split', split,
                          '--no-image-labels', '--selector', *selector, '--out', out,
                          *plan.proposals)
    return plan.stage(name, [[line]],
                      inputs=[f'{plan.work}/{model}/last_checkpoint', *plan.proposals_done,
                              'projects/wise/pseudo', 'tools/gen_pseudo.py'],
                      outputs=[out, f'{out}.report.json'])


def full_stage(plan: Plan) -> Stage:
    """The fully supervised bound: the detector on the ground-truth masks."""
    p, work = plan.preset, f'{plan.work}/full'
    return plan.stage('full', [[cmd.train(p.full_cfg, work, plan.gpus, plan.detector_train)],
                               [cmd.test(p.full_cfg, work, f'{work}/metrics', plan.gpus,
                                         plan.test_options)]],
                      inputs=[p.full_cfg, f'{p.annotations}/{p.train_split}_instances.json'],
                      outputs=[f'{work}/metrics.metrics.json'])


def wise_stage(plan: Plan, selection: str, detector: str, pseudo: str | None = None,
               name: str | None = None, check: str = 'pseudo_check',
               weights: str | None = None) -> Stage:
    """A detector trained on one selection's pseudo masks (or ``pseudo``, those of a
    self-training round, in stage ``name``, guarded by ``check``, starting from the last
    checkpoint of the stage ``weights``), tested without and with the refine hook where
    val has masks."""
    p = plan.preset
    name = name or wise_stage_name(selection, detector)
    pseudo = pseudo or plan.pseudo_json(selection)
    work = f'{plan.work}/{name}'
    cfg, refine_cfg = (p.wise_cfg.format(detector, refine=r) for r in ('', '_refine'))
    # the paper's selection trains the paper's detector
    soft = DETECTORS[detector].soft_negatives if p.soft_negatives and \
        selection != 'pseudo' else ()
    options = [*plan.detector_train, f'train_dataloader.dataset.ann_file={ROOT / pseudo}', *soft]
    train = cmd.train(cfg, work, plan.gpus, options)
    if weights:
        start = f'{plan.work}/{weights}'
        train = cmd.shell(*train, f'load_from={cmd.checkpoint(start)}')
    tests = [[cmd.test(cfg, work, f'{work}/metrics', plan.gpus, plan.test_options)],
             [cmd.test(refine_cfg, work, f'{work}/refine', plan.gpus, plan.test_options)]]
    return plan.stage(name, [[train],
                             *(tests if p.val_masks else [])],
                      inputs=[cfg, refine_cfg, pseudo, *plan.check_file(check),
                              *([f'{plan.work}/{weights}/last_checkpoint'] if weights else []),
                              'projects/wise/engine',
                              *(['projects/wise/detection'] if soft else [])],
                      outputs=[f'{work}/metrics.metrics.json', f'{work}/refine.metrics.json']
                      if p.val_masks else [f'{work}/last_checkpoint'])


def round_stages(plan: Plan) -> list[Stage]:
    """Self-training after WISE: each round labels the train split again with the
    previous round's Mask R-CNN, refined onto the proposals and held to the image labels
    (:data:`~.presets.RELABEL`); ``round<r>_check`` stops where those labels are worse
    than the previous round's (:func:`~.teacher.check_round`); then a Mask R-CNN trains
    on them as WISE trained."""
    p = plan.preset
    selection = plan.round_selection
    cfg = p.wise_cfg.format(DEFAULT_DETECTOR, refine='')
    labels = f'{p.annotations}/{p.train_split}_labels.json'
    previous, model = plan.pseudo_json(selection), WISE_OF[selection]
    stages = []
    for r in range(2, plan.rounds + 1):
        name = f'relabel_round{r}'
        out = f'{plan.work}/{name}/{p.train_split}_pseudo.json'
        line = cmd.relabel(cfg, f'{plan.work}/{model}', plan.gpus, '--labels', labels,
                           '--previous', previous, '--out', out, *plan.proposals, *RELABEL)
        stages.append(plan.stage(name, [[line]],
                                 inputs=[f'{plan.work}/{model}/last_checkpoint', previous,
                                         labels, *plan.proposals_done, 'tools/relabel.py',
                                         'projects/wise/pseudo'],
                                 outputs=[out]))
        check = f'round{r}_check'
        if plan.checks:
            action = partial(check_round, ROOT / labels, ROOT / previous, ROOT / out,
                             ROOT / plan.check_file(check)[0], plan.ignore_teacher)
            stages.append(plan.stage(check, [], inputs=[previous, out],
                                     outputs=plan.check_file(check), action=action,
                                     always=True))
        stages.append(wise_stage(plan, selection, DEFAULT_DETECTOR, pseudo=out,
                                 name=f'wise_round{r}', check=check,
                                 weights=model if plan.round_weights == 'previous' else None))
        previous, model = out, f'wise_round{r}'
    return stages


def table_stage(plan: Plan, trained: set[str]) -> Stage:
    """The table of the rows whose stages this run has."""
    p, work = plan.preset, plan.work
    return plan.stage('table', [],
                      inputs=[f'{work}/{f.format(split=p.test_split)}'
                              for f in ROW_FILES.values() if f.split('/')[0] in trained],
                      outputs=[f'{work}/results.md', f'{work}/results.json',
                               f'{work}/results.png'],
                      action=partial(write_table, ROOT / work, train=p.train_note,
                                     improved=p.improved_note, split=p.test_split))


def build_stages(preset: Preset, gpus: int = 1, seed: int | None = None,
                 prm_options: Sequence[str] = (), smoke: bool = False,
                 detectors: Sequence[str] = (DEFAULT_DETECTOR,),
                 ignore_teacher: bool = False, rounds: int = 1,
                 round_weights: str = ROUND_WEIGHTS) -> list[Stage]:
    """The preset's stages in order, WISE's for each of ``detectors``; with ``seed``,
    the trained ones seeded and in ``seed<N>/``; with ``smoke``, cut to a few
    iterations (:data:`~.commands.SMOKE_TRAIN`); ``ignore_teacher``: a PRM that has
    not learned its classes is warned of, not stopped at; ``rounds``: WISE and
    ``rounds - 1`` self-training rounds after it, each detector starting from
    ``round_weights``."""
    plan = Plan(preset, gpus, seed, prm_options, smoke, detectors, ignore_teacher,
                rounds=rounds, round_weights=round_weights)
    p = preset
    wise = [wise_stage(plan, selection, detector) for detector in detectors
            for selection in plan.trains_on(detector)]
    wise += round_stages(plan) if DEFAULT_DETECTOR in detectors else []
    selections = [s for s in p.selections if any(s in plan.trains_on(d) for d in detectors)]
    scored = p.val_masks  # val has masks: the baselines and the table
    density = [] if p.density_cfg is None else [
        classifier_stage(plan, 'prm_density', p.density_cfg),
        *([baseline_stage(plan, 'prm_density_baseline', p.density_cfg, 'prm_density',
                          DENSITY_RETRIEVAL)] if scored else [])]
    trained = {'prm_baseline', *(['full'] if p.full_cfg else []),
               *(s.name for s in wise if s.name.startswith('wise')),
               *(['prm_density_baseline'] if p.density_cfg else [])}
    return [
        data_stage(plan),
        proposals_stage(plan),
        classifier_stage(plan, 'prm', p.prm_cfg),
        *([check_stage(plan, 'prm_check')] if plan.checks and p.val else []),
        *density,
        *[pseudo_stage(plan, s) for s in selections],
        *([check_stage(plan, 'pseudo_check', selections)] if plan.checks else []),
        *([baseline_stage(plan, 'prm_baseline', p.prm_cfg, 'prm', ['type=prm_retrieval'])]
          if scored else []),
        *([full_stage(plan)] if p.full_cfg else []),
        *wise,
        *([table_stage(plan, trained)] if scored else []),
    ]
