"""``--workers N`` for the strategies whose explored set does not depend on
the order of exploration: ``dfs`` (every interleaving) and ``random``
(execution *i* always uses the seed derived from (seed, i)).

DFS splits into independent subtrees: a task is a list of schedule
prefixes; a worker explores the subtree below each depth-first for a slice
of CPU time and hands back the branches it did not reach, which the parent
deals out again.  Every maximal schedule lies in exactly one subtree, so
the interleavings explored, and the verdict, are those of one process --
only the order differs.  (DPOR's
reduction depends on what was explored before, so ``dpor`` runs in one
process; its searches are small.)

With ``--cluster`` the same tasks run on Dask workers (explore/cluster.py).
A worker there has no initializer: each task carries the search's context,
and a worker sets itself up for a search (its snapshot) at the first task of
that search it runs.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from ..scenario.model import Scenario
from ..sched.scheduler import Chooser
from .api import Outcome
from .dpor import TreeChooser, TreeSearch
from .engine import Execution, run_execution
from .pct import pct_chooser
from .snapshot import Snapshot

#: CPU seconds a worker explores below a task's prefixes before handing
#: back the branches it did not reach.  Sized by time, not by executions, so
#: that a task's fixed cost (a round trip through the parent, or the Dask
#: scheduler, a few milliseconds of CPU) stays a small fraction of it however
#: fast an execution is.  Longer slices make fewer tasks but let a search
#: stopped by its budget run on for up to a slice, and leave a worker idle for
#: up to one at the end of the search.
SLICE = 0.3
#: the slice of a task given out while a worker would otherwise wait for one
#: (the whole tree's first task, the end of a search): its leftovers come
#: back soon to be shared
SHORT_SLICE = 0.02
#: executions in a chunk of a random search (at most: a chunk is also at most
#: a quarter of each worker's share)
BATCH = 256

#: the search a worker serves (per thread: a Dask worker may run several)
_local = threading.local()


def _state() -> dict[str, Any]:
    return _local.__dict__


def _init(scenario: Scenario, sem: str, bound: int | None, collect: bool, max_steps: int) -> None:
    # Ctrl-C reaches the whole process group: the parent alone decides to
    # stop (and cancels the batches not started); a worker finishes its batch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _setup(scenario, sem, bound, collect, max_steps)


def _setup(scenario: Scenario, sem: str, bound: int | None, collect: bool, max_steps: int) -> None:
    w = _state()
    w.clear()
    w.update(scenario=scenario, sem=sem, bound=bound, collect=collect, max_steps=max_steps)
    w["start"] = Snapshot(scenario, sem)


def in_context(context: tuple, fn: Any, *args: Any) -> Any:
    """Run a task on a cluster worker, set up for its search first if this
    worker has not served that search yet (``context[0]`` names it)."""
    w = _state()
    if w.get("token") != context[0]:
        _setup(*context[1:])
        w["token"] = context[0]
    return fn(*args)


def _run(chooser: Chooser) -> Execution:
    w = _state()
    return run_execution(
        w["scenario"],
        w["sem"],
        chooser,
        max_steps=w["max_steps"],
        observe=w["collect"],
        start=w["start"],
    )


def dfs_task(
    prefixes: list[list[int]], stop_first: bool, seconds: float
) -> tuple[list[Outcome], list[list[int]]]:
    """Explore the subtrees below ``prefixes``, one after the other, until all
    are done or ``seconds`` of this thread's CPU time are spent (after at
    least one execution); return the outcomes and the branches not reached."""
    w = _state()
    outcomes: list[Outcome] = []
    end = time.thread_time() + seconds
    for k, prefix in enumerate(prefixes):
        if outcomes and time.thread_time() >= end:
            return outcomes, prefixes[k:]
        search = TreeSearch(False, w["bound"])
        floor = len(prefix)
        current: list[int] | None = prefix
        while current is not None:
            search.start_branch(current)
            ex = _run(TreeChooser(search, current))
            outcomes.append(Outcome.of(ex, w["collect"]))
            if ex.violated and stop_first:
                return outcomes, []
            current = search.next_prefix(floor)
            if current is not None and time.thread_time() >= end:
                # the branch `current` is still pending in the tree, so it is listed too
                return outcomes, search.pending_prefixes(floor) + prefixes[k + 1 :]
    return outcomes, []


def random_task(seed: int, indices: range, length: int) -> list[Outcome]:
    w = _state()
    n_tasks = len(w["scenario"].threads)
    return [Outcome.of(_run(pct_chooser(seed, i, n_tasks, length)), w["collect"]) for i in indices]


class Pool:
    """Local worker processes, or a Dask cluster's workers (``client``)."""

    def __init__(
        self,
        scenario: Scenario,
        sem: str,
        workers: int,
        bound: int | None,
        collect: bool,
        max_steps: int,
        client: Any = None,
    ) -> None:
        args = (scenario, sem, bound, collect, max_steps)
        self.context: tuple | None = None
        if client is not None:
            from .cluster import worker_count

            self.executor: Any = client.get_executor(pure=False)
            self.workers = worker_count(client)
            self.context = (uuid.uuid4().hex, *args)
            return
        ctx = mp.get_context("fork" if os.name == "posix" else "spawn")
        self.executor = ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_init, initargs=args
        )
        self.workers = workers

    def submit(self, fn: Any, *args: Any) -> Future:
        if self.context is None:
            return self.executor.submit(fn, *args)
        return self.executor.submit(in_context, self.context, fn, *args)

    def close(self) -> None:
        if self.context is None:
            self.executor.shutdown(wait=True, cancel_futures=True)
        else:  # the client's executor cancels what is pending
            self.executor.shutdown(wait=False)


