"""The happens-before state of DPOR's race analysis, kept from one
execution to the next and rewound to where they part.

Consecutive executions of a tree search share a prefix: the steps the
recording scheduler replays (``Execution.analysed`` of them are exactly as
before).  The vector clocks and the per-key accesses after those steps are
the same as the last execution's, so the analysis rewinds its state to the
end of the shared prefix -- undoing, step by step from the end, what each
later step changed -- and goes on from there with the new steps, instead of
recomputing the whole execution.  Every step's undo record is small: the
task's previous clock and, per footprint key, the list it replaced or the
length it appended to.
"""

from __future__ import annotations

from ..sched.scheduler import CONFLICTS, INC, Event, R, W


class RaceState:
    """Clocks and accesses after each step of the execution analysed last."""

    __slots__ = ("accesses", "clocks", "n_tasks", "task_clock", "undo", "zero")

    def __init__(self, n_tasks: int) -> None:
        self.n_tasks = n_tasks
        self.zero = [0] * n_tasks
        self.clocks: list[list[int]] = []  # step -> its vector clock
        self.task_clock: dict[int, list[int]] = {}  # task -> clock of its last step
        self.accesses: dict = {}  # key -> [(step, mode, task)] since its last write
        self.undo: list[tuple] = []  # step -> (task, its clock before, key changes)

    def __len__(self) -> int:
        return len(self.clocks)

    def rewind(self, n: int) -> None:
        """Back to the state after the first ``n`` steps."""
        accesses, task_clock = self.accesses, self.task_clock
        undo = self.undo
        while len(undo) > n:
            p, before, changes = undo.pop()
            if before is None:
                del task_clock[p]
            else:
                task_clock[p] = before
            for key, old in reversed(changes):
                if old is None:
                    del accesses[key]
                elif type(old) is int:
                    del accesses[key][old:]
                else:
                    accesses[key] = old
        del self.clocks[n:]

    def step(self, i: int, p: int, ev: Event) -> list[int]:
        """Add step ``i`` (task ``p``, event ``ev``): the earlier steps of
        other tasks it races with, latest first.  Only each key's accesses
        since its last write are kept: an access before that write happens
        before the write, and the write before any later access, so it can
        race with none and its clock is in the write's.  An access is kept
        as (step, mode, task)."""
        accesses = self.accesses
        conflicts: dict[int, int] = {}  # step -> its task
        footprint = ev.footprint
        for key, mode in footprint:
            seen = accesses.get(key)
            if seen:
                against = _CONFLICTING[mode]
                for j, m, q in seen:
                    if q != p and m in against:
                        conflicts[j] = q
        changes = []
        for key, mode in footprint:
            seen = accesses.get(key)
            if seen is None or mode == W:
                changes.append((key, seen))
                accesses[key] = [(i, mode, p)]
            else:
                changes.append((key, len(seen)))
                seen.append((i, mode, p))
        before = self.task_clock.get(p)
        merged = (self.zero if before is None else before).copy()
        races: list[int] = []
        if conflicts:
            clocks = self.clocks
            for j in sorted(conflicts, reverse=True):
                if merged[conflicts[j]] <= j:  # not ordered before i through a later step
                    races.append(j)
                merged = list(map(max, merged, clocks[j]))
        merged[p] = i + 1
        self.clocks.append(merged)
        self.task_clock[p] = merged
        self.undo.append((p, before, changes))
        return races


#: by a step's mode, the modes of earlier accesses to the same key it
#: conflicts with (``CONFLICTS``, indexed)
_CONFLICTING = tuple(frozenset(b for a2, b in CONFLICTS if a2 == a) for a in (R, W, INC))
