"""Running stages: skip the fresh ones, run the rest side by side where they do not
depend on each other, and keep records of what ran.

A stage is skipped when its outputs exist and are newer than its inputs (configs,
code, earlier stages' outputs) and its record says it was made by the commands, configs
and source it would run now (:mod:`.provenance`), so a second run only re-tests what
changed. Each work dir keeps :data:`RECORDS` (each stage's record when it last ran).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..utils.io import atomic_write
from .devices import Slots, gpu_problem, visible_gpus
from .graph import SHARED
from .parallel import dependencies, run_in_parallel
from .paths import ROOT
from .presets import Preset
from .provenance import provenance, stale_because, stamped
from .stage import Stage, Step
from .table import write_table

#: each stage's record when it last ran, in its work folder: its commands, the hashes of
#: its resolved configs and of the source, its time, commit and date
RECORDS = 'stage_records.json'
_RECORD_LOCK = threading.Lock()  # stages side by side finish in threads of one process


def read_records(path: Path) -> dict[str, Any]:
    """A json of one value per stage (none yet: empty)."""
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise SystemExit(f'pipeline.py: error: {path}: not valid JSON ({e}); delete it to '
                         'start its records afresh') from None


def record(path: Path, stage: str, value: Any) -> None:
    """Set ``stage``'s value in the records file ``path``."""
    with _RECORD_LOCK:
        values = read_records(path)
        values[stage] = value
        with atomic_write(path) as f:  # a kill midway leaves the earlier records
            json.dump(values, f, indent=2)


def run_step(step: Step, dry_run: bool = False, threads: int | None = None,
             log: IO[str] | None = None, env: dict[str, str] | None = None) -> None:
    """A step's commands, side by side; ``threads``: each one's OpenMP threads
    (default: all cores), ``log``: a file for their output, ``env``: variables set for
    them (a torchrun's port and GPUs, :class:`~.devices.Slots`)."""
    for command in step:
        print('  $ ' + ' '.join(map(str, command)), flush=True, file=log or sys.stdout)
    if dry_run:
        return
    # PYTHON: dist_run.sh's interpreter
    full_env = {'PYTHON': sys.executable, **os.environ, **(env or {})}
    if len(step) > 1:  # side by side: one thread each, not N x all cores
        threads = 1
    if threads is not None:
        full_env['OMP_NUM_THREADS'] = str(threads)
    procs = [subprocess.Popen([str(c) for c in command], cwd=ROOT, env=full_env, stdout=log,
                              stderr=subprocess.STDOUT if log else None) for command in step]
    codes = [proc.wait() for proc in procs]
    if any(codes):
        raise SystemExit(f'pipeline.py: a command failed (exit codes {codes})')


def run_stage(stage: Stage, forced: bool = False, dry_run: bool = False,
              threads: int | None = None, to_log: bool = False,
              env: dict[str, str] | None = None) -> bool:
    """Run ``stage`` unless it is fresh; whether it ran. ``to_log``: its commands'
    output goes to ``<work>/logs/<stage>.log`` (stages running side by side); ``env``:
    variables set for its commands."""
    work = ROOT / stage.work
    fresh = not forced and not stage.always and stage.fresh()
    now = provenance(stage) if fresh or not dry_run else {}
    if fresh:
        made_by = read_records(work / RECORDS).get(stage.name)
        why = stale_because(made_by, now)
        if why is None:
            print(f'[pipeline] {stage.label}: fresh, skipped (made at {made_by["commit"]}, '
                  f'{made_by["date"]}, by the same commands, configs and source)', flush=True)
            return False
        print(f'[pipeline] {stage.label}: {why}', flush=True)
    log_path = work / 'logs' / f'{stage.name}.log'
    if to_log:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    shown = log_path.relative_to(ROOT) if log_path.is_relative_to(ROOT) else log_path
    notes = [*([f'log: {shown}'] if to_log else []),
             *(f'{k}={v}' for k, v in (env or {}).items())]
    print(f'[pipeline] {stage.label}' + (f' ({", ".join(notes)})' if notes else ''),
          flush=True)
    t0 = time.perf_counter()
    with open(log_path, 'w') if to_log else nullcontext() as log:
        try:
            for step in stage.steps:
                run_step(step, dry_run, threads, log, env)
        except SystemExit as e:
            where = f'; its log: {log_path}' if to_log else ''
            raise SystemExit(f'{e} in stage {stage.label}{where}') from None
    if stage.action is not None and not dry_run:
        stage.action()
    took = time.perf_counter() - t0
    print(f'[pipeline] {stage.label}: done in {took:.0f} s', flush=True)
    if not dry_run:
        record(work / RECORDS, stage.name, stamped(now, took, source_commit()))
    return True


