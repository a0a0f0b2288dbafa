"""The deterministic scheduler.

Every task runs in its own greenlet.  At a schedule point the task records
the event it is about to perform (kind, object, footprint) and the chooser
is asked which enabled task performs its event next -- on the task's own
stack: when it picks the same task, that task goes on without a switch;
otherwise the task switches to the scheduler's greenlet, which runs the one
picked.  Releasing a lock is not a point: only what another task could
observe *before* this task moves on needs one.

A task blocked on a held lock is not enabled; when no unfinished task is
enabled the execution is a deadlock.  What a task raises follows one rule
(``_task_failed``): a kernel ``BUG()`` (ModelFailure) ends the execution as
its outcome; anything else -- bad input, a Python exception of the model
(wrapped as InternalError), an interrupt -- propagates out of ``run``.  A task that takes more than
``max_steps`` steps did not terminate (a livelock such as an endless
fault/retry loop).  The bound is per task: ``max_steps`` to start with,
plus what each of its operations asks for as it starts (``grant``).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from greenlet import GreenletExit, greenlet

from ..errors import InternalError, ModelFailure, PagewalkError

R, W = 0, 1  # footprint access modes
#: a footprint mode for an update that commutes with itself (an atomic_inc of
#: a page's count): two INCs of one key are independent, an INC and a read or
#: a write are not
INC = 2
#: the pairs of modes of one key that conflict: all but R/R and INC/INC (the
#: one rule for sleep sets, ``dependent``, and DPOR's race analysis)
CONFLICTS = frozenset((a, b) for a in (R, W, INC) for b in (R, W, INC)) - {(R, R), (INC, INC)}


class EventKind(StrEnum):
    """What a task is parked at (a StrEnum: its value is what traces print)."""

    START = "start"  # the task has not run yet
    LOCK = "spin_lock"  # taking a spinlock: enabled while the lock is free
    DOWN_READ = "down_read"  # an rwsem for read: enabled while no writer holds it
    DOWN_WRITE = "down_write"  # an rwsem for write: enabled while nobody holds it
    YIELD = "cond_resched"  # a voluntary preemption point
    ACCESS = "access"  # a declared unlocked access to shared state


class RunOutcome(StrEnum):
    """How the concurrent part of an execution ended (``Scheduler.run``)."""

    OK = "ok"  # every task finished
    DEADLOCK = "deadlock"  # unfinished tasks, none enabled
    NONTERMINATION = "nontermination"  # a task exceeded its step bound
    BUG = "bug"  # a task hit a kernel BUG() (ModelFailure)


# the kinds under their short names: kernel-facing code and `kind is LOCK`
START, LOCK, DOWN_READ, DOWN_WRITE, YIELD, ACCESS = EventKind


class Event:
    """A visible operation a task is parked at.  ``footprint`` is a tuple of
    (key, mode) pairs, mode R, W or INC: two events conflict when they share
    a key and one of them writes it, or one reads and the other increments
    it (:func:`dependent`).  Keys are stable across re-executions (a lock's name, a
    page's frame number), so events of different runs compare and pickle."""

    __slots__ = ("footprint", "kind", "label", "obj")

    def __init__(self, kind: str, obj: Any, footprint: tuple, label: str = "") -> None:
        self.kind = kind
        self.obj = obj
        self.footprint = footprint
        self.label = label

    def __repr__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        if self.label:
            return self.label
        name = getattr(self.obj, "name", None) if self.obj is not None else None
        return f"{self.kind}({name})" if name else self.kind


START_EVENT = Event(START, None, ())


def _free(ev: Event) -> bool:
    """Can a task parked at ``ev`` take its step: the lock it waits for is free."""
    kind = ev.kind
    if kind is LOCK:
        return ev.obj.owner is None
    if kind is DOWN_READ:
        return ev.obj.writer is None
    if kind is DOWN_WRITE:
        return ev.obj.writer is None and not ev.obj.readers
    return True


_SLEEPING = (DOWN_READ, DOWN_WRITE, YIELD)


def dependent(a: Event, b: Event) -> bool:
    """Two events conflict when they share a key and do not both read it or
    both increment it (R/R and INC/INC commute, anything else does not)."""
    for obj, mode in a.footprint:
        for obj2, mode2 in b.footprint:
            if obj == obj2 and (mode, mode2) in CONFLICTS:
                return True
    return False


class Task:
    __slots__ = (
        "atomic",
        "body",
        "current",
        "done",
        "error",
        "glet",
        "index",
        "max_steps",
        "name",
        "pending",
        "sections",
        "steps",
        "where",
    )

    def __init__(
        self, index: int, name: str, body: Callable[[], None], current: Any, max_steps: int
    ) -> None:
        self.index = index
        self.max_steps = max_steps  # grows with the work the task's operations ask for
        self.name = name
        self.body = body
        self.current = current  # the kernel's `current` while this task runs
        self.pending: Event = START_EVENT
        self.done = False
        self.error: BaseException | None = None
        self.glet: greenlet | None = None
        self.steps = 0
        self.where = ""  # kernel function at the pending point (tracing only)
        self.atomic = 0  # spinlocks held: the task may not sleep
        #: the guarded lock sections it has open: lock -> (its step, bytes before)
        self.sections: dict[Any, tuple[int, bytes]] = {}

    def __repr__(self) -> str:
        return self.name


class Chooser:
    """Strategy interface: pick the task that moves at each step.

    The contract.  :meth:`Scheduler.run` calls ``choose(sched, enabled)``
    once before every step, also when a single task is enabled.  ``enabled``
    is never empty: the tasks neither done nor blocked
    (:meth:`Scheduler.is_enabled`), in task-index order (the order of
    ``add_task``), as a fresh list.  ``choose`` returns one of them; its
    ``pending`` event is the step taken (and recorded in ``sched.steps``).
    It may read ``sched`` -- ``sched.last`` (the task of the previous step),
    ``sched.steps``, each task's ``pending`` -- but changes neither the
    scheduler nor the kernel.  An exception it raises ends the run and
    propagates out of ``run`` (the explorer's choosers raise ``Pruned`` to
    abandon a redundant execution).  A chooser serves one execution, and
    given the same calls makes the same choices: that is what makes a
    schedule replayable.
    """

    #: whether the steps this chooser is given feed a race analysis: only
    #: then must a lock section be judged (a read if it changed nothing)
    judges_sections = True

    def replayed(self) -> list[Any]:
        """The first steps of the execution, when this chooser already knows
        them from an execution before (the search tree's path): a record per
        step with ``choice`` (the task), ``enabled`` (their indices) and
        ``events`` (each task's pending event) as they were there.  A
        recording scheduler takes those steps without asking again."""
        return []

    def choose(self, sched: Scheduler, enabled: list[Task]) -> Task:  # pragma: no cover
        raise NotImplementedError


class NonPreemptive(Chooser):
    """Keep running the last task while it is enabled, else the lowest index."""

    def choose(self, sched: Scheduler, enabled: list[Task]) -> Task:
        last = sched.last
        if last is not None and last in enabled:
            return last
        return enabled[0]


class Scheduler:
    """Installed as ``k.sched`` for the concurrent part of an execution."""

    #: Unlocked accesses (the MMU's pte reads) are schedule points: the
    #: explorer's race analysis needs them, virtual time does not.
    races = True

    def __init__(
        self, k: Any, chooser: Chooser | None = None, max_steps: int = 100_000, trace: bool = False
    ) -> None:
        self.k = k
        self.chooser = chooser or NonPreemptive()
        self.max_steps = max_steps
        self.tracing = trace
        self.tasks: list[Task] = []
        #: each task's pending event, by index (``task.pending``, kept as a
        #: list too so that a recorder copies it in one call)
        self.pendings: list[Event] = []
        self.running: Task | None = None
        self.last: Task | None = None
        self.main: greenlet | None = None
        self.steps: list[tuple[int, Event]] = []  # (task index, event) per step
        self.outcome = RunOutcome.OK
        self.failure: BaseException | None = None
        self.on_step: Callable[[Scheduler, Task, Event], None] | None = None
        self.on_note: Callable[[Task, str], None] | None = None
        #: the task a point chose to run next, when not the one that parked there
        self._handoff: Task | None = None
        #: what the chooser (or a step hook) raised on a task's stack, for run() to raise
        self._abort: BaseException | None = None
        #: the run is over and its suspended tasks unwind: no more steps
        self.unwinding = False

    def add_task(self, name: str, body: Callable[[], None], current: Any) -> Task:
        task = Task(len(self.tasks), name, body, current, self.max_steps)
        self.tasks.append(task)
        self.pendings.append(task.pending)
        return task

    # -- the scheduler side ----------------------------------------------------
    def run(self) -> RunOutcome:
        self.main = greenlet.getcurrent()
        k = self.k
        saved_current = k.current
        try:
            task = self._step()
            while task is not None:
                # The task runs until it finishes, or parks at a point where
                # the chooser picks another task (``_handoff``) or the run
                # ends (a step bound, or what the chooser raised).
                if task.glet is None:  # its first step: give it a carrier
                    task.glet = _carrier(self.main)
                    task.glet.switch(self, task)
                else:
                    task.glet.switch()
                if self._abort is not None:
                    raise self._abort
                if task.error is not None:
                    return self._task_failed(task.error)
                if task.done:
                    task = self._step()
                else:
                    task, self._handoff = self._handoff, None
            return self.outcome
        finally:
            try:
                self._kill_suspended()
            finally:
                self.running = None
                k.current = saved_current

    def _kill_suspended(self) -> None:
        """Never leave a task suspended: unwind it (its ``finally`` blocks
        run) and give its carrier back.  A Ctrl-C (or SIGTERM, a timeout)
        that lands while a task unwinds is caught by its body, not by the
        throw: re-raise it here, or the search would go on as if the signal
        had never come."""
        self.unwinding = True
        for task in self.tasks:
            glet, task.glet = task.glet, None
            if glet is None:
                continue
            if not task.done:
                # as it runs: the locks its finally blocks release are its own
                task.error = None
                self.running = task
                self.k.current = task.current
                glet.throw(_Unwind)
            _release(glet)
            if task.error is not None and not isinstance(task.error, Exception):
                raise task.error

    def _step(self) -> Task | None:
        """Take one step: ask the chooser which enabled task moves and make it
        the running task.  None when the run is over (every task done, a
        deadlock, a task past its step bound: ``outcome`` says which)."""
        enabled = []
        ids = []
        for t in self.tasks:
            if t.done:
                continue
            ev = t.pending
            if ev.obj is None or _free(ev):  # only a lock's event (obj set) can wait
                enabled.append(t)
                ids.append(t.index)
        if not enabled:
            if not all(t.done for t in self.tasks):
                self.outcome = RunOutcome.DEADLOCK
            return None
        return self._take(self._choose(enabled, ids))

    def _take(self, task: Task) -> Task | None:
        """Make the chosen task's pending event the next step."""
        self.steps.append((task.index, task.pending))
        if self.on_step is not None:
            self.on_step(self, task, task.pending)
        task.steps += 1
        if task.steps > task.max_steps:
            self._past_bound(task)
            return None
        self.running = self.last = task
        self.k.current = task.current
        return task

    def _past_bound(self, task: Task) -> None:
        self.outcome = RunOutcome.NONTERMINATION
        self.failure = ModelFailure(
            "scheduler: step bound",
            f"task {task.name} took more than {task.max_steps} steps, "
            f"{self.max_steps} plus what its operations asked for (a livelock?)",
        )

    def _task_failed(self, err: BaseException) -> RunOutcome:
        """The one rule for what a task raised: a kernel BUG is the execution's
        outcome (a violation); bad input, an internal error, an interrupt are
        not the kernel's and leave the scheduler as they are."""
        if isinstance(err, ModelFailure):
            self.outcome = RunOutcome.BUG
            self.failure = err
            return self.outcome
        raise err

    def _choose(self, enabled: list[Task], ids: list[int]) -> Task:
        """The chooser's pick among ``enabled`` (``ids``: their indices)."""
        return self.chooser.choose(self, enabled)

    def deadlock_message(self) -> str:
        """What a deadlocked run reports: each blocked task and where it waits."""
        blocked = ", ".join(
            f"{t.name} waits in {t.pending.describe()}" for t in self.tasks if not t.done
        )
        return f"deadlock: every task is blocked ({blocked})"

    def _body(self, task: Task) -> None:
        """Run a task to its end on its carrier, and sort what it raised."""
        try:
            task.body()
            while task.sections:  # a task that ends holding a lock: judged as it ends
                self._close_section(task, next(iter(task.sections)))
        except _Unwind:  # run() is over: the task is abandoned
            pass
        except GreenletExit:  # the carrier itself is being destroyed
            raise
        except PagewalkError as err:  # a kernel BUG or bad input: run() sorts it
            task.error = err
        except Exception as err:  # a defect of the model, never a kernel bug
            task.error = InternalError.of(err, task.name)
        except BaseException as err:  # KeyboardInterrupt: run() re-raises it
            task.error = err
        task.done = True

    def is_enabled(self, task: Task) -> bool:
        ev = task.pending
        return ev.obj is None or _free(ev)  # only a lock's event (obj set) can wait

    # -- the task side -----------------------------------------------------------
    def _close_section(self, task: Task, lock: Any) -> None:
        """A lock step whose critical section left the guarded memory as it
        was is, for the race analysis, a read: it commutes with other reads.
        Judged at the unlock, the whole section: points inside it (an
        access, another lock taken) do not end it."""
        section = task.sections.pop(lock, None)
        if section is None:  # taken to read only, or with nobody judging sections
            return
        step, before = section
        if lock.guards.tobytes() == before:
            index, ev = self.steps[step]
            self.steps[step] = (index, Event(ev.kind, ev.obj, ((lock.name, R),), ev.label))

    def point(self, event: Event) -> None:
        """Park the running task at ``event`` until the scheduler picks it.
        The next step is chosen here, on the task's own stack: when the
        chooser picks this task again (the common case) it goes on without
        a switch to the scheduler and back."""
        task = self.running
        if self.unwinding:  # a finally block of an abandoned task: it goes on unwinding
            raise _Unwind
        if task.atomic and event.kind in _SLEEPING:
            # the step check: sleeping (a semaphore, a voluntary reschedule)
            # while holding a spinlock would deadlock a real CPU
            raise ModelFailure(
                f"BUG: scheduling while atomic: {event.describe()}",
                f"task {task.name} holds {task.atomic} spinlock(s)",
            )
        task.pending = self.pendings[task.index] = event
        task.current = self.k.current
        if self.tracing:
            task.where = kernel_location()
        try:
            nxt = self._step()
        except BaseException as err:  # the chooser's (Pruned...): run() raises it
            self._abort = err
            nxt = None
        if nxt is task:
            return
        self._handoff = nxt
        self.main.switch()

    def _owner(self) -> Any:
        """Who holds a lock: the kernel task running, or the scheduler task."""
        return self.k.current or self.running

    def spin_lock(self, lock: Any, reads_only: bool = False) -> None:
        self.point((lock.events or _lock_events(lock))[reads_only])
        task = self.running
        lock.owner = self.k.current or task  # _owner()
        task.atomic += 1
        if not reads_only and lock.guards is not None and self.chooser.judges_sections:
            task.sections[lock] = (len(self.steps) - 1, lock.guards.tobytes())

    def spin_unlock(self, lock: Any) -> None:
        lock.owner = None
        task = self.running
        task.atomic -= 1
        if task.sections and not self.unwinding:  # an abandoned section stays a write
            self._close_section(task, lock)

    def down_read(self, sem: Any) -> None:
        self.point((sem.events or _sem_events(sem))[0])
        sem.readers.append(self._owner())

    def up_read(self, sem: Any) -> None:
        sem.readers.remove(self._owner())

    def down_write(self, sem: Any) -> None:
        self.point((sem.events or _sem_events(sem))[1])
        sem.writer = self._owner()

    def up_write(self, sem: Any) -> None:
        sem.writer = None

    def cond_resched(self) -> None:
        self.point(Event(YIELD, None, ()))

    def grant(self, steps: int) -> None:
        """Let the running task take ``steps`` more schedule points: an
        operation starting says how much work it asks for, so that only a
        task looping without end exceeds its bound."""
        if self.running is not None:
            self.running.max_steps += steps

    def note(self, text: str) -> None:
        """A trace annotation from kernel code (no schedule point)."""
        if self.on_note is not None and self.running is not None:
            self.on_note(self.running, text)

    def access(self, label: str, footprint: tuple) -> None:
        """A declared unlocked access to shared state (pte reads, page contents)."""
        self.point(Event(ACCESS, None, footprint, label))

    def charge(self, what: str, obj: Any = None) -> None:
        """What the fault path spends (``sched/virtual.py``); no point here."""


def _lock_events(lock: Any) -> tuple[Event, Event]:
    """A spinlock's two events, to change and to read what it guards
    (immutable: one pair serves every acquisition)."""
    lock.events = (Event(LOCK, lock, ((lock.name, W),)), Event(LOCK, lock, ((lock.name, R),)))
    return lock.events


def _sem_events(sem: Any) -> tuple[Event, Event]:
    """An rwsem's two events, down_read's and down_write's (as a spinlock's)."""
    sem.events = (
        Event(DOWN_READ, sem, ((sem.name, R),)),
        Event(DOWN_WRITE, sem, ((sem.name, W),)),
    )
    return sem.events


class _Unwind(GreenletExit):
    """Thrown into a task left suspended when its run ends: its frames
    unwind, and its carrier goes back to the pool.  A GreenletExit, so that
    code which treats a killed greenlet specially sees the same as before."""


#: idle carriers kept for the next runs, per thread (a greenlet runs only
#: on the thread that made it); more than this many are let go
_POOL_SIZE = 32
_pool = threading.local()


def _carrier(main: greenlet) -> greenlet:
    """A greenlet to run a task on, reused across runs.  Why: a new greenlet
    gets a new interpreter data stack -- an mmap and a munmap, about 10 us,
    more than a whole step costs -- so a search of short executions would
    spend a tenth of its time creating greenlets."""
    idle = _pool.__dict__.setdefault("idle", [])
    glet = idle.pop() if idle else greenlet(_carry)
    glet.parent = main
    return glet


def _release(glet: greenlet) -> None:
    idle = _pool.__dict__.setdefault("idle", [])
    if not glet.dead and len(idle) < _POOL_SIZE:
        idle.append(glet)


def _carry(sched: Scheduler, task: Task) -> None:
    """A carrier's life: run a task's body, hand control back to the run
    that started it, and wait there to be given the next task."""
    while True:
        sched._body(task)
        main = sched.main
        sched = task = None  # an idle carrier keeps no execution alive
        sched, task = main.switch()


def kernel_location() -> str:
    """The innermost kernel functions on the running task's stack, for traces:
    ``access_process_vm > get_user_pages > follow_page``."""
    frame = sys._getframe(2)
    names: list[str] = []
    while frame is not None and len(names) < 4:
        mod = frame.f_globals.get("__name__", "")
        if mod.startswith("pagewalk.kernel") and not mod.endswith((".locks", ".kernel")):
            names.append(frame.f_code.co_name)
        elif names and not mod.startswith("pagewalk.kernel"):
            break
        frame = frame.f_back
    return " > ".join(reversed(names))
