"""spinlock_t, rw_semaphore and cond_resched (include/linux/spinlock.h,
include/linux/rwsem.h, kernel/sched.c) -- the points where another CPU may act.

Every lock knows its kernel so that it can find the running task
(``k.current``) and the scheduler hook (``k.sched``).  In a plain ``run`` the
hook is ``None`` and a lock is a field assignment; a lock found held there is
a deadlock of the sequential execution and is reported as a model failure.
When an explorer installs a scheduler, acquisition goes through it so that a
task blocked on a held lock stops being runnable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ModelFailure

if TYPE_CHECKING:
    from .kernel import Kernel


class spinlock_t:
    """``guards``, when set, is the memory the lock protects (a pte page's
    entries for a split pte lock): the explorer compares it before and after
    a critical section to learn whether the section changed anything.
    ``events``: the scheduler's two events for taking this lock (to change,
    to read what it guards), made at the first acquisition under it."""

    __slots__ = ("events", "guards", "k", "name", "owner")

    def __init__(self, k: Kernel, name: str) -> None:
        self.k = k
        self.name = name
        self.owner: Any = None
        self.guards: Any = None
        self.events: Any = None

    def __repr__(self) -> str:
        return f"<spinlock {self.name}>"


class rw_semaphore:
    """``events``: the scheduler's events for taking it for read and for
    write, made at the first acquisition under one (as a spinlock's)."""

    __slots__ = ("events", "k", "name", "readers", "writer")

    def __init__(self, k: Kernel, name: str) -> None:
        self.k = k
        self.name = name
        self.readers: list[Any] = []
        self.writer: Any = None
        self.events: Any = None

    def __repr__(self) -> str:
        return f"<rwsem {self.name}>"


class _NoTask:
    """The owner recorded when kernel code runs outside any task (boot, tests)."""

    def __repr__(self) -> str:
        return "<no task>"


NO_TASK = _NoTask()


def _deadlock(what: str, lock: Any, holder: Any) -> ModelFailure:
    return ModelFailure(f"{what}({lock.name})", f"already held by {holder} in a sequential run")


def spin_lock(lock: spinlock_t, reads_only: bool = False) -> None:
    """Take a spinlock.  ``reads_only`` is a model annotation for the explorer:
    the critical section only reads what the lock protects (and changes only
    commuting things such as reference counts), so two such sections need not
    be explored in both orders."""
    k = lock.k
    if k.sched is not None:
        k.sched.spin_lock(lock, reads_only)
        return
    if lock.owner is not None:
        raise _deadlock("spin_lock", lock, lock.owner)
    lock.owner = k.current or NO_TASK


def spin_unlock(lock: spinlock_t) -> None:
    k = lock.k
    if lock.owner is None:
        raise ModelFailure(f"spin_unlock({lock.name})", "lock not held")
    if k.sched is not None:
        k.sched.spin_unlock(lock)
        return
    lock.owner = None


def down_read(sem: rw_semaphore) -> None:
    k = sem.k
    if k.sched is not None:
        k.sched.down_read(sem)
        return
    if sem.writer is not None:
        raise _deadlock("down_read", sem, sem.writer)
    sem.readers.append(k.current or NO_TASK)


def up_read(sem: rw_semaphore) -> None:
    k = sem.k
    if k.sched is not None:
        k.sched.up_read(sem)
        return
    try:
        sem.readers.remove(k.current or NO_TASK)
    except ValueError:
        raise ModelFailure(f"up_read({sem.name})", "not held for read") from None


def down_write(sem: rw_semaphore) -> None:
    k = sem.k
    if k.sched is not None:
        k.sched.down_write(sem)
        return
    if sem.writer is not None or sem.readers:
        raise _deadlock("down_write", sem, sem.writer or sem.readers[0])
    sem.writer = k.current or NO_TASK


def up_write(sem: rw_semaphore) -> None:
    k = sem.k
    if k.sched is not None:
        k.sched.up_write(sem)
        return
    if sem.writer is None:
        raise ModelFailure(f"up_write({sem.name})", "not held for write")
    sem.writer = None


def cond_resched(k: Kernel) -> None:
    """kernel/sched.c cond_resched(): a voluntary preemption point."""
    if k.sched is not None:
        k.sched.cond_resched()


def cond_resched_lock(lock: spinlock_t) -> None:
    """kernel/sched.c cond_resched_lock(): drop and retake a spinlock if
    another CPU wants it or a reschedule is due.  In a plain run nobody
    waits; under an explorer this is where other tasks may run."""
    k = lock.k
    if k.sched is not None:
        spin_unlock(lock)
        k.sched.cond_resched()
        spin_lock(lock)


def is_locked(lock: spinlock_t | rw_semaphore) -> bool:
    if isinstance(lock, spinlock_t):
        return lock.owner is not None
    return lock.writer is not None or bool(lock.readers)
