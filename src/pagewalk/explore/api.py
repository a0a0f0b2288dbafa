"""The exploration front end: strategies, budgets, shortening and replay."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ..scenario.model import Scenario
from ..sched.schedule import decode_schedule, encode_schedule
from ..sched.scheduler import Chooser, NonPreemptive, Scheduler, Task
from .checkpoint import INTERVAL, Cursor, open_cursor
from .dpor import TreeChooser, TreeSearch
from .engine import Execution, run_execution
from .pct import pct_chooser
from .snapshot import Snapshot

STRATEGIES = ("dpor", "dfs", "random")
#: executions of a random search given no budget (it never completes by itself)
RANDOM_EXECUTIONS = 1000


@dataclass
class Violation:
    check: str
    message: str
    schedule: str
    preemptions: int
    trace: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ExploreResult:
    scenario: str
    semantics: str
    strategy: str
    status: str  # ok | violation | incomplete
    executions: int
    elapsed_s: float
    pruned: int = 0
    reason: str = ""  # why an incomplete search stopped
    interrupted: str = ""  # the signal that ended the search early: SIGINT, SIGTERM
    violation: Violation | None = None
    violations: list[Violation] = field(default_factory=list)
    observations: dict[tuple, str] = field(default_factory=dict)  # state -> a schedule
    #: how much of the tree a dfs or dpor search that stopped early had
    #: finished (TreeSearch.coverage; in several processes, the subtrees
    #: left: {"subtrees": N}); None: complete, or not a tree search
    coverage: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        v = self.violation
        return {
            "scenario": self.scenario,
            "semantics": self.semantics,
            "status": self.status,
            "executions": self.executions,
            "elapsed_s": round(self.elapsed_s, 4),
            "strategy": self.strategy,
            "pruned": self.pruned,
            "reason": self.reason,
            "interrupted": self.interrupted or None,
            "coverage": self.coverage,
            "violations": len(self.violations),
            "distinct_violations": [
                {"check": v.check, "message": v.message, "schedule": v.schedule, "count": n}
                for v, n in self.distinct_violations()
            ],
            "violation": None
            if v is None
            else {
                "check": v.check,
                "message": v.message,
                "schedule": v.schedule,
                "preemptions": v.preemptions,
                "trace": [{"task": e["task"], "event": e["event"]} for e in v.trace],
            },
        }

    def distinct_violations(self) -> list[tuple[Violation, int]]:
        """Each distinct violation message once, with how many executions
        reached it (the first schedule found stands for them)."""
        seen: dict[str, list] = {}
        for v in self.violations:
            entry = seen.setdefault(v.message, [v, 0])
            entry[1] += 1
        return [(v, n) for v, n in seen.values()]


def count_preemptions(choices: list[int], steps_enabled: list[list[int]]) -> int:
    n = 0
    for i in range(1, len(choices)):
        if choices[i] != choices[i - 1] and choices[i - 1] in steps_enabled[i]:
            n += 1
    return n


def check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r} (known: {', '.join(STRATEGIES)})")


class Budget:
    def __init__(self, max_executions: int | None, timeout: float | None) -> None:
        self.max_executions = max_executions
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.start = time.monotonic()

    def exhausted(self, executions: int) -> str:
        if self.max_executions is not None and executions >= self.max_executions:
            return f"--max-executions {self.max_executions} reached"
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return "--timeout reached"
        return ""


@dataclass
class Outcome:
    """What a search keeps of one execution (small and picklable: ``--workers``
    sends it back from a worker process).  Never changed once made: the
    executions that leave nothing to keep share one (``PLAIN``), which a
    batch of outcomes pickles once."""

    pruned: bool
    violated: bool
    message: str
    schedule: str  # encoded only when it is kept: collecting, or a violation
    preemptions: int
    observation: tuple

    @classmethod
    def of(cls, ex: Execution, collect: bool) -> Outcome:
        if ex.outcome == "pruned":
            return PRUNED
        violated = ex.violated
        if not (violated or collect or ex.message or ex.observation):
            return PLAIN
        schedule = encode_schedule(ex.choices) if collect or violated else ""
        preemptions = count_preemptions(ex.choices, [s[0] for s in ex.states]) if violated else 0
        return cls(False, violated, ex.message, schedule, preemptions, ex.observation)


#: an execution that completed without a violation, nothing collected
PLAIN = Outcome(False, False, "", "", 0, ())
#: an execution cut short by a sleep set (dpor)
PRUNED = Outcome(True, False, "", "", 0, ())


class Tally:
    """A search's accounting: the result it fills in, its budget, whether it
    stops at the first violation, collects final states, reports progress."""

    def __init__(
        self,
        res: ExploreResult,
        budget: Budget,
        stop_first: bool = True,
        collect: bool = False,
        progress: Callable[[int, int, float], None] | None = None,
    ) -> None:
        self.res = res
        self.budget = budget
        self.stop_first = stop_first
        self.collect = collect
        self.progress = progress

    def record(self, ex: Execution) -> bool:
        """Account for one execution run here; True if the search should stop."""
        return self.take(Outcome.of(ex, self.collect))

    def take(self, o: Outcome) -> bool:
        """Judge an outcome, then count it (last: see count); True if the
        search should stop."""
        stop = not o.pruned and self.judge(o)
        self.count(o)
        return stop

    def count(self, o: Outcome) -> None:
        """Count an execution and keep its final state.  The count goes up
        last, so that an interrupt before it leaves the execution uncounted
        as a whole (explore/checkpoint.py undoes the rest)."""
        res = self.res
        if o.pruned:
            res.pruned += 1
        elif self.collect:
            _keep_representative(res, o.observation, o.schedule)
        res.executions += 1

    def judge(self, o: Outcome) -> bool:
        """Keep a counted execution's violation; True if the search should stop."""
        if not o.violated:
            return False
        self.res.violations.append(
            Violation(o.message.split(":", 1)[0], o.message, o.schedule, o.preemptions)
        )
        return self.stop_first

    def tick(self) -> None:
        if self.progress is not None:
            self.progress(self.res.executions, len(self.res.violations), self.elapsed())

    def exhausted(self, prefix: str = "") -> bool:
        """Is the budget spent?  If so the search is incomplete, and says why."""
        why = self.budget.exhausted(self.res.executions)
        if why:
            self.res.status, self.res.reason = "incomplete", prefix + why
        return bool(why)

    def elapsed(self) -> float:
        return time.monotonic() - self.budget.start

    def interrupt(self, sig: BaseException) -> None:
        """The search was interrupted: incomplete, unless it found a violation."""
        res = self.res
        res.interrupted = getattr(sig, "signal_name", "SIGINT")
        res.status, res.reason = "incomplete", f"interrupted by {res.interrupted}"


