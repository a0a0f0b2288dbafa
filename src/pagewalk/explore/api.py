"""The exploration front end: strategies, budgets, shortening and replay."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ..scenario.model import Scenario
from ..sched.schedule import decode_schedule, encode_schedule
from ..sched.scheduler import Chooser, NonPreemptive, Scheduler, Task
from .dpor import TreeChooser, TreeSearch
from .engine import Execution, run_execution
from .pct import PCTChooser

STRATEGIES = ("dpor", "dfs", "random")


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
    bounded: bool = False
    reason: str = ""  # why an incomplete search stopped
    violation: Violation | None = None
    violations: list[Violation] = field(default_factory=list)
    observations: dict[tuple, str] = field(default_factory=dict)  # state -> a schedule

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


def count_preemptions(choices: list[int], steps_enabled: list[list[int]]) -> int:
    n = 0
    for i in range(1, len(choices)):
        if choices[i] != choices[i - 1] and choices[i - 1] in steps_enabled[i]:
            n += 1
    return n


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
) -> ExploreResult:
    """Explore the interleavings of ``scenario``'s threads.

    Status ``ok``: the search finished and no execution violated a check;
    ``violation``: one did (``result.violation`` has a replayable schedule,
    shortened to the fewest preemptions found); ``incomplete``: a budget or
    the preemption bound stopped the search first.  ``collect`` records the
    distinct final observable states with a schedule reaching each."""
    if strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r} (known: {', '.join(STRATEGIES)})")
    sem = semantics or scenario.semantics
    budget = Budget(max_executions, timeout)

    def run(chooser: Chooser) -> Execution:
        return run_execution(scenario, sem, chooser, max_steps=max_steps, observe=collect)

    def traced(choices: list[int]) -> Execution:
        return run_execution(scenario, sem, ReplayChooser(choices), max_steps=max_steps, trace=True)

    res = ExploreResult(scenario.name, sem, strategy, "ok", 0, 0.0)
    if workers > 1 and strategy != "dpor" and len(scenario.threads) > 1:
        return _explore_parallel(
            scenario,
            sem,
            traced,
            run,
            res,
            strategy,
            budget,
            preemption_bound,
            stop_first,
            seed,
            collect,
            shorten,
            progress,
            max_steps,
            workers,
        )
    return search(
        run,
        traced,
        res,
        len(scenario.threads),
        strategy,
        budget,
        preemption_bound,
        stop_first,
        seed,
        collect,
        shorten,
        progress,
    )


def _explore_parallel(
    scenario: Scenario,
    sem: str,
    traced: Callable,
    run: Callable,
    res: ExploreResult,
    strategy: str,
    budget: Budget,
    bound: int | None,
    stop_first: bool,
    seed: int,
    collect: bool,
    shorten: bool,
    progress: Callable | None,
    max_steps: int,
    workers: int,
) -> ExploreResult:
    from .parallel import Pool, explore_dfs_parallel, explore_random_parallel

    def on_outcome(o: Any) -> bool:
        res.executions += 1
        if o.pruned:
            res.pruned += 1
            return False
        if collect:
            _keep_representative(res, o.observation, o.schedule)
        if progress is not None:
            progress(res.executions, len(res.violations), time.monotonic() - budget.start)
        if o.violated:
            res.violations.append(
                Violation(o.message.split(":", 1)[0], o.message, o.schedule, o.preemptions)
            )
            return stop_first
        return False

    def out_of_budget() -> bool:
        why = budget.exhausted(res.executions)
        if why:
            res.status, res.reason = "incomplete", why
        return bool(why)

    pool = Pool(scenario, sem, workers, bound, collect, max_steps)
    try:
        if strategy == "random":
            total = budget.max_executions or 1000
            explore_random_parallel(pool, seed, total, _pct_length(run), on_outcome)
            if not res.violations:
                res.status, res.reason = "incomplete", f"random search: {total} executions"
        else:
            explore_dfs_parallel(pool, stop_first, on_outcome, out_of_budget)
    finally:
        pool.close()
    res.elapsed_s = time.monotonic() - budget.start
    if res.violations:
        res.violations.sort(key=lambda v: (v.preemptions, len(v.schedule), v.schedule))
    return _finish(res, run, traced, shorten)


def _pct_length(run: Callable[[Chooser], Execution]) -> int:
    """PCT's estimate of an execution's length: the non-preemptive one's."""
    return max(2, len(run(NonPreemptive()).choices))


