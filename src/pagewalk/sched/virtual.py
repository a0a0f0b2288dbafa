"""A virtual-time scheduler: N simulated CPUs running the model's own code.

A policy beside the explorer's (``scheduler.py``): kernel code meets it
through the same hooks (``k.sched.spin_lock``, ``down_read``, ...) plus
``charge``, by which the fault path reports what it spends (see
``scale/costs.py`` for the cost table).  Every CPU is a greenlet with its own
clock, in picoseconds (ints: the same inputs give the same figures to the
last digit).

Discrete events
    Every touch of shared state (a lock word, a shared counter) is an event.
    Before one, the CPU yields to any CPU whose clock is smaller (ties: the
    lower CPU number), so events are processed in virtual-time order.  Local
    work between events only advances the CPU's own clock.

Cache lines
    Each lock word and shared counter is a :class:`Line` with an owner CPU.
    Touching a line another CPU owns costs one transfer, and transfers of one
    line are serialised (``free_at``).  A CPU owning its line pays a local
    atomic.

Spinlocks (2.6.15's test-and-set)
    A CPU finding the lock held spins: its clock runs (system time) until the
    lock is handed to it.  At a release every spinner re-reads the line: the
    first in line wins it (FIFO: the model's deterministic stand-in for the
    hardware's race) after one transfer, and each other spinner occupies the
    line for one spinner step, so the winner's own release waits behind them.
    That is why a contended global lock gets slower, not just saturated, as
    CPUs are added.

rw_semaphores
    ``down_read``/``up_read`` are atomics on the count's line; a task that
    must wait sleeps (its clock does not count as CPU time) and is woken
    FIFO, readers queueing behind a waiting writer as in lib/rwsem.c.
"""

from __future__ import annotations

import gc
import heapq
from collections import deque
from collections.abc import Callable
from typing import Any

from greenlet import GreenletExit, greenlet

from ..errors import ModelFailure

PS = 1000  # picoseconds per nanosecond


class Line:
    """One shared cache line: who owns it, when its last transfer ends."""

    __slots__ = ("free_at", "name", "owner", "touches", "transfers", "wait")

    def __init__(self, name: str) -> None:
        self.name = name
        self.owner = -1
        self.free_at = 0
        self.touches = 0
        self.transfers = 0
        self.wait = 0  # ps CPUs stalled waiting for the line to be free