def explore(
    scenario: Scenario,
    semantics: str | None = None,
    strategy: str = "dpor",
    max_executions: int | None = None,
    timeout: float | None = None,
    preemption_bound: int | None = None,
    stop_first: bool = True,
    seed: int = 0,
    collect: bool = False,
    shorten: bool = True,
    progress: Callable[[int, int, float], None] | None = None,
    max_steps: int = 10_000,
    workers: int = 1,
    output_dir: str | None = None,
    cluster: str | None = None,
    checkpoint: str | None = None,
    resume: str | None = None,
    checkpoint_interval: float = INTERVAL,
) -> ExploreResult:
    """Explore the interleavings of ``scenario``'s threads.

    Status ``ok``: the search finished and no execution violated a check;
    ``violation``: one did (``result.violation`` has a replayable schedule,
    shortened to the fewest preemptions found); ``incomplete``: a budget or
    the preemption bound stopped the search first.  ``collect`` records the
    distinct final observable states with a schedule reaching each.
    ``output_dir``: where the reported violation's execution, re-run for its
    trace, writes its files (core dumps); no other execution writes any, and
    None, the default, writes none at all.  ``cluster``: a Dask scheduler
    address (or ``local:N``) to run dfs subtrees and random seeds on, as
    ``workers`` runs them in local processes; dpor runs here.
    ``checkpoint``: a file to save the search's state in (when it starts,
    every ``checkpoint_interval`` seconds and when it ends, interrupted
    too); ``resume``: a checkpoint of the same search to continue from
    (explore/checkpoint.py)."""
    check_strategy(strategy)
    if cluster is not None:
        from .cluster import local_workers

        local_workers(cluster)  # a bad address is bad input, even for dpor
    sem = semantics or scenario.semantics
    budget = Budget(max_executions, timeout)
    start = Snapshot(scenario, sem)

    def run(chooser: Chooser) -> Execution:
        return run_execution(
            scenario, sem, chooser, max_steps=max_steps, observe=collect, start=start
        )

    def traced(choices: list[int]) -> Execution:
        return run_execution(
            scenario,
            sem,
            ReplayChooser(choices),
            max_steps=max_steps,
            trace=True,
            output_dir=output_dir,
        )

    res = ExploreResult(scenario.name, sem, strategy, "ok", 0, 0.0)
    tally = Tally(res, budget, stop_first, collect, progress)
    spread = workers > 1 or cluster is not None
    spread = spread and strategy != "dpor" and len(scenario.threads) > 1
    cursor = Cursor(tally)
    if checkpoint is not None or resume is not None:
        search_of = (scenario, sem, strategy, preemption_bound, seed, stop_first, max_steps)
        cursor = open_cursor(
            tally, search_of, collect, checkpoint, resume, spread, checkpoint_interval
        )
    if spread:
        try:
            _explore_parallel(
                scenario,
                sem,
                run,
                tally,
                strategy,
                preemption_bound,
                seed,
                max_steps,
                workers,
                cluster,
                cursor,
            )
        except KeyboardInterrupt as sig:
            tally.interrupt(sig)
        cursor.settle()
        return _finish(tally, run, traced, shorten)
    n_tasks = len(scenario.threads)
    return search(run, traced, tally, n_tasks, strategy, preemption_bound, seed, shorten, cursor)


