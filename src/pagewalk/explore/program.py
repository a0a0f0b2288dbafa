"""Model your own concurrent code on pagewalk's scheduler and explorer.

The kernel model is one user of the scheduler; this module is another: a
program of tasks, spinlocks and shared variables, explored with the same
DPOR, DFS or PCT search and reported the same way::

    from pagewalk.explore.program import World, explore_program

    def program(w: World) -> None:
        lock, count = w.lock("lock"), w.var("count", 0)

        def worker() -> None:
            with lock:
                count.write(count.read() + 1)

        w.thread("a", worker)
        w.thread("b", worker)
        w.check(lambda: count.value == 2, "lost update")

    result = explore_program(program)       # status "ok": the lock prevents it

Every ``read``/``write`` of a shared variable and every lock acquisition is a
schedule point; code between them runs atomically.  ``program`` is called
afresh for every execution, so it must build all its state inside.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import InputError, InternalError
from ..kernel.locks import spin_lock, spin_unlock, spinlock_t
from ..sched.scheduler import Chooser, R, Scheduler, W
from .api import Budget, ExploreResult, ReplayChooser, Tally, check_strategy, search
from .engine import Execution, Pruned, RecordingScheduler


class Lock:
    """A spinlock; ``with lock:`` acquires and releases it."""

    __slots__ = ("_lock",)

    def __init__(self, world: World, name: str) -> None:
        self._lock = spinlock_t(world, name)

    def acquire(self) -> None:
        spin_lock(self._lock)

    def release(self) -> None:
        spin_unlock(self._lock)

    def __enter__(self) -> Lock:
        spin_lock(self._lock)
        return self

    def __exit__(self, *exc: object) -> None:
        spin_unlock(self._lock)


class Var:
    """A shared variable: each read and write is a visible step."""

    __slots__ = ("_footprint_r", "_footprint_w", "_label_r", "_label_w", "_world", "name", "value")

    def __init__(self, world: World, name: str, value: Any) -> None:
        self._world = world
        self.name = name
        self.value = value
        self._label_r = f"read {name}"
        self._label_w = f"write {name}"
        self._footprint_r = ((name, R),)
        self._footprint_w = ((name, W),)

    def read(self) -> Any:
        sched = self._world.sched
        if sched is not None:
            sched.access(self._label_r, self._footprint_r)
        return self.value

    def write(self, value: Any) -> None:
        sched = self._world.sched
        if sched is not None:
            sched.access(self._label_w, self._footprint_w)
        self.value = value


class World:
    """The state of one execution of a user program."""

    def __init__(self) -> None:
        self.sched: Scheduler | None = None
        self.current: Any = None
        self.threads: list[tuple[str, Callable[[], None]]] = []
        self.checks: list[tuple[Callable[[], bool], str]] = []
        self.names: set[str] = set()

    def _name(self, name: str) -> str:
        if name in self.names:
            raise InputError(f"the name {name!r} is used twice in the program")
        self.names.add(name)
        return name

    def lock(self, name: str) -> Lock:
        return Lock(self, self._name(name))

    def var(self, name: str, value: Any = None) -> Var:
        return Var(self, self._name(name), value)

    def thread(self, name: str, body: Callable[[], None]) -> None:
        self.threads.append((name, body))

    def check(self, predicate: Callable[[], bool], message: str) -> None:
        """A property that must hold once every thread has finished."""
        self.checks.append((predicate, message))


def run_program(
    program: Callable[[World], None], chooser: Chooser, max_steps: int = 10_000, trace: bool = False
) -> Any:
    """One execution of ``program`` under ``chooser``.  An exception a thread
    of the program raises fails the execution as a ``panic`` (loom's word),
    with the schedule that reaches it; bad input propagates."""
    world = World()
    program(world)
    if not world.threads:
        raise InputError("the program starts no thread")
    sched = RecordingScheduler(world, chooser, max_steps=max_steps, trace=trace)
    events: list[dict[str, Any]] = []
    if trace:
        sched.on_step = lambda s, t, ev: events.append(
            {"task": t.name, "event": ev.describe(), "kind": "step", "where": ""}
        )
    for name, body in world.threads:
        sched.add_task(name, body, None)
    world.sched = sched
    panic = ""
    try:
        outcome = sched.run()
    except Pruned:
        return Execution.of(sched, None, "pruned")
    except InternalError as err:  # the user's thread raised: a failed execution
        outcome, panic = "panic", str(err)
    finally:
        world.sched = None
    if panic:
        message = f"panic: {panic}"
    elif outcome == "deadlock":
        message = sched.deadlock_message()
    elif outcome != "ok":
        message = f"{outcome}: {sched.failure}"
    else:
        failed = [msg for pred, msg in world.checks if not pred()]
        message = f"check: {failed[0]}" if failed else ""
    ex = Execution.of(sched, None, "violation" if message else "ok", message)
    ex.trace = events
    return ex


def explore_program(
    program: Callable[[World], None],
    strategy: str = "dpor",
    max_executions: int | None = None,
    timeout: float | None = None,
    preemption_bound: int | None = None,
    stop_first: bool = True,
    seed: int = 0,
    max_steps: int = 10_000,
) -> Any:
    """Explore the interleavings of a user program (see the module docstring)."""
    check_strategy(strategy)
    probe = World()
    program(probe)
    res = ExploreResult(getattr(program, "__name__", "program"), "-", strategy, "ok", 0, 0.0)
    return search(
        lambda chooser: run_program(program, chooser, max_steps),
        lambda choices: run_program(program, ReplayChooser(choices), max_steps, True),
        Tally(res, Budget(max_executions, timeout), stop_first),
        len(probe.threads),
        strategy,
        preemption_bound,
        seed,
        shorten=True,
    )


__all__ = ["Lock", "Var", "World", "explore_program", "run_program"]