class LockClass:
    """The /proc/lock_stat counters of one lock class (times in ps)."""

    __slots__ = (
        "acq_bounces",
        "acquisitions",
        "con_bounces",
        "contentions",
        "hold_max",
        "hold_min",
        "hold_total",
        "name",
        "releases",
        "wait_max",
        "wait_min",
        "wait_total",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.releases = 0
        self.con_bounces = self.contentions = 0
        self.acq_bounces = self.acquisitions = 0
        self.wait_min = self.wait_max = self.wait_total = 0
        self.hold_min = self.hold_max = self.hold_total = 0

    def waited(self, ps: int) -> None:
        if ps > 0 and (self.wait_min == 0 or ps < self.wait_min):
            self.wait_min = ps  # lock_stat: the shortest non-0 wait
        if ps > self.wait_max:
            self.wait_max = ps
        self.wait_total += ps

    def held(self, ps: int) -> None:
        # Readers release in any order, so the first release need not
        # follow the first acquisition: count the releases themselves.
        if not self.releases or ps < self.hold_min:
            self.hold_min = ps
        self.releases += 1
        if ps > self.hold_max:
            self.hold_max = ps
        self.hold_total += ps


class _LockState:
    __slots__ = ("cls", "line", "read_cls", "since", "waiters")

    def __init__(self, line: Line, cls: LockClass, read_cls: LockClass | None = None) -> None:
        self.line = line
        self.cls = cls  # the spinlock's, or the rwsem's -W class
        self.read_cls = read_cls  # the rwsem's -R class
        self.waiters: deque = deque()  # (cpu, since, is_writer)
        self.since = 0  # when the current (exclusive) holder took it


class Cpu:
    """One simulated CPU running one task."""

    __slots__ = (
        "atomic",
        "body",
        "clock",
        "current",
        "done",
        "error",
        "faults",
        "glet",
        "idle",
        "index",
        "name",
        "pagevec",
        "pcp",
        "read_since",
        "sys",
        "user",
    )

    def __init__(self, index: int, name: str, body: Callable[[], None], current: Any) -> None:
        self.index = index
        self.name = name
        self.body = body
        self.current = current
        self.clock = 0
        self.sys = 0  # ps of kernel work, spinning included
        self.user = 0
        self.idle = 0  # ps asleep on a semaphore
        self.faults = 0
        self.pcp = 0  # pages on this CPU's hot per-CPU list
        self.pagevec = 0  # pages in this CPU's LRU pagevec
        self.read_since: dict[int, int] = {}  # id(rwsem) -> when down_read got it
        self.atomic = 0
        self.done = False
        self.error: BaseException | None = None
        self.glet: greenlet | None = None

    def __repr__(self) -> str:
        return self.name


def lock_class_name(name: str) -> str:
    """The lock_stat class of a model lock, named as the 2.6.15 source names it."""
    if name.startswith("ptl:"):
        return "&page->ptl"
    for suffix, cls in (
        (".page_table_lock", "&mm->page_table_lock"),
        (".mmap_sem", "&mm->mmap_sem"),
    ):
        if name.endswith(suffix):
            return cls
    return name


class VirtualScheduler:
    """Installed as ``k.sched``: runs one task per CPU in virtual time.

    ``costs`` is a :class:`pagewalk.scale.costs.CostModel` (any object with
    the same attributes, in picoseconds, will do)."""

    races = False  # the MMU's unlocked pte reads cost nothing extra here

    def __init__(self, k: Any, costs: Any, split_counters: bool) -> None:
        self.k = k
        self.c = costs
        #: NR_CPUS >= CONFIG_SPLIT_PTLOCK_CPUS also makes the mm's rss
        #: counters atomic_long_t (include/linux/sched.h, 4c21e2f2441d).
        self.split_counters = split_counters
        self.cpus: list[Cpu] = []
        self.heap: list[tuple[int, int]] = []
        self.running: Cpu | None = None
        self.main: greenlet | None = None
        self.lines: dict[Any, Line] = {}
        self.classes: dict[str, LockClass] = {}
        self._locks: dict[int, _LockState] = {}
        self._keep: list[Any] = []  # keeps id() keys alive
        self.zone_lock = _Synthetic("&zone->lock")
        self.lru_lock = _Synthetic("&zone->lru_lock")
        self._charge: dict[str, Callable[[Cpu, Any], None]] = {
            "fault": self._fault,
            "clear_page": self._local("clear_page"),
            "copy_page": self._local("copy_page"),
            "set_pte": self._local("set_pte"),
            "alloc_page": self._alloc_page,
            "lru_cache_add": self._lru_cache_add,
            "mm_counter": self._mm_counter,
        }

    # -- setup and the main loop -------------------------------------------------
    def add_task(self, name: str, body: Callable[[], None], current: Any) -> Cpu:
        cpu = Cpu(len(self.cpus), name, body, current)
        self.cpus.append(cpu)
        return cpu

    def run(self) -> None:
        """Run every CPU to completion; a kernel BUG in any is raised here."""
        self.main = greenlet.getcurrent()
        k = self.k
        saved = k.current
        for cpu in self.cpus:
            cpu.glet = greenlet(self._wrap(cpu), parent=self.main)
            # Started here, so every CPU's stack begins at the main loop's
            # depth: a greenlet first entered from deep in another CPU's
            # fault would inherit that CPU's recursion depth.
            cpu.glet.switch()
            self.heap.append((0, cpu.index))
        heapq.heapify(self.heap)
        # The model's objects are freed by reference counting; the cycle
        # collector would walk every CPU's suspended stack, again and again.
        collecting = gc.isenabled()
        gc.disable()
        try:
            while self.heap:
                _, i = heapq.heappop(self.heap)
                self._resume(self.cpus[i])
                for cpu in self.cpus:
                    if cpu.error is not None:
                        raise cpu.error
            stuck = [c.name for c in self.cpus if not c.done]
            if stuck:
                raise ModelFailure("virtual scheduler: deadlock", f"blocked: {', '.join(stuck)}")
        finally:
            if collecting:
                gc.enable()
            self.running = None
            k.current = saved
            for cpu in self.cpus:  # as the explorer's scheduler: an interrupt
                if cpu.glet is not None and not cpu.glet.dead:  # caught while a CPU
                    cpu.error = None  # unwinds is re-raised, not lost
                    cpu.glet.throw(GreenletExit)
                    if cpu.error is not None and not isinstance(cpu.error, Exception):
                        raise cpu.error

    def _wrap(self, cpu: Cpu) -> Callable[[], None]:
        def body() -> None:
            self.main.switch()  # parked until the main loop picks this CPU
            try:
                cpu.body()
            except GreenletExit:
                raise
            except BaseException as err:  # raised by run()
                cpu.error = err
            cpu.done = True

        return body

    def _resume(self, cpu: Cpu) -> None:
        me = self.running
        if me is not None:
            me.current = self.k.current
        self.running = cpu
        self.k.current = cpu.current
        cpu.glet.switch()

    def _sync(self, cpu: Cpu) -> None:
        """An event is next: let every CPU with a smaller clock go first."""
        heap = self.heap
        if heap:
            item = (cpu.clock, cpu.index)
            if heap[0] < item:
                nxt = heapq.heapreplace(heap, item)
                self._resume(self.cpus[nxt[1]])

    def _block(self, cpu: Cpu) -> None:
        """The running CPU waits; it comes back when a waker pushes it."""
        if not self.heap:
            raise ModelFailure("virtual scheduler: deadlock", f"{cpu.name} waits and no CPU runs")
        nxt = heapq.heappop(self.heap)
        self._resume(self.cpus[nxt[1]])

    def _wake(self, cpu: Cpu, at: int) -> None:
        cpu.clock = at
        heapq.heappush(self.heap, (at, cpu.index))

    # -- cache lines ---------------------------------------------------------------
    def line(self, key: Any, name: str) -> Line:
        line = self.lines.get(key)
        if line is None:
            line = self.lines[key] = Line(name)
        return line

    def _touch(self, cpu: Cpu, line: Line, local: int) -> bool:
        """An atomic (or store) on ``line`` by ``cpu``: a transfer if another
        CPU owns it, else ``local``.  True when the line came from elsewhere."""
        line.touches += 1
        if line.owner == cpu.index:
            cpu.clock += local
            cpu.sys += local
            return False
        start = line.free_at if line.free_at > cpu.clock else cpu.clock
        end = start + self.c.transfer
        line.wait += start - cpu.clock
        line.transfers += 1
        line.free_at = end
        line.owner = cpu.index
        cpu.sys += end - cpu.clock
        cpu.clock = end
        return True

    # -- locks ---------------------------------------------------------------------
    def _state(self, lock: Any, rwsem: bool = False) -> _LockState:
        st = self._locks.get(id(lock))
        if st is None:
            name = lock_class_name(lock.name)
            line = self.line(id(lock), name)
            if rwsem:
                st = _LockState(line, self._class(name + "-W"), self._class(name + "-R"))
            else:
                st = _LockState(line, self._class(name))
            self._locks[id(lock)] = st
            self._keep.append(lock)
        return st

    def _class(self, name: str) -> LockClass:
        cls = self.classes.get(name)
        if cls is None:
            cls = self.classes[name] = LockClass(name)
        return cls

    def _owner(self) -> Any:
        return self.k.current or self.running

    def spin_lock(self, lock: Any, reads_only: bool = False) -> None:
        cpu = self.running
        self._sync(cpu)
        st = self._state(lock)
        bounce = self._touch(cpu, st.line, self.c.atomic)
        cls = st.cls
        if lock.owner is None:
            lock.owner = self._owner()
            cls.acquisitions += 1
            cls.acq_bounces += bounce
            st.since = cpu.clock
        else:
            cls.contentions += 1
            cls.con_bounces += bounce
            st.waiters.append((cpu, cpu.clock, False))
            cpu.current = self.k.current
            self._block(cpu)  # resumes holding the lock (see _handoff)
        cpu.atomic += 1

    def spin_unlock(self, lock: Any) -> None:
        cpu = self.running
        self._sync(cpu)
        st = self._state(lock)
        self._touch(cpu, st.line, self.c.atomic)
        st.cls.held(cpu.clock - st.since)
        cpu.atomic -= 1
        if st.waiters:
            self._handoff(st, lock, cpu.clock)
        else:
            lock.owner = None

    def _handoff(self, st: _LockState, lock: Any, released: int) -> None:
        """Every spinner re-reads the line: the first wins after a transfer,
        each other one occupies the line for a spinner step."""
        winner, since, _ = st.waiters.popleft()
        line = st.line
        start = line.free_at if line.free_at > released else released
        got = start + self.c.transfer
        line.transfers += 1
        line.touches += 1
        line.owner = winner.index
        line.free_at = got
        if st.waiters:
            n = len(st.waiters)
            line.free_at = got + n * self.c.spinner
            line.touches += n
            line.owner = st.waiters[-1][0].index
        winner.sys += got - winner.clock
        cls = st.cls
        cls.acquisitions += 1
        cls.acq_bounces += 1
        cls.waited(got - since)
        st.since = got
        lock.owner = winner.current
        self._wake(winner, got)

    def down_read(self, sem: Any) -> None:
        cpu = self.running
        self._sync(cpu)
        st = self._state(sem, rwsem=True)
        bounce = self._touch(cpu, st.line, self.c.atomic)
        cls = st.read_cls
        if sem.writer is None and not st.waiters:
            sem.readers.append(self._owner())
            cls.acquisitions += 1
            cls.acq_bounces += bounce
            cpu.read_since[id(sem)] = cpu.clock
        else:
            cls.contentions += 1
            cls.con_bounces += bounce
            st.waiters.append((cpu, cpu.clock, False))
            self._sleep(cpu)

    def up_read(self, sem: Any) -> None:
        cpu = self.running
        self._sync(cpu)
        st = self._state(sem, rwsem=True)
        self._touch(cpu, st.line, self.c.atomic)
        sem.readers.remove(self._owner())
        st.read_cls.held(cpu.clock - cpu.read_since.pop(id(sem)))
        if not sem.readers and st.waiters:
            self._wake_waiters(st, sem, cpu.clock)

    def down_write(self, sem: Any) -> None:
        cpu = self.running
        self._sync(cpu)
        st = self._state(sem, rwsem=True)
        bounce = self._touch(cpu, st.line, self.c.atomic)
        cls = st.cls
        if sem.writer is None and not sem.readers and not st.waiters:
            sem.writer = self._owner()
            cls.acquisitions += 1
            cls.acq_bounces += bounce
            st.since = cpu.clock
        else:
            cls.contentions += 1
            cls.con_bounces += bounce
            st.waiters.append((cpu, cpu.clock, True))
            self._sleep(cpu)

    def up_write(self, sem: Any) -> None:
        cpu = self.running
        self._sync(cpu)
        st = self._state(sem, rwsem=True)
        self._touch(cpu, st.line, self.c.atomic)
        st.cls.held(cpu.clock - st.since)
        sem.writer = None
        if st.waiters:
            self._wake_waiters(st, sem, cpu.clock)

    def _sleep(self, cpu: Cpu) -> None:
        cpu.current = self.k.current
        asleep = cpu.clock
        self._block(cpu)
        cpu.idle += cpu.clock - asleep

    def _wake_waiters(self, st: _LockState, sem: Any, now: int) -> None:
        """lib/rwsem.c __rwsem_do_wake: a writer alone, or every reader up to
        the next writer; each runs again after a wakeup."""
        at = now + self.c.wakeup
        first = st.waiters[0]
        if first[2]:
            cpu, since, _ = st.waiters.popleft()
            sem.writer = cpu.current
            self._granted(st.cls, cpu, since, at)
            st.since = at
            return
        while st.waiters and not st.waiters[0][2]:
            cpu, since, _ = st.waiters.popleft()
            sem.readers.append(cpu.current)
            cpu.read_since[id(sem)] = at
            self._granted(st.read_cls, cpu, since, at)

    def _granted(self, cls: LockClass, cpu: Cpu, since: int, at: int) -> None:
        cls.acquisitions += 1
        cls.acq_bounces += 1
        cls.waited(at - since)
        self._wake(cpu, at)

    # -- hooks without cost in virtual time --------------------------------------
    def cond_resched(self) -> None:
        """One task per CPU: nothing else wants the CPU."""

    def note(self, text: str) -> None:
        """Trace annotations are the explorer's."""

    def access(self, label: str, footprint: tuple) -> None:
        """Unlocked reads of ptes and page contents: race-analysis points for
        the explorer; their cost is in the fault's local cost."""

    # -- charges: what the fault path spends ---------------------------------------
    def charge(self, what: str, obj: Any = None) -> None:
        self._charge[what](self.running, obj)

    def user(self, ps: int) -> None:
        """Time in user mode (the workload's own loop)."""
        cpu = self.running
        cpu.clock += ps
        cpu.user += ps

    def _local(self, field: str) -> Callable[[Cpu, Any], None]:
        cost = getattr(self.c, field)

        def charge(cpu: Cpu, obj: Any) -> None:
            cpu.clock += cost
            cpu.sys += cost

        return charge

    def _fault(self, cpu: Cpu, obj: Any) -> None:
        cpu.faults += 1
        cpu.clock += self.c.fault
        cpu.sys += self.c.fault

    def _mm_counter(self, cpu: Cpu, mm: Any) -> None:
        """inc_mm_counter: atomic_long_inc with split ptlock, else a plain
        increment under page_table_lock -- a shared line either way."""
        self._sync(cpu)
        line = self.line((id(mm), "rss"), "mm->_anon_rss/_file_rss")
        self._touch(cpu, line, self.c.atomic if self.split_counters else self.c.store)

    def _alloc_page(self, cpu: Cpu, obj: Any) -> None:
        """buffered_rmqueue: from this CPU's hot list; an empty list is
        refilled with pcp->batch pages under zone->lock (rmqueue_bulk)."""
        c = self.c
        if cpu.pcp == 0:
            self._locked(cpu, self.zone_lock, c.pcp_batch * c.buddy_page)
            cpu.pcp = c.pcp_batch
        cpu.pcp -= 1
        cpu.clock += c.pcp_page
        cpu.sys += c.pcp_page

    def _lru_cache_add(self, cpu: Cpu, obj: Any) -> None:
        """lru_cache_add_active: into this CPU's pagevec; a full one goes to
        the active list under zone->lru_lock (__pagevec_lru_add_active)."""
        c = self.c
        cpu.pagevec += 1
        cpu.clock += c.pagevec_page
        cpu.sys += c.pagevec_page
        if cpu.pagevec == c.pagevec_size:
            self._locked(cpu, self.lru_lock, c.pagevec_size * c.lru_page)
            cpu.pagevec = 0

    def _locked(self, cpu: Cpu, lock: _Synthetic, work: int) -> None:
        self.spin_lock(lock)
        cpu.clock += work
        cpu.sys += work
        self.spin_unlock(lock)

    # -- results --------------------------------------------------------------------
    def lock_classes(self) -> list[LockClass]:
        return sorted(self.classes.values(), key=lambda c: c.name)

    def shared_lines(self) -> list[Line]:
        """The lines with transfers, merged by name (every ptlock is one row)."""
        merged: dict[str, Line] = {}
        for line in self.lines.values():
            row = merged.get(line.name)
            if row is None:
                row = merged[line.name] = Line(line.name)
            row.touches += line.touches
            row.transfers += line.transfers
            row.wait += line.wait
        return sorted(merged.values(), key=lambda r: r.name)


class _Synthetic:
    """A spinlock of the kernel's that the model's code does not take (the
    zone's locks behind the per-CPU lists): only the scheduler takes it."""

    __slots__ = ("name", "owner")

    def __init__(self, name: str) -> None:
        self.name = name
        self.owner: Any = None


__all__ = ["PS", "Cpu", "Line", "LockClass", "VirtualScheduler", "lock_class_name"]
