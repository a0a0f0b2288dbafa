"""Probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010): random
distinct task priorities, always run the highest-priority enabled task, and
at d-1 random step numbers drop the running task's priority below all
others.  Seeded, so a run is reproducible."""

from __future__ import annotations

import random

from ..sched.scheduler import Chooser, Scheduler, Task


class PCTChooser(Chooser):
    def __init__(self, rng: random.Random, n_tasks: int, depth: int, length: int) -> None:
        prios = list(range(depth, depth + n_tasks))
        rng.shuffle(prios)
        self.priority = dict(enumerate(prios))
        self.changes = {rng.randrange(1, max(2, length)): d for d in range(depth - 1, 0, -1)}
        self.step = 0

    def choose(self, sched: Scheduler, enabled: list[Task]) -> Task:
        self.step += 1
        low = self.changes.get(self.step)
        if low is not None and sched.last is not None:
            self.priority[sched.last.index] = low
        return max(enabled, key=lambda t: self.priority[t.index])


def pct_chooser(seed: int, i: int, n_tasks: int, length: int) -> PCTChooser:
    """The chooser of a random search's execution ``i``: its randomness
    depends on (seed, i) only, so that ``--workers`` can split the executions."""
    return PCTChooser(random.Random(f"{seed}:{i}"), n_tasks, depth=3, length=length)
