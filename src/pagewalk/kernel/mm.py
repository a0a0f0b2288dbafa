"""mm_struct and task_struct (include/linux/sched.h, kernel/fork.c; Linux 2.6.15).

``mm.mmap``/``vm_next`` is the sorted vma list and ``mm.mm_rb`` the search
structure (see ``vma.py``).  The rss counters are plain ints: the model runs
one task at a time, so the atomic counters of split-ptlock builds need no
modelling.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right, insort
from typing import TYPE_CHECKING, Any

from .constants import TASK_UNMAPPED_BASE, ULONG_MAX
from .inspect import table_walk
from .locks import rw_semaphore, spinlock_t
from .page import Page, PG_pgtable
from .pgtable import new_table
from .vma import vm_area_struct

if TYPE_CHECKING:
    from .kernel import Kernel


def _vm_end(vma: vm_area_struct) -> int:
    return vma.vm_end


class PageTablesGuard:
    """Model-only: what ``mm->page_table_lock`` protects, in the form the
    explorer compares before and after a critical section (``tobytes``, as a
    split pte lock's ``guards``): every page table of the mm -- the pgd, the
    pud and pmd pages populated under this lock in every profile, and the
    pte pages, under it too when pte locks are not split -- and the counters
    it serialises (``nr_ptes``, the rss).  A section that changes none of
    them is, to the race analysis, a read."""

    __slots__ = ("mm",)

    def __init__(self, mm: mm_struct) -> None:
        self.mm = mm

    def tobytes(self) -> bytes:
        mm = self.mm
        mem_map = mm.k.alloc.mem_map
        raws, _upper, pte_tables, _huge = table_walk(mem_map, mm)  # a huge pmd maps data
        out = [repr((mm.nr_ptes, mm._file_rss, mm._anon_rss)).encode(), *raws]
        out += [mem_map[pfn].data.tobytes() for pfn in pte_tables]
        return b"".join(out)


class mm_struct:
    __slots__ = (
        "_anon_rss",
        "_file_rss",
        "cached_hole_size",
        "dead",
        "def_flags",
        "free_area_cache",
        "hiwater_rss",
        "k",
        "locked_vm",
        "map_count",
        "mm_rb",
        "mm_users",
        "mmap",
        "mmap_base",
        "mmap_cache",
        "mmap_sem",
        "name",
        "nr_ptes",
        "page_table_lock",
        "pde_cache",
        "pgd",
        "pmd_cache",
        "total_vm",
    )

    def __init__(self, k: Kernel, name: str) -> None:
        self.k = k
        self.name = name
        self.mmap: vm_area_struct | None = None
        self.mm_rb: list[vm_area_struct] = []
        self.mmap_cache: vm_area_struct | None = None
        self.mmap_sem = rw_semaphore(k, f"{name}.mmap_sem")
        self.page_table_lock = spinlock_t(k, f"{name}.page_table_lock")
        self.page_table_lock.guards = PageTablesGuard(self)
        self.pgd: Page = _pgd_alloc(k)
        self.nr_ptes = 0
        self._file_rss = 0
        self._anon_rss = 0
        self.hiwater_rss = 0
        self.total_vm = 0
        self.locked_vm = 0
        self.map_count = 0
        self.def_flags = 0
        self.mmap_base = TASK_UNMAPPED_BASE
        self.free_area_cache = TASK_UNMAPPED_BASE
        self.cached_hole_size = ULONG_MAX
        self.mm_users = 1
        self.dead = False
        #: Model-only, the MMU's: address >> PMD_SHIFT -> the pte table the hardware
        #: walk reached there (see mmu.hw_translate); emptied whenever a pmd
        #: entry is cleared, so it never shows a stale translation.
        self.pde_cache: dict[int, array] = {}
        #: Model-only: address >> PUD_SHIFT -> the pmd table that pgd_offset and
        #: pud_offset lead to, memoised by follow_page and __handle_mm_fault
        #: (kernel/memory.py); emptied whenever a pmd or pud table is freed.
        self.pmd_cache: dict[int, array] = {}

    def __repr__(self) -> str:
        return f"<mm {self.name}>"

    # -- the rbtree stand-in ----------------------------------------------------
    def rb_find(self, addr: int) -> vm_area_struct | None:
        """The first vma with ``vm_end > addr`` (the rbtree walk of find_vma)."""
        rb = self.mm_rb
        i = bisect_right(rb, addr, key=_vm_end)
        return rb[i] if i < len(rb) else None

    def rb_insert(self, vma: vm_area_struct) -> None:
        insort(self.mm_rb, vma, key=_vm_end)

    def rb_erase(self, vma: vm_area_struct) -> None:
        self.mm_rb.remove(vma)

    def rb_resort(self) -> None:
        """After vm_end changes in place (vma_adjust), restore the order."""
        self.mm_rb.sort(key=_vm_end)

    def vmas(self) -> list[vm_area_struct]:
        out = []
        vma = self.mmap
        while vma is not None:
            out.append(vma)
            vma = vma.vm_next
        return out


def _pgd_alloc(k: Kernel) -> Page:
    """pgd_alloc(): the top-level table (kernel half not modelled)."""
    page = k.alloc.alloc_page_node(k.current_node())
    if page is None:
        raise MemoryError("no memory for a pgd")
    page.flags |= PG_pgtable
    page.data = new_table()
    k.tables_allocated += 1
    return page


def get_mm_rss(mm: mm_struct) -> int:
    return mm._file_rss + mm._anon_rss


def update_hiwater_rss(mm: mm_struct) -> None:
    rss = get_mm_rss(mm)
    if mm.hiwater_rss < rss:
        mm.hiwater_rss = rss


class task_struct:
    """A task: ``comm``, its mm, fault counters, NUMA node.

    A process is its thread-group leader; a scenario thread is a task of its
    own (``group_leader`` names the process) sharing the leader's mm, as
    clone(CLONE_VM | CLONE_THREAD) makes it.  ``group_exit`` is the leader's
    ``signal->flags & SIGNAL_GROUP_EXIT``; ``alloc_lock`` is ``task_lock()``'s
    spinlock, set by the Kernel that creates the task."""

    __slots__ = (
        "alloc_lock",
        "comm",
        "group_exit",
        "group_leader",
        "held",
        "maj_flt",
        "min_flt",
        "mm",
        "node",
        "pid",
        "signal",
    )

    def __init__(self, pid: int, comm: str, mm: mm_struct | None, node: int) -> None:
        self.pid = pid
        self.comm = comm
        self.mm = mm
        self.node = node
        self.min_flt = 0
        self.maj_flt = 0
        self.held: list[Any] = []
        self.signal: str | None = None
        self.group_leader = self
        self.group_exit = False
        self.alloc_lock: Any = None

    def __repr__(self) -> str:
        return f"{self.comm}[{self.pid}]"
