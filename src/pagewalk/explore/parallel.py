"""``--workers N`` for the strategies whose explored set does not depend on
the order of exploration: ``dfs`` (every interleaving) and ``random``
(execution *i* always uses the seed derived from (seed, i)).

DFS splits into independent subtrees: a task is a schedule prefix; a worker
explores the subtree below it depth-first for a batch of executions and
hands back the branches it did not reach as new tasks.  Every maximal
schedule lies in exactly one subtree, so the interleavings explored, and the
verdict, are those of one process -- only the order differs.  (DPOR's
reduction depends on what was explored before, so ``dpor`` runs in one
process; its searches are small.)
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from ..scenario.model import Scenario
from ..sched.scheduler import Chooser
from .api import Outcome
from .dpor import TreeChooser, TreeSearch
from .engine import Execution, run_execution
from .pct import pct_chooser
from .snapshot import Snapshot

#: executions a worker runs before handing its leftover branches back
BATCH = 64

_worker: dict[str, Any] = {}


def _init(scenario: Scenario, sem: str, bound: int | None, collect: bool, max_steps: int) -> None:
    # Ctrl-C reaches the whole process group: the parent alone decides to
    # stop (and cancels the batches not started); a worker finishes its batch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker.update(scenario=scenario, sem=sem, bound=bound, collect=collect, max_steps=max_steps)
    _worker["start"] = Snapshot(scenario, sem)


def _run(chooser: Chooser) -> Execution:
    w = _worker
    return run_execution(
        w["scenario"],
        w["sem"],
        chooser,
        max_steps=w["max_steps"],
        observe=w["collect"],
        start=w["start"],
    )


def dfs_task(prefix: list[int], stop_first: bool) -> tuple[list[Outcome], list[list[int]]]:
    """Explore the subtree below ``prefix`` for up to BATCH executions."""
    w = _worker
    search = TreeSearch(False, w["bound"])
    floor = len(prefix)
    outcomes: list[Outcome] = []
    current: list[int] | None = prefix
    while current is not None and len(outcomes) < BATCH:
        search.start_branch(current)
        ex = _run(TreeChooser(search, current))
        outcomes.append(Outcome.of(ex, w["collect"]))
        if ex.violated and stop_first:
            return outcomes, []
        current = search.next_prefix(floor)
    # the branch `current` is still pending in the tree, so it is listed too
    return outcomes, [] if current is None else search.pending_prefixes(floor)


def random_task(seed: int, indices: range, length: int) -> list[Outcome]:
    w = _worker
    n_tasks = len(w["scenario"].threads)
    return [Outcome.of(_run(pct_chooser(seed, i, n_tasks, length)), w["collect"]) for i in indices]


class Pool:
    def __init__(
        self,
        scenario: Scenario,
        sem: str,
        workers: int,
        bound: int | None,
        collect: bool,
        max_steps: int,
    ) -> None:
        ctx = mp.get_context("fork" if os.name == "posix" else "spawn")
        self.executor = ProcessPoolExecutor(
            workers,
            mp_context=ctx,
            initializer=_init,
            initargs=(scenario, sem, bound, collect, max_steps),
        )
        self.workers = workers

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def explore_dfs_parallel(pool: Pool, stop_first: bool, on_outcome: Any, out_of_budget: Any) -> None:
    """Run dfs over subtree tasks until none is left, a violation stops the
    search (stop_first), or the budget is spent.  ``on_outcome`` returns
    True to stop."""
    tasks: list[list[int]] = [[]]
    running: dict[Future, list[int]] = {}
    stop = False
    try:
        while (tasks or running) and not stop:
            while tasks and len(running) < 2 * pool.workers:
                prefix = tasks.pop()
                running[pool.executor.submit(dfs_task, prefix, stop_first)] = prefix
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: running[f]):
                del running[fut]
                outcomes, leftover = fut.result()
                for o in outcomes:
                    if on_outcome(o) or out_of_budget():
                        stop = True
                tasks.extend(reversed(leftover))
    finally:
        for fut in running:
            fut.cancel()


def explore_random_parallel(
    pool: Pool, seed: int, total: int, length: int, on_outcome: Any
) -> None:
    chunk = max(1, min(BATCH, total // (4 * pool.workers) or 1))
    futures = [
        pool.executor.submit(random_task, seed, range(i, min(total, i + chunk)), length)
        for i in range(0, total, chunk)
    ]
    try:
        for fut in futures:  # in index order, so the first violation is deterministic
            for o in fut.result():
                if on_outcome(o):
                    return
    finally:
        for fut in futures:
            fut.cancel()