def search(
    run: Callable[[Chooser], Execution],
    traced: Callable[[list[int]], Execution],
    res: ExploreResult,
    n_tasks: int,
    strategy: str,
    budget: Budget,
    preemption_bound: int | None,
    stop_first: bool,
    seed: int,
    collect: bool,
    shorten: bool,
    progress: Callable | None,
) -> ExploreResult:
    """The search itself, over any program whose executions ``run`` performs
    (a scenario, or a user's model built on ``pagewalk.sched.model``)."""
    if strategy == "random":
        _explore_random(run, n_tasks, budget, res, stop_first, seed, collect, progress)
    else:
        _explore_tree(
            run, strategy == "dpor", preemption_bound, budget, res, stop_first, collect, progress
        )
    res.elapsed_s = time.monotonic() - budget.start
    return _finish(res, run, traced, shorten)


def _finish(res: ExploreResult, run: Callable, traced: Callable, shorten: bool) -> ExploreResult:
    if res.violations:
        res.status = "violation"
        first = res.violations[0]
        if shorten:
            first = shorten_violation(run, first)
        first.trace = traced(decode_schedule(first.schedule)).trace
        res.violation = first
    return res


def _keep_representative(res: ExploreResult, observation: tuple, schedule: str) -> None:
    """One schedule per final state: the shortest string, then the smallest,
    so that the choice does not depend on the order of exploration."""
    best = res.observations.get(observation)
    if best is None or (len(schedule), schedule) < (len(best), best):
        res.observations[observation] = schedule


def _record(res: ExploreResult, ex: Execution, collect: bool) -> bool:
    """Account for one execution; True if the search should stop."""
    res.executions += 1
    if ex.outcome == "pruned":
        res.pruned += 1
        return False
    if collect:
        _keep_representative(res, ex.observation, encode_schedule(ex.choices))
    if ex.violated:
        schedule = encode_schedule(ex.choices)
        check = ex.message.split(":", 1)[0]
        res.violations.append(
            Violation(
                check,
                ex.message,
                schedule,
                count_preemptions(ex.choices, [s[0] for s in ex.states]),
            )
        )
        return True
    return False


def _explore_tree(
    run: Callable[[Chooser], Execution],
    reduce: bool,
    bound: int | None,
    budget: Budget,
    res: ExploreResult,
    stop_first: bool,
    collect: bool,
    progress: Callable | None,
) -> None:
    search = TreeSearch(reduce, bound)
    prefix: list[int] = []
    while True:
        search.start_branch(prefix)
        ex = run(TreeChooser(search, prefix))
        search.analyze(ex)
        if _record(res, ex, collect) and stop_first:
            return
        if progress is not None:
            progress(res.executions, len(res.violations), time.monotonic() - budget.start)
        nxt = search.next_prefix()
        if nxt is None:
            if search.bounded and not res.violations:
                res.status, res.reason = "incomplete", "the preemption bound cut branches"
            res.bounded = search.bounded
            return
        why = budget.exhausted(res.executions)
        if why:
            res.status, res.reason = "incomplete", why
            return
        prefix = nxt


def _explore_random(
    run: Callable[[Chooser], Execution],
    n_tasks: int,
    budget: Budget,
    res: ExploreResult,
    stop_first: bool,
    seed: int,
    collect: bool,
    progress: Callable | None,
) -> None:
    if n_tasks <= 1:  # one interleaving only: one execution is the whole search
        _record(res, run(NonPreemptive()), collect)
        return
    if budget.max_executions is None and budget.deadline is None:
        budget.max_executions = 1000  # random search never completes: default budget
    length = _pct_length(run)
    i = 0
    while True:
        # execution i's randomness depends on (seed, i) only: --workers splits them
        chooser = PCTChooser(random.Random(f"{seed}:{i}"), n_tasks, depth=3, length=length)
        i += 1
        ex = run(chooser)
        if _record(res, ex, collect) and stop_first:
            return
        if progress is not None:
            progress(res.executions, len(res.violations), time.monotonic() - budget.start)
        why = budget.exhausted(res.executions)
        if why:
            res.status, res.reason = "incomplete", f"random search: {why}"
            return


def shorten_violation(run: Callable[[Chooser], Execution], found: Violation) -> Violation:
    """Look for a violation with fewer preemptions: a bounded DPOR search with
    bound 0, 1, ... below the one found (each capped in time)."""
    for bound in range(found.preemptions):
        res = ExploreResult("", "", "dpor", "ok", 0, 0.0)
        _explore_tree(run, True, bound, Budget(2000, 10.0), res, True, False, None)
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
    scenario: Scenario, schedule: str, semantics: str | None = None, max_steps: int = 10_000
) -> Execution:
    """Re-run one execution exactly, with a step-by-step trace."""
    choices = decode_schedule(schedule)
    n = len(scenario.threads)
    bad = [c for c in choices if c >= n]
    if bad:
        raise InputError(
            f"the schedule names task {bad[0]}, but the scenario has {n} thread(s) (0..{n - 1})",
            "schedule",
        )
    return run_execution(
        scenario,
        semantics or scenario.semantics,
        ReplayChooser(choices),
        max_steps=max_steps,
        trace=True,
    )