def deal(prefixes: list[list[int]], hands: int) -> list[list[list[int]]]:
    """``prefixes`` dealt round-robin into ``hands`` tasks: the shallow
    prefixes (big subtrees) come from the end of the list (it is a stack) and
    spread over the tasks, rather than all landing in one."""
    ordered = prefixes[::-1]
    return [ordered[i::hands] for i in range(min(hands, len(ordered)))]


def explore_dfs_parallel(
    pool: Pool,
    stop_first: bool,
    on_outcome: Any,
    out_of_budget: Any,
    tasks: list[list[int]] | None = None,
    mark: Any = None,
) -> None:
    """Run dfs over subtrees (``tasks``, schedule prefixes: the whole tree by
    default) until none is left, a violation stops the search (stop_first),
    or the budget is spent.  Whenever a worker could take a task, every
    prefix left is dealt out to the tasks that fit (two per worker: the
    second waits on the worker, with no round trip between them); a task
    explores its prefixes for a slice of time and hands back what it did not
    reach.  ``on_outcome`` returns True to stop.  ``mark(pending)`` is told
    the subtrees left whenever a task's outcomes are all counted
    (explore/checkpoint.py)."""
    tasks = [[]] if tasks is None else tasks
    running: dict[Future, list[list[int]]] = {}
    stop = False
    try:
        while (tasks or running) and not stop:
            free = 2 * pool.workers - len(running)
            if tasks and free > 0:
                hands = deal(tasks, free)
                tasks.clear()
                # too few to keep every worker busy: come back soon to share
                short = len(running) + len(hands) < pool.workers
                for hand in hands:
                    seconds = SHORT_SLICE if short else SLICE
                    running[pool.submit(dfs_task, hand, stop_first, seconds)] = hand
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: running[f]):
                del running[fut]
                outcomes, leftover = fut.result()
                for o in outcomes:
                    if on_outcome(o) or out_of_budget():
                        stop = True
                tasks.extend(reversed(leftover))
                if mark is not None:
                    mark([*tasks, *(p for hand in running.values() for p in hand)])
    finally:
        for fut in running:
            fut.cancel()


def explore_random_parallel(
    pool: Pool,
    seed: int,
    total: int,
    length: int,
    on_outcome: Any,
    start: int = 0,
    mark: Any = None,
) -> None:
    """Executions ``start`` to ``total`` of a random search; ``mark()`` is
    called whenever a chunk's outcomes are all counted."""
    chunk = max(1, min(BATCH, total // (4 * pool.workers) or 1))
    futures = [
        pool.submit(random_task, seed, range(i, min(total, i + chunk)), length)
        for i in range(start, total, chunk)
    ]
    try:
        for fut in futures:  # in index order, so the first violation is deterministic
            for o in fut.result():
                if on_outcome(o):
                    return
            if mark is not None:
                mark()
    finally:
        for fut in futures:
            fut.cancel()
