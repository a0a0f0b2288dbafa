"""One execution of a scenario under a scheduler: setup sequentially, the
threads as tasks chosen step by step, then final operations and checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import InternalError, ModelFailure, PagewalkError
from ..scenario.model import Scenario
from ..scenario.runner import CheckResult, Runner, RunResult
from ..sched.schedule import encode_schedule
from ..sched.scheduler import Chooser, Event, Scheduler, Task
from .observe import observe_state, pin_views, pte_summary
from .snapshot import Snapshot, run_setup


@dataclass
class Execution:
    """What one execution did: its schedule and steps, the states the
    explorer needs (who was enabled, each task's pending event), the run's
    results and checks, and its verdict."""

    steps: list[tuple[int, Event]]
    states: list[tuple[list[int], list[Event]]]
    result: RunResult | None
    outcome: str  # ok | violation | pruned
    message: str = ""
    trace: list[dict[str, Any]] = field(default_factory=list)
    observation: tuple = ()
    #: the steps before this one are those of an execution already analysed
    #: (the replayed prefix, as judged): their races need no second look
    analysed: int = 0

    @property
    def choices(self) -> list[int]:
        """The schedule: the task of each step (built on demand: most
        executions of a search are never encoded)."""
        return [index for index, _ in self.steps]

    @property
    def violated(self) -> bool:
        return self.outcome == "violation"

    @classmethod
    def of(
        cls, sched: RecordingScheduler, result: RunResult | None, outcome: str, message: str = ""
    ) -> Execution:
        """The execution ``sched`` ran."""
        return cls(sched.steps, sched.states, result, outcome, message, analysed=sched.analysed)


class Pruned(Exception):
    """Raised by a chooser to abandon a redundant execution (sleep-set blocked)."""


class RecordingScheduler(Scheduler):
    """A scheduler that also records, before every step, which tasks were
    enabled and what each task was about to do."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.states: list[tuple[list[int], list[Event]]] = []
        #: the steps the chooser replays from an execution before
        self.replay = self.chooser.replayed()
        self.n_replay = len(self.replay)
        self.analysed = 0  # see Execution.analysed

    def _judged(self, i: int) -> int:
        """How many of the first ``i`` steps, all replayed, are exactly as an
        execution before had them: all of them, but for a lock step whose
        critical section is still open -- it is judged (a read if the
        section changes nothing) only when the section closes, here
        perhaps otherwise than there."""
        for t in self.tasks:
            for step, _before in t.sections.values():
                i = min(i, step)
        return i

    def _step(self) -> Task | None:
        """A replayed step is taken as recorded: the run is deterministic,
        so the tasks enabled there are those recorded, and the chooser's
        answer is known.  Only the chosen task's being enabled is checked."""
        i = len(self.steps)
        if i >= self.n_replay:
            if i and i == self.n_replay:
                self.analysed = self._judged(i)
            return super()._step()
        node = self.replay[i]
        task = self.tasks[node.choice]
        if task.done or not self.is_enabled(task):
            # a defect of the model (its runs are not deterministic), never
            # a kernel bug: run_execution reports it as an internal error
            raise RuntimeError(f"replay diverged at step {i}: task {task.name} cannot run")
        self.states.append((node.enabled, node.events))
        return self._take(task)

    def _choose(self, enabled: list[Task], ids: list[int]) -> Task:
        self.states.append((ids, self.pendings.copy()))
        return self.chooser.choose(self, enabled)


def run_execution(
    scenario: Scenario,
    semantics: str | None,
    chooser: Chooser,
    max_steps: int = 10_000,
    trace: bool = False,
    observe: bool = False,
    output_dir: str | None = None,
    start: Snapshot | None = None,
) -> Execution:
    """Run setup, then the threads under ``chooser``, then final and the checks.
    Files the scenario writes (core dumps) go under ``output_dir``; None, the
    default, writes none.  ``start``: the state after setup, taken once for
    the whole search (it writes no files), instead of running setup."""
    if start is not None:
        runner = start.runner()
    else:
        runner = run_setup(scenario, semantics, output_dir)
    sched = RecordingScheduler(runner.k, chooser, max_steps=max_steps, trace=trace)
    try:
        return _run_threads(runner, sched, scenario, trace, observe)
    except Exception as err:  # a thread's, or in final or a check: the model's defect
        if isinstance(err, PagewalkError) and not isinstance(err, InternalError):
            raise
        internal = err if isinstance(err, InternalError) else InternalError.of(err)
        internal.schedule = encode_schedule([index for index, _ in sched.steps])
        raise internal from None


def _run_threads(
    runner: Runner, sched: RecordingScheduler, scenario: Scenario, trace: bool, observe: bool
) -> Execution:
    """The threads under the scheduler, then final and the checks."""
    tracer = Tracer(runner) if trace else None
    if tracer is not None:
        sched.on_step = tracer.step
        sched.on_note = tracer.note
    for thread in scenario.threads:
        tsk, body = runner.start_thread(thread)
        sched.add_task(thread.name, body, tsk)
    runner.k.sched = sched
    try:
        outcome = sched.run()
        if tracer is not None:
            tracer.finish()
    except Pruned:
        return Execution.of(sched, None, "pruned")
    finally:
        runner.k.sched = None
    if outcome != "ok":
        return _failed_execution(runner, sched, outcome, tracer)
    pins = pin_views(runner) if observe else ()  # before final drops them
    try:
        runner.run_ops(scenario.final)
        runner.k.check_invariants()
    except ModelFailure as failure:
        runner.fail(failure)
    return _finish(runner, sched, tracer, observe, pins)


def _finish(
    runner: Runner, sched: RecordingScheduler, tracer: Any, observe: bool, pins: tuple
) -> Execution:
    # Observed before the checks: no_leaks exits every process.
    observation = observe_state(runner, pins) if observe else ()
    result = runner.finish(checks=runner.result.failure is None, with_stats=False)
    bad = [c for c in result.checks if not c.ok]
    ex = Execution.of(
        sched,
        result,
        "violation" if bad else "ok",
        f"{bad[0].kind}: {bad[0].message}" if bad else "",
    )
    if tracer is not None:
        ex.trace = tracer.events
    ex.observation = observation
    return ex


def _failed_execution(
    runner: Runner, sched: RecordingScheduler, outcome: str, tracer: Any
) -> Execution:
    failure = sched.failure
    if outcome == "deadlock":
        message = sched.deadlock_message()
    elif isinstance(failure, ModelFailure):
        message = f"{outcome}: {failure}"
    else:
        message = f"{outcome}: {type(failure).__name__}: {failure}"
    runner.result.checks.append(CheckResult(outcome, False, message))
    ex = Execution.of(sched, runner.result, "violation", message)
    if tracer is not None:
        ex.trace = tracer.events
    return ex


class Tracer:
    """Records, per step, the task, its event, the kernel functions it was in,
    and the ptes at the scenario's addresses that the previous step changed."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.events: list[dict[str, Any]] = []
        self.last: dict[tuple[str, int], tuple[int | None, str]] = {}
        self.prev_task: str | None = None

    def step(self, sched: Scheduler, task: Task, event: Event) -> None:
        self._pte_changes()
        self.events.append(
            {"task": task.name, "event": event.describe(), "where": task.where, "kind": "step"}
        )
        self.prev_task = task.name

    def note(self, task: Task, text: str) -> None:
        self.events.append({"task": task.name, "kind": "note", "event": text})

    def _pte_changes(self) -> None:
        k = self.runner.k
        for proc, addr in self.runner.touched:  # no task runs while this loops
            tsk = k.tasks.get(proc)
            pte = k.pte(proc, addr) if tsk is not None and tsk.mm is not None else None
            key = (proc, addr)
            old = self.last.get(key)
            if old is not None and old[0] == pte:
                continue
            now = pte_summary(k, pte)  # summarised now: the page may be freed later
            if old is not None and self.prev_task is not None:
                self.events.append(
                    {
                        "task": self.prev_task,
                        "kind": "pte",
                        "event": f"pte {proc}@{addr:#x}: {old[1]} -> {now}",
                    }
                )
            self.last[key] = (pte, now)

    def finish(self) -> None:
        self._pte_changes()
