"""A scheduler hook that runs every lock operation as a plain run would and
records it, so tests can see which locks a kernel path takes."""

from __future__ import annotations

from pagewalk.kernel.locks import NO_TASK, rw_semaphore, spinlock_t


class LockRecorder:
    #: the MMU's unlocked pte reads are not recorded (the explorer's do)
    races = False

    def __init__(self, k) -> None:
        self.k = k
        self.events: list[tuple[str, str]] = []

    def spin_lock(self, lock: spinlock_t, reads_only: bool = False) -> None:
        assert lock.owner is None, f"deadlock on {lock.name}"
        lock.owner = self.k.current or NO_TASK
        self.events.append(("lock", lock.name))

    def spin_unlock(self, lock: spinlock_t) -> None:
        lock.owner = None
        self.events.append(("unlock", lock.name))

    def down_read(self, sem: rw_semaphore) -> None:
        sem.readers.append(self.k.current)
        self.events.append(("down_read", sem.name))

    def up_read(self, sem: rw_semaphore) -> None:
        sem.readers.remove(self.k.current)
        self.events.append(("up_read", sem.name))

    def down_write(self, sem: rw_semaphore) -> None:
        sem.writer = self.k.current
        self.events.append(("down_write", sem.name))

    def up_write(self, sem: rw_semaphore) -> None:
        sem.writer = None
        self.events.append(("up_write", sem.name))

    def cond_resched(self) -> None:
        self.events.append(("cond_resched", ""))

    def access(self, label: str, footprint: tuple) -> None:
        self.events.append(("access", label))

    def charge(self, what: str, mm: object = None) -> None:
        """Virtual time (``pagewalk scale``) is not recorded."""

    def note(self, text: str) -> None:
        self.events.append(("note", text))

    def locks_taken(self) -> set[str]:
        return {name for kind, name in self.events if kind == "lock"}