def _explore_parallel(
    scenario: Scenario,
    sem: str,
    run: Callable,
    tally: Tally,
    strategy: str,
    bound: int | None,
    seed: int,
    max_steps: int,
    workers: int,
    cluster: str | None,
    cursor: Cursor,
) -> None:
    """dfs subtrees or random seeds on ``workers`` local processes, or on the
    Dask cluster at ``cluster``."""
    from .parallel import Pool

    res = tally.res

    def on_outcome(o: Outcome) -> bool:
        stop = tally.take(o)
        if not o.pruned:
            tally.tick()
        return stop

    if cluster is not None:
        from .cluster import cluster_client

        client_context: Any = cluster_client(cluster)
    else:
        client_context = nullcontext(None)
    with client_context as client:
        pool = Pool(
            scenario, sem, workers if client is None else 0, bound, tally.collect, max_steps, client
        )
        _run_pool(pool, run, tally, strategy, seed, on_outcome, cursor)
    res.violations.sort(key=lambda v: (v.preemptions, len(v.schedule), v.schedule))


def _run_pool(
    pool: Any,
    run: Callable,
    tally: Tally,
    strategy: str,
    seed: int,
    on_outcome: Callable,
    cursor: Cursor,
) -> None:
    from .parallel import explore_dfs_parallel, explore_random_parallel

    res = tally.res
    try:
        if strategy == "random":
            total = tally.budget.max_executions or RANDOM_EXECUTIONS
            start = cursor.begin_random(lambda: _pct_length(run), spread=True)
            if start is not None:
                explore_random_parallel(
                    pool, seed, total, cursor.length, on_outcome, start, cursor.mark
                )
            if not res.violations:
                res.status, res.reason = "incomplete", f"random search: {total} executions"
        else:
            tasks = cursor.begin_tasks()
            if tasks is not None:
                explore_dfs_parallel(
                    pool, tally.stop_first, on_outcome, tally.exhausted, tasks, cursor.mark_tasks
                )
    finally:
        pool.close()


def _pct_length(run: Callable[[Chooser], Execution]) -> int:
    """PCT's estimate of an execution's length: the non-preemptive one's."""
    return max(2, len(run(NonPreemptive()).choices))


def search(
    run: Callable[[Chooser], Execution],
    traced: Callable[[list[int]], Execution],
    tally: Tally,
    n_tasks: int,
    strategy: str,
    preemption_bound: int | None,
    seed: int,
    shorten: bool,
    cursor: Cursor | None = None,
) -> ExploreResult:
    """The search itself, over any program whose executions ``run`` performs
    (a scenario, or a user's model built on ``pagewalk.explore.program``).  An
    interrupt (Ctrl-C, or SIGTERM through the CLI) ends it at once with what
    it found so far, and how much of the tree that was (``coverage``).
    ``cursor``: follows the search, and checkpoints it if it has a file."""
    cursor = cursor or Cursor(tally)
    try:
        if strategy == "random":
            _explore_random(run, n_tasks, seed, tally, cursor)
        else:
            _explore_tree(run, strategy == "dpor", preemption_bound, tally, cursor)
    except KeyboardInterrupt as sig:
        tally.interrupt(sig)
    cursor.settle()
    return _finish(tally, run, traced, shorten)


def _finish(tally: Tally, run: Callable, traced: Callable, shorten: bool) -> ExploreResult:
    res = tally.res
    res.elapsed_s = tally.elapsed()
    if res.interrupted:
        shorten = False  # at once: no more searching
    if res.violations:
        res.status = "violation"
        first = res.violations[0]
        try:
            if shorten:
                first = shorten_violation(run, first)
            first.trace = traced(decode_schedule(first.schedule)).trace
        except KeyboardInterrupt as sig:  # keep the violation found, untraced
            tally.interrupt(sig)
            res.status = "violation"
        res.violation = first
    return res