@dataclass
class RunOptions:
    """Which stages of a run go, and how."""

    start: str | None = None  # rerun this stage and all after it
    only: Sequence[str] = ()  # run just these (if not fresh)
    dry_run: bool = False
    jobs: int = 1
    seeds: Sequence[int] = ()
    gpus: int = 1  # processes of each torchrun (stages side by side: :mod:`.devices`)


def run_pipeline(preset: Preset, runs: Sequence[Sequence[Stage]], options: RunOptions) -> None:
    """Run the stages of ``runs`` (one list per seed, the shared stages once); with
    seeds, write the table of their mean ± sd; record a clean run's time. Refused where
    torch sees fewer GPUs than they need."""
    devices = visible_gpus() if options.gpus > 1 else []
    problem = gpu_problem(options.gpus, options.jobs, len(devices))
    if problem:
        raise SystemExit(f'pipeline.py: error: {problem}')
    names = [s.name for s in runs[0]]
    for name in [options.start, *options.only]:
        if name is not None and name not in names:
            raise SystemExit(f'pipeline.py: error: unknown stage {name!r}; stages: {names}')
    forced = set(names[names.index(options.start):]) if options.start else set()
    t_all = time.perf_counter()
    every = [stage for i, run in enumerate(runs) for stage in run
             if not (i and stage.name in SHARED)]
    only = set(options.only) and set(options.only) | _checks_of(every, set(options.only))
    forced |= _checks_of(every, forced)
    skipped = set(names[:names.index(options.start)]) - forced if options.start else set()
    todo = [stage for stage in every
            if not ((only and stage.name not in only) or stage.name in skipped)]
    ran: list[bool] = []  # of each stage in todo: whether it ran (was not fresh)
    slots = Slots(options.gpus, options.jobs, devices)
    if slots.envs:
        print(f'[pipeline] {slots}', flush=True)
    jobs = 1 if options.dry_run else options.jobs
    threads = None if jobs == 1 else max(1, (os.cpu_count() or 1) // jobs)

    def run_one(k: int) -> None:
        stage = todo[k]
        with slots.hold() as env:
            ran.append(run_stage(stage, stage.name in forced, options.dry_run, threads,
                                 jobs > 1, env if jobs > 1 else None))

    run_in_parallel(range(len(todo)), dependencies([s.inputs for s in todo],
                                                   [s.outputs for s in todo]),
                    run_one, jobs)
    if options.seeds and not options.dry_run and (not options.only or 'table' in options.only):
        write_table(ROOT / preset.work, options.seeds, preset.train_note, preset.improved_note,
                    preset.test_split)
    took = time.perf_counter() - t_all
    print(f'[pipeline] all stages in {took:.0f} s')
    if len(todo) == len(every) and all(ran) and not options.dry_run:
        record_clean_run(ROOT / preset.work, took, options.seeds)


def _checks_of(stages: Sequence[Stage], names: set[str]) -> set[str]:
    """The checks guarding the stages ``names``: a check runs with what it guards (its
    verdict is their input)."""
    read = {i for s in stages if s.name in names for i in s.inputs}
    return {s.name for s in stages if s.always and set(s.outputs) & read}


def record_clean_run(work: Path, seconds: float, seeds: Sequence[int]) -> None:
    """The end-to-end time of a run in which every stage ran (none reused): the only
    time that says what the whole chain takes, unlike a sum of stages from reruns."""
    (work / 'clean_run.json').write_text(json.dumps(dict(
        seconds=round(seconds, 1), seeds=list(seeds) or None, commit=source_commit(),
        date=time.strftime('%Y-%m-%d %H:%M')), indent=2))


def source_commit() -> str:
    """The checkout's commit, '-dirty' if changed (bench/run.py compares against it)."""
    return subprocess.run(['git', 'describe', '--always', '--dirty'], cwd=ROOT,
                          capture_output=True, text=True).stdout.strip() or 'unknown'
