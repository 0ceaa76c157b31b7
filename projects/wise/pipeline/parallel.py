"""Run a pipeline's stages side by side where they do not depend on each other.

On a small CPU machine one training process leaves cores idle (its data loading,
Python and small kernels are serial): two trainings of one thread each finish sooner
than the same two one after the other with two threads each. A stage waits for the
earlier stages that write what it reads (:func:`dependencies`).
"""
from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import PurePath


def _related(a: str, b: str) -> bool:
    """The same path, or one inside the other."""
    pa, pb = PurePath(a), PurePath(b)
    return pa == pb or pa in pb.parents or pb in pa.parents


def dependencies(inputs: Sequence[Sequence[str]],
                 outputs: Sequence[Sequence[str]]) -> list[set[int]]:
    """For each task (in order), the earlier tasks one of whose outputs it reads."""
    return [{j for j in range(i) if any(_related(x, o) for x in ins for o in outputs[j])}
            for i, ins in enumerate(inputs)]


def run_in_parallel(keys: Sequence[Hashable], deps: Sequence[set[int]],
                    run: Callable[[Hashable], None], jobs: int) -> None:
    """Call ``run(key)`` for every key, at most ``jobs`` at once, each after the tasks
    it depends on (indices into ``keys``); earlier tasks start first. After a failure
    no task starts and the running ones finish; the first error is raised then."""
    pending = list(range(len(keys)))
    done: set[int] = set()
    running: dict[Future, int] = {}
    error: BaseException | None = None
    slots = max(jobs, 1)
    with ThreadPoolExecutor(slots) as pool:
        while True:
            for i in [i for i in pending if deps[i] <= done] if error is None else []:
                if len(running) >= slots:
                    break
                pending.remove(i)
                running[pool.submit(run, keys[i])] = i
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                i = running.pop(future)
                try:
                    future.result()
                    done.add(i)
                except BaseException as e:  # noqa: B036 (SystemExit of a failed command)
                    error = error or e
    if error is not None:
        raise error
