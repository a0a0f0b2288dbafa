"""Page-table allocation, locking and freeing (mm/memory.c, include/linux/mm.h,
include/asm-x86_64/pgalloc.h; Linux 2.6.15 at deceb6cd plus the split ptlock
of 4c21e2f2441d "mm: split page table lock").

Descending pgd -> pud -> pmd takes no lock: tables are only freed under
exclusive ``mmap_sem`` (or at exit).  Populating an empty upper entry follows
the allocate / lock ``page_table_lock`` / recheck / populate-or-free pattern of
``__pte_alloc`` and friends.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

from .constants import (
    ENOMEM,
    PAGE_SHIFT,
    PGDIR_SHIFT,
    PGDIR_SIZE,
    PMD_SHIFT,
    PMD_SIZE,
    PTRS_INDEX_MASK,
    PUD_SHIFT,
    PUD_SIZE,
    ULONG_MAX,
)
from .locks import NO_TASK, spin_lock, spin_unlock, spinlock_t
from .page import Page, PG_pgtable, put_page
from .pgtable import (
    _PAGE_PRESENT,
    _PAGE_TABLE,
    PTE_MASK,
    new_table,
    pgd_addr_end,
    pgd_index,
    pgd_none,
    pmd_addr_end,
    pmd_index,
    pmd_none,
    pmd_present,
    pud_addr_end,
    pud_index,
    pud_none,
)
from .tlb import mmu_gather, tlb_remove_page

if TYPE_CHECKING:
    from .mm import mm_struct
    from .vma import vm_area_struct

_PMD_MASK = ~(PMD_SIZE - 1) & ULONG_MAX
_PUD_MASK = ~(PUD_SIZE - 1) & ULONG_MAX
_PGDIR_MASK = ~(PGDIR_SIZE - 1) & ULONG_MAX


def _u(x: int) -> int:
    """C unsigned long arithmetic: ``end - 1`` with end 0 is ULONG_MAX."""
    return x & ULONG_MAX


def table_page(mm: mm_struct, entry: int) -> Page:
    """p?d_page(): the struct page of the table an upper entry points to."""
    return mm.k.alloc.mem_map[(entry & PTE_MASK) >> PAGE_SHIFT]


def next_table(mm: mm_struct, entry: int) -> array:
    """p?d_offset() minus the index: the table an upper entry points to."""
    return mm.k.alloc.mem_map[(entry & PTE_MASK) >> PAGE_SHIFT].data


def _alloc_table(mm: mm_struct) -> Page | None:
    """pte_alloc_one / pmd_alloc_one / pud_alloc_one: a zeroed page of entries."""
    k = mm.k
    page = k.alloc.alloc_page_node(k.current_node())
    if page is None:
        return None
    page.flags |= PG_pgtable
    page.data = new_table()
    k.tables_allocated += 1
    if k.sched is not None:  # virtual time: the allocation and the zeroing
        k.sched.charge("alloc_page")
        k.sched.charge("clear_page")
    return page


def _free_table(mm: mm_struct, page: Page) -> None:
    """pte_free / pmd_free / pud_free."""
    put_page(mm.k.alloc, page)


# --- pte locks ----------------------------------------------------------------
def pte_lock_init(mm: mm_struct, page: Page) -> None:
    if mm.k.split_ptlock:
        page.private = ptl = spinlock_t(mm.k, f"ptl:{page.pfn}")
        ptl.guards = page.data


def pte_lock_deinit(page: Page) -> None:
    page.private = None


def pte_lockptr(mm: mm_struct, pmd_entry: int) -> spinlock_t:
    """The lock of one pte page: its own (split) or ``mm->page_table_lock``."""
    if mm.k.split_ptlock:
        return mm.k.alloc.mem_map[(pmd_entry & PTE_MASK) >> PAGE_SHIFT].private
    return mm.page_table_lock


def pte_offset_map_lock(mm: mm_struct, pmd: array, address: int) -> tuple[array, spinlock_t]:
    """Map the pte page under ``pmd`` and take its lock: returns (ptes, ptl)."""
    k = mm.k
    page = k.alloc.mem_map[(pmd[(address >> PMD_SHIFT) & PTRS_INDEX_MASK] & PTE_MASK) >> PAGE_SHIFT]
    ptl = page.private if k.split_ptlock else mm.page_table_lock  # pte_lockptr
    # spin_lock()'s uncontended path with nothing exploring, written in place:
    # this pair runs on every fault (follow_page writes the same in place).
    if k.sched is None and ptl.owner is None:
        ptl.owner = k.current or NO_TASK
    else:
        spin_lock(ptl)
    return page.data, ptl


def pte_unmap_unlock(page_table: array, ptl: spinlock_t) -> None:
    """pte_unmap() is a no-op on x86-64; then spin_unlock()."""
    if ptl.k.sched is None and ptl.owner is not None:
        ptl.owner = None
    else:
        spin_unlock(ptl)


# --- allocating upper levels --------------------------------------------------
# ``locked``: the caller holds ``page_table_lock``, the allocators' contract
# before c74df32c724a "mm: ptd_alloc take ptlock" (v2.6.15-rc1), which only
# the old fault path (``fault_ptl_pushed_down`` off) still follows: the lock
# is dropped around the allocation, retaken for the recheck, and held on
# return, on failure too.
def _install(
    mm: mm_struct, table: array, i: int, new: Page | None, locked: bool, pte: bool = False
) -> int:
    """The shared tail of __pud_alloc/__pmd_alloc/__pte_alloc: recheck the
    entry under page_table_lock, then populate it or free ``new``."""
    if new is None:
        if locked:
            spin_lock(mm.page_table_lock)
        return -ENOMEM
    spin_lock(mm.page_table_lock)
    if table[i] & _PAGE_PRESENT:  # Another has populated it
        pte_lock_deinit(new)
        _free_table(mm, new)
    else:
        if pte:
            mm.nr_ptes += 1
            mm.k.nr_page_table_pages += 1
        table[i] = _PAGE_TABLE | (new.pfn << PAGE_SHIFT)  # p?d_populate
    if not locked:
        spin_unlock(mm.page_table_lock)
    return 0


def __pte_alloc(mm: mm_struct, pmd: array, address: int, locked: bool = False) -> int:
    """mm/memory.c __pte_alloc(): 0, or -ENOMEM.  ``locked``: the caller holds
    page_table_lock (the contract before c74df32c724a, see above)."""
    if locked:
        spin_unlock(mm.page_table_lock)
    new = _alloc_table(mm)
    if new is not None:
        pte_lock_init(mm, new)
    return _install(mm, pmd, pmd_index(address), new, locked, pte=True)


def __pmd_alloc(mm: mm_struct, pud: array, address: int, locked: bool = False) -> int:
    """mm/memory.c __pmd_alloc(), as __pte_alloc for a pmd page."""
    if locked:
        spin_unlock(mm.page_table_lock)
    return _install(mm, pud, pud_index(address), _alloc_table(mm), locked)


def __pud_alloc(mm: mm_struct, pgd: array, address: int, locked: bool = False) -> int:
    """mm/memory.c __pud_alloc(), as __pte_alloc for a pud page."""
    if locked:
        spin_unlock(mm.page_table_lock)
    return _install(mm, pgd, pgd_index(address), _alloc_table(mm), locked)


# The three inline allocators of include/linux/mm.h.  Their index and
# offset macros are written out in place: they sit on every fault's path.
def pud_alloc(mm: mm_struct, pgd: array, address: int, locked: bool = False) -> array | None:
    i = (address >> PGDIR_SHIFT) & PTRS_INDEX_MASK  # pgd_index
    if not pgd[i] and __pud_alloc(mm, pgd, address, locked):  # pgd_none
        return None
    return mm.k.alloc.mem_map[(pgd[i] & PTE_MASK) >> PAGE_SHIFT].data  # pud_offset


def pmd_alloc(mm: mm_struct, pud: array, address: int, locked: bool = False) -> array | None:
    i = (address >> PUD_SHIFT) & PTRS_INDEX_MASK  # pud_index
    if not pud[i] and __pmd_alloc(mm, pud, address, locked):  # pud_none
        return None
    return mm.k.alloc.mem_map[(pud[i] & PTE_MASK) >> PAGE_SHIFT].data  # pmd_offset


def pte_alloc_map(mm: mm_struct, pmd: array, address: int, locked: bool = False) -> array | None:
    i = (address >> PMD_SHIFT) & PTRS_INDEX_MASK  # pmd_index
    if not pmd[i] & _PAGE_PRESENT and __pte_alloc(mm, pmd, address, locked):  # !pmd_present
        return None
    return mm.k.alloc.mem_map[(pmd[i] & PTE_MASK) >> PAGE_SHIFT].data  # pte_offset_map


def pte_alloc_map_lock(
    mm: mm_struct, pmd: array, address: int
) -> tuple[array, spinlock_t] | tuple[None, None]:
    if not pmd_present(pmd[pmd_index(address)]) and __pte_alloc(mm, pmd, address):
        return None, None
    return pte_offset_map_lock(mm, pmd, address)


def get_locked_pte(mm: mm_struct, address: int) -> tuple[array, spinlock_t] | tuple[None, None]:
    """mm/fremap.c (2.6.15 open-codes it in install_page): allocate down to the pte."""
    pud = pud_alloc(mm, mm.pgd.data, address)
    if pud is None:
        return None, None
    pmd = pmd_alloc(mm, pud, address)
    if pmd is None:
        return None, None
    return pte_alloc_map_lock(mm, pmd, address)


# --- freeing ------------------------------------------------------------------
def free_pte_range(tlb: mmu_gather, pmd: array, i: int) -> None:
    mm = tlb.mm
    page = table_page(mm, pmd[i])
    if mm.k.sched is not None:
        # pmd_clear under mmap_sem alone (or none, at exit): a CPU walking the
        # tables in user mode sees the table (its key: the pte lock) before
        # and no table (the key of a missing one: page_table_lock) after.
        ptl = pte_lockptr(mm, pmd[i])
        mm.k.sched.access("pmd_clear", ((ptl.name, 1), (mm.page_table_lock.name, 1)))
    pmd[i] = 0  # pmd_clear
    mm.pde_cache.clear()  # the MMU's cached walks may lead to this table
    pte_lock_deinit(page)
    tlb.need_flush = 1
    tlb_remove_page(tlb, page)  # pte_free_tlb
    mm.k.nr_page_table_pages -= 1
    mm.nr_ptes -= 1


def free_pmd_range(
    tlb: mmu_gather, pud: array, addr: int, end: int, floor: int, ceiling: int
) -> None:
    mm = tlb.mm
    start = addr
    pmd = next_table(mm, pud[pud_index(addr)])
    while True:
        nxt = pmd_addr_end(addr, end)
        i = pmd_index(addr)
        if not pmd_none(pmd[i]):
            free_pte_range(tlb, pmd, i)
        addr = nxt
        if addr == end:
            break
    start &= _PUD_MASK
    if start < floor:
        return
    if ceiling:
        ceiling &= _PUD_MASK
        if not ceiling:
            return
    if _u(end - 1) > _u(ceiling - 1):
        return
    i = pud_index(start)
    page = table_page(mm, pud[i])
    pud[i] = 0  # pud_clear
    mm.pmd_cache.clear()  # memoised walks may lead to this table
    _free_table(mm, page)  # pmd_free_tlb: x86-64 frees at once


def free_pud_range(
    tlb: mmu_gather, pgd: array, addr: int, end: int, floor: int, ceiling: int
) -> None:
    mm = tlb.mm
    start = addr
    pud = next_table(mm, pgd[pgd_index(addr)])
    while True:
        nxt = pud_addr_end(addr, end)
        if not pud_none(pud[pud_index(addr)]):
            free_pmd_range(tlb, pud, addr, nxt, floor, ceiling)
        addr = nxt
        if addr == end:
            break
    start &= _PGDIR_MASK
    if start < floor:
        return
    if ceiling:
        ceiling &= _PGDIR_MASK
        if not ceiling:
            return
    if _u(end - 1) > _u(ceiling - 1):
        return
    i = pgd_index(start)
    page = table_page(mm, pgd[i])
    pgd[i] = 0  # pgd_clear
    mm.pmd_cache.clear()
    _free_table(mm, page)  # pud_free_tlb


def free_pgd_range(tlb: mmu_gather, addr: int, end: int, floor: int, ceiling: int) -> None:
    """mm/memory.c free_pgd_range(): free the tables covering [addr, end) that no
    vma outside [floor, ceiling) can still be using.  (The kernel's comment on
    its "- 1"s applies: 0 means the bottom for addr/floor, the top for
    end/ceiling.)"""
    addr &= _PMD_MASK
    if addr < floor:
        addr += PMD_SIZE
        if not _u(addr):
            return
    if ceiling:
        ceiling &= _PMD_MASK
        if not ceiling:
            return
    if _u(end - 1) > _u(ceiling - 1):
        end -= PMD_SIZE
    if addr > _u(end - 1):
        return
    pgd = tlb.mm.pgd.data
    while True:
        nxt = pgd_addr_end(addr, end)
        if not pgd_none(pgd[pgd_index(addr)]):
            free_pud_range(tlb, pgd, addr, nxt, floor, ceiling)
        addr = nxt
        if addr == end:
            break


def free_pgtables(tlb: mmu_gather, vma: vm_area_struct | None, floor: int, ceiling: int) -> None:
    """mm/memory.c free_pgtables(): walk a vma chain, gathering neighbours
    within PMD_SIZE into one free_pgd_range call."""
    while vma is not None:
        nxt = vma.vm_next
        addr = vma.vm_start
        while nxt is not None and nxt.vm_start <= vma.vm_end + PMD_SIZE:
            vma = nxt
            nxt = vma.vm_next
        free_pgd_range(tlb, addr, vma.vm_end, floor, nxt.vm_start if nxt else ceiling)
        vma = nxt


__all__ = ["free_pgtables", "pte_offset_map_lock"]