def _keep_representative(res: ExploreResult, observation: tuple, schedule: str) -> None:
    """One schedule per final state: the shortest string, then the smallest,
    so that the choice does not depend on the order of exploration."""
    best = res.observations.get(observation)
    if best is None or (len(schedule), schedule) < (len(best), best):
        res.observations[observation] = schedule


def _explore_tree(
    run: Callable[[Chooser], Execution],
    reduce: bool,
    bound: int | None,
    tally: Tally,
    cursor: Cursor | None = None,
) -> None:
    tree = TreeSearch(reduce, bound)
    cursor = cursor or Cursor(tally)
    prefix = cursor.begin_tree(tree)  # [] or where a checkpoint was; None: nothing left
    while prefix is not None:
        cursor.mark(prefix)
        tree.start_branch(prefix)
        ex = run(TreeChooser(tree, prefix))
        tree.analyze(ex)
        if tally.record(ex):
            return
        tally.tick()
        nxt = tree.next_prefix()
        if nxt is None:
            if tree.bounded and not tally.res.violations:
                tally.res.status = "incomplete"
                tally.res.reason = "the preemption bound cut branches"
            return
        if tally.exhausted():
            return
        prefix = nxt


def _explore_random(
    run: Callable[[Chooser], Execution],
    n_tasks: int,
    seed: int,
    tally: Tally,
    cursor: Cursor,
) -> None:
    if n_tasks <= 1:  # one interleaving only: one execution is the whole search
        if cursor.begin_random(lambda: 0, single=True) is not None:
            cursor.mark()
            tally.record(run(NonPreemptive()))
        return
    budget = tally.budget
    if budget.max_executions is None and budget.deadline is None:
        budget.max_executions = RANDOM_EXECUTIONS  # random search never completes
    i = cursor.begin_random(lambda: _pct_length(run))  # 0, or where a checkpoint was
    length = cursor.length
    while i is not None:
        cursor.mark()
        ex = run(pct_chooser(seed, i, n_tasks, length))
        i += 1
        if tally.record(ex):
            return
        tally.tick()
        if tally.exhausted("random search: "):
            return


def shorten_violation(run: Callable[[Chooser], Execution], found: Violation) -> Violation:
    """Look for a violation with fewer preemptions: a bounded DPOR search with
    bound 0, 1, ... below the one found (each capped in time)."""
    for bound in range(found.preemptions):
        res = ExploreResult("", "", "dpor", "ok", 0, 0.0)
        _explore_tree(run, True, bound, Tally(res, Budget(2000, 10.0)))
        if res.violations:
            return res.violations[0]
    return found


class ReplayChooser(Chooser):
    """Follow a schedule exactly, then continue without preemption."""

    def __init__(self, schedule: list[int]) -> None:
        self.schedule = schedule
        self.step = 0
        self.fallback = NonPreemptive()

    def choose(self, sched: Scheduler, enabled: list[Task]) -> Task:
        i = self.step
        self.step += 1
        if i < len(self.schedule):
            want = self.schedule[i]
            for t in enabled:
                if t.index == want:
                    return t
            names = ", ".join(f"{t.index}={t.name}" for t in enabled)
            raise InputError(
                f"schedule step {i}: task {want} cannot run there (enabled: {names})", "schedule"
            )
        return self.fallback.choose(sched, enabled)


def replay(
    scenario: Scenario,
    schedule: str,
    semantics: str | None = None,
    max_steps: int = 10_000,
    output_dir: str | None = None,
) -> Execution:
    """Re-run one execution exactly, with a step-by-step trace; its files go
    under ``output_dir`` (None, the default: none are written).  Every step
    of the schedule must be taken: a schedule longer than the execution is
    bad input."""
    choices = decode_schedule(schedule)
    n = len(scenario.threads)
    bad = [c for c in choices if c >= n]
    if bad:
        raise InputError(
            f"the schedule names task {bad[0]}, but the scenario has {n} thread(s) (0..{n - 1})",
            "schedule",
        )
    chooser = ReplayChooser(choices)
    ex = run_execution(
        scenario,
        semantics or scenario.semantics,
        chooser,
        max_steps=max_steps,
        trace=True,
        output_dir=output_dir,
    )
    if chooser.step < len(choices) and ex.outcome != "violation":
        raise InputError(
            f"the schedule has {len(choices)} steps, but the execution ended after "
            f"{chooser.step}: {encode_schedule(choices[: chooser.step]) or '(empty)'} replays it",
            "schedule",
        )
    return ex
