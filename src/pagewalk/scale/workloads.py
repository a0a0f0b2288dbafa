"""The workloads of ``pagewalk scale``: pft and will-it-scale's page_fault1..3,
built on the model and run on N CPUs in virtual time.

Every CPU runs one thread of one process (one mm, as pft's threads share
theirs).  The regions are mapped before the CPUs start (pft's threads are
released together by its ``go`` flag; will-it-scale's mmap/munmap around
each pass are left out), so what is timed is the faults and the user stores
that take them.

``private``: each thread its own region (pft's per-thread malloc; one file
per thread for page_fault2/3, as will-it-scale's ``mkstemp``), starting on a
pte-page boundary, so threads share no pte page -- as nearly none of the pte
pages of pft's multi-GiB regions are shared.  ``shared``: one region whose
pages are dealt round-robin (CPU c takes pages c, c+N, c+2N, ...), so every
pte page, and its lock, is shared by all CPUs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import InputError
from ..kernel.constants import PAGE_SIZE, PMD_SIZE
from ..kernel.filemap import File, page_cache_read
from ..kernel.kernel import Kernel
from ..kernel.mm import task_struct
from ..kernel.semantics import get_semantics
from ..sched.virtual import Line, LockClass, VirtualScheduler
from .costs import CostModel

WORKLOADS = {
    "pft": "each thread faults its own anonymous region, one store per page (Lameter's pft)",
    "page_fault1": "anonymous private memory, a write per page (will-it-scale)",
    "page_fault2": "a private file mapping, a write per page: COW from the page cache",
    "page_fault3": "a shared file mapping, a write per page",
}
LAYOUTS = ("private", "shared")
MAX_CPUS = 512
#: CONFIG_SPLIT_PTLOCK_CPUS's default in 4c21e2f2441d.
SPLIT_PTLOCK_CPUS = 4
#: Where the regions start (any pte-page-aligned user address will do).
BASE = 1 << 40


@dataclass
class Point:
    """One run: ``cpus`` CPUs under one profile and lock mode."""

    cpus: int
    semantics: str
    split_ptlock: bool
    pages_per_cpu: int
    faults: int
    wall_ps: int
    user_ps: int
    sys_ps: int
    idle_ps: int
    locks: list[LockClass] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    elapsed_s: float = 0.0  # the simulation's own wall-clock time (not a model figure)

    @property
    def faults_per_wall_s(self) -> float:
        return self.faults * 1e12 / self.wall_ps if self.wall_ps else 0.0

    @property
    def faults_per_cpu_s(self) -> float:
        cpu = self.user_ps + self.sys_ps
        return self.faults * 1e12 / cpu if cpu else 0.0


def split_default(semantics: str, cpus: int) -> bool:
    """What the kernel config gives: split from CONFIG_SPLIT_PTLOCK_CPUS CPUs
    on (taking the CPU count as NR_CPUS); never before 4c21e2f2441d."""
    return get_semantics(semantics).split_ptlock_available and cpus >= SPLIT_PTLOCK_CPUS


def _anon(k: Kernel, p: task_struct, addr: int, length: int) -> None:
    if k.mmap(p, length, "rw", ("private", "fixed"), addr=addr) != addr:
        raise InputError(f"could not map {length} bytes at {addr:#x}")


def _file(k: Kernel, p: task_struct, addr: int, length: int, name: str, shared: bool) -> None:
    """A sparse file (will-it-scale's ftruncate), its pages already in the
    page cache, mapped at ``addr``."""
    f = File(k, f"/tmp/{name}", b"")
    f.i_size = length  # ftruncate: no backing bytes, every page reads as zeroes
    k.files[f.path] = f
    for index in range(length // PAGE_SIZE):
        page_cache_read(f, index, 0)
    flags = ("shared" if shared else "private", "fixed")
    if k.mmap(p, length, "rw", flags, file=f, addr=addr) != addr:
        raise InputError(f"could not map {f.path} at {addr:#x}")


def _map(k: Kernel, p: task_struct, workload: str, addr: int, length: int, name: str) -> None:
    if workload in ("pft", "page_fault1"):
        _anon(k, p, addr, length)
    else:
        _file(k, p, addr, length, name, workload == "page_fault3")


def _round_pmd(n: int) -> int:
    return (n + PMD_SIZE - 1) & ~(PMD_SIZE - 1)


def page_lists(layout: str, cpus: int, pages: int) -> list[list[int]]:
    """The addresses each CPU stores to, in order."""
    if layout == "private":
        stride = _round_pmd(pages * PAGE_SIZE)
        return [[BASE + c * stride + j * PAGE_SIZE for j in range(pages)] for c in range(cpus)]
    return [[BASE + (c + j * cpus) * PAGE_SIZE for j in range(pages)] for c in range(cpus)]


def simulate(
    workload: str,
    layout: str,
    cpus: int,
    semantics: str,
    split_ptlock: bool,
    pages: int,
    costs: CostModel,
) -> Point:
    """Build the process, map the regions, run every CPU's faults in virtual time."""
    k = Kernel(semantics, split_ptlock=split_ptlock)
    if split_ptlock and not k.split_ptlock:
        raise InputError(
            f"--split-ptlock on: profile {semantics} predates the split page-table lock "
            "(4c21e2f2441d)"
        )
    p = k.spawn("pft")
    if layout == "private":
        stride = _round_pmd(pages * PAGE_SIZE)
        for c in range(cpus):
            _map(k, p, workload, BASE + c * stride, pages * PAGE_SIZE, f"pf.{c}")
    else:
        _map(k, p, workload, BASE, cpus * pages * PAGE_SIZE, "pf")
    sched = VirtualScheduler(k, costs, split_counters=k.split_ptlock)
    for c, addrs in enumerate(page_lists(layout, cpus, pages)):
        tsk = k.clone_thread(p)  # pft's pthreads: one mm, a task each
        sched.add_task(f"pft/{c}", _thread(k, sched, tsk, addrs, costs.user_store), tsk)
    started = time.perf_counter()
    k.sched = sched
    try:
        sched.run()
    finally:
        k.sched = None
    elapsed = time.perf_counter() - started
    return Point(
        cpus=cpus,
        semantics=semantics,  # as given: an old name stays the name shown
        split_ptlock=k.split_ptlock,
        pages_per_cpu=pages,
        faults=sum(c.faults for c in sched.cpus),
        wall_ps=max(c.clock for c in sched.cpus),
        user_ps=sum(c.user for c in sched.cpus),
        sys_ps=sum(c.sys for c in sched.cpus),
        idle_ps=sum(c.idle for c in sched.cpus),
        locks=sched.lock_classes(),
        lines=sched.shared_lines(),
        elapsed_s=elapsed,
    )


def _thread(
    k: Kernel, sched: VirtualScheduler, tsk: task_struct, addrs: list[int], user_store: int
) -> Callable[[], None]:
    """pft's inner loop: ``p[0] = 'r'`` on every page of the thread's share."""

    def body() -> None:
        data = b"r"
        for addr in addrs:
            sched.user(user_store)
            acc = k.write(tsk, addr, data)
            if acc.signal is not None:
                raise InputError(f"{tsk.comm}: store at {addr:#x} got {acc.signal}")

    return body
