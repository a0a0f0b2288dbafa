"""mm/memory.c at commit deceb6cd17e6 ("[PATCH] mm: follow_page with inner
ptlock", Linux 2.6.15-rc1), with the split pte lock of 4c21e2f2441d.

Each function keeps the kernel's name, argument order and control flow; gotos
become early returns or small helpers.  A ``pte_t *`` is the pte table plus
``pte_index(address)`` (see ``pgtable.py``).  Functions return what the C
returns: VM_FAULT_* codes, page objects or None, negative errno values.
"""

from __future__ import annotations

from array import array
from itertools import compress
from typing import TYPE_CHECKING

from ..errors import ModelFailure
from ..sched.scheduler import INC
from .constants import (
    EFAULT,
    ENOMEM,
    FAULT_FLAG_UNSHARE,
    FOLL_ANON,
    FOLL_COW,
    FOLL_DUMP,
    FOLL_FORCE,
    FOLL_GET,
    FOLL_LONGTERM,
    FOLL_PIN,
    FOLL_TOUCH,
    FOLL_WRITE,
    GUP_PIN_COUNTING_BIAS,
    PAGE_MASK,
    PAGE_MASK_LOW,
    PAGE_SHIFT,
    PAGE_SIZE,
    PGDIR_SHIFT,
    PMD_SHIFT,
    PTRS_INDEX_MASK,
    PUD_SHIFT,
    ULONG_MAX,
    VM_EXEC,
    VM_FAULT_MAJOR,
    VM_FAULT_MINOR,
    VM_FAULT_OOM,
    VM_FAULT_SIGBUS,
    VM_FAULT_WRITE,
    VM_HUGETLB,
    VM_IO,
    VM_LOCKED,
    VM_MAYREAD,
    VM_MAYSHARE,
    VM_MAYWRITE,
    VM_NONLINEAR,
    VM_READ,
    VM_RESERVED,
    VM_SHARED,
    VM_WRITE,
)
from .filemap import NOPAGE_OOM
from .locks import NO_TASK, cond_resched, spin_lock, spin_unlock
from .mm import update_hiwater_rss
from .page import (
    Page,
    PG_anon,
    PG_anon_exclusive,
    PG_dirty,
    PG_referenced,
    TestSetPageLocked,
    clear_user_highpage,
    copy_user_highpage,
    count_access,
    get_page,
    lru_cache_add_active,
    mark_page_accessed,
    put_page,
    set_page_dirty,
    unlock_page,
)
from .pgalloc import (
    next_table,
    pmd_alloc,
    pte_alloc_map,
    pte_alloc_map_lock,
    pte_lockptr,
    pte_offset_map_lock,
    pte_unmap_unlock,
    pud_alloc,
)
from .pgtable import (
    _KERNPG_TABLE,
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_PSE,
    _PAGE_RW,
    _PAGE_USER,
    _UPPER_BAD_FLAGS,
    PTE_MASK,
    PTE_PRESENT_MASK,
    pgd_addr_end,
    pgd_bad,
    pgd_index,
    pgd_none,
    pmd_addr_end,
    pmd_bad,
    pmd_index,
    pmd_none,
    pte_index,
    pud_addr_end,
    pud_bad,
    pud_index,
    pud_none,
)
from .rmap import (
    anon_vma_prepare,
    mapcount_access,
    page_add_anon_rmap,
    page_add_file_rmap,
    page_remove_rmap,
)
from .tlb import mmu_gather, tlb_finish_mmu, tlb_gather_mmu, tlb_remove_page
from .vma import is_vm_hugetlb_page, linear_page_index, vm_area_struct

if TYPE_CHECKING:
    from .mm import mm_struct, task_struct


def BUG_ON(cond: object, where: str) -> None:
    if cond:
        raise ModelFailure(where)


def print_bad_pte(vma: vm_area_struct, pte: int, vaddr: int) -> None:
    vma.vm_mm.k.log(f"Bad pte = {pte:016x}, vm_flags = {vma.vm_flags:x}, vaddr = {vaddr:x}")


def maybe_mkwrite(pte: int, vma: vm_area_struct) -> int:
    """Writable only if the vma says VM_WRITE: forced (ptrace) write faults
    into read-only vmas leave the pte read-only."""
    if vma.vm_flags & VM_WRITE:
        pte |= _PAGE_RW
    return pte


def _mk_pte(page: Page, prot: int) -> int:
    return (page.pfn << PAGE_SHIFT) | prot


# =============================================================================
# fork: copy_page_range
# =============================================================================
# ~_PAGE_RW and friends as unsigned masks, computed once: with a negative
# operand Python's & is slower, and this runs once per pte a fork copies.
_CLEAR_RW = ~_PAGE_RW & ULONG_MAX
_CLEAR_DIRTY = ~_PAGE_DIRTY & ULONG_MAX
_CLEAR_ACCESSED = ~_PAGE_ACCESSED & ULONG_MAX


def copy_one_pte(
    dst_mm: mm_struct,
    src_mm: mm_struct,
    dst_pte: array,
    src_pte: array,
    vma: vm_area_struct,
    addr: int,
    rss: list[int],
) -> int:
    i = (addr >> PAGE_SHIFT) & PTRS_INDEX_MASK  # pte_index
    pte = src_pte[i]
    k = src_mm.k
    if not pte & PTE_PRESENT_MASK:  # !pte_present: swap/file entries are copied as they are
        dst_pte[i] = pte
        return 0
    vm_flags = vma.vm_flags
    if vm_flags & VM_RESERVED:
        dst_pte[i] = pte
        return 0
    pfn = (pte & PTE_MASK) >> PAGE_SHIFT
    mem_map = k.alloc.mem_map
    if pfn >= len(mem_map):  # !pfn_valid
        print_bad_pte(vma, pte, addr)
        dst_pte[i] = pte
        return 0
    page = mem_map[pfn]
    # Later kernels' vm_normal_page() is NULL for the zero page: never copied.
    sem = k.semantics
    if (sem.fork_copy_pinned or sem.page_anon_exclusive) and page is not k.zero_page:
        if (vm_flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE and _fork_must_copy(k, page):
            return copy_present_page(dst_mm, dst_pte, vma, addr, page, rss)
    # If it's a COW mapping, write protect it both in the parent and the child.
    if (vm_flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE:
        src_pte[i] = pte = pte & _CLEAR_RW  # ptep_set_wrprotect
    if vm_flags & VM_SHARED:
        pte &= _CLEAR_DIRTY  # pte_mkclean
    pte &= _CLEAR_ACCESSED  # pte_mkold
    if page is k.zero_page and sem.zero_page_special:  # vm_normal_page() NULL: a13ea5b75964
        dst_pte[i] = pte
        return 0
    # get_page() and page_dup_rmap(), written in place (once per pte a fork
    # copies); never a compound page here: hugetlb vmas take
    # copy_hugetlb_page_range.
    page._count += 1
    if page._mapcount >= 0:
        mapcount_access(page, 1)
    page._mapcount += 1
    rss[1 if page.flags & PG_anon else 0] += 1
    dst_pte[i] = pte
    return 0


def _fork_must_copy(k: object, page: Page) -> bool:
    """Whether fork may not share this page of a COW mapping.  70e806e4e645
    (v5.9): copy when page_maybe_dma_pinned() -- any page, anonymous or not
    (the PageAnon test came later, in 5.10.y stable, after
    page_add_new_anon_rmap hit BUG_ON(!anon_vma) for a pinned page-cache
    page; mm->has_pinned, a shortcut for "no pin was ever taken", is not
    modelled).  Since 6c287605fd56 (v5.18) page_try_dup_anon_rmap decides
    for anonymous pages only: it fails, so fork copies, for a pinned
    exclusive page, and clears PageAnonExclusive when it shares one."""
    if not k.semantics.page_anon_exclusive:
        return page_maybe_dma_pinned(page)
    if not page.flags & PG_anon:
        return False
    if page.flags & PG_anon_exclusive and page_maybe_dma_pinned(page):
        return True
    page.flags &= ~PG_anon_exclusive
    return False


def page_maybe_dma_pinned(page: Page) -> bool:
    """include/linux/mm.h (fc1d8e7cca2d, v5.7): a count of at least
    GUP_PIN_COUNTING_BIAS may be a FOLL_PIN (or just many references)."""
    count_access(page, 0)
    return page._count + 1 >= GUP_PIN_COUNTING_BIAS


def copy_present_page(
    dst_mm: mm_struct, dst_pte: array, vma: vm_area_struct, addr: int, page: Page, rss: list[int]
) -> int:
    """70e806e4e645's copy_present_page() (v5.9): the child gets a copy of a
    maybe-pinned page, writable and dirty; the parent keeps the page and its
    pte (still writable), so the pin stays coherent with the parent's
    mapping.  (The C preallocates the page and retries the table with it on
    -EAGAIN; here the allocation is in place.)  0, or -ENOMEM."""
    k = dst_mm.k
    new_page = k.alloc.alloc_page_node(k.current_node())
    if new_page is None:
        return -ENOMEM
    if k.sched is not None:  # the copy reads the pinned page
        k.sched.access("fork copy page", ((page.pfn, 0),))
    copy_user_highpage(new_page, page)
    page_add_anon_rmap(new_page, vma, addr)  # page_add_new_anon_rmap(new_page, dst_vma)
    lru_cache_add_active(new_page)
    rss[1] += 1
    entry = maybe_mkwrite((new_page.pfn << PAGE_SHIFT) | vma.vm_page_prot | _PAGE_DIRTY, vma)
    dst_pte[(addr >> PAGE_SHIFT) & PTRS_INDEX_MASK] = entry
    return 0


def copy_pte_range(
    dst_mm: mm_struct,
    src_mm: mm_struct,
    dst_pmd: array,
    src_pmd: array,
    vma: vm_area_struct,
    addr: int,
    end: int,
) -> int:
    """One pte page under both pte locks.  The kernel breaks the locks every 32
    units of progress only when need_resched(); a model CPU never needs to,
    so the whole page is copied under the locks."""
    rss = [0, 0]
    dst_pte, dst_ptl = pte_alloc_map_lock(dst_mm, dst_pmd, addr)
    if dst_pte is None:
        return -ENOMEM
    src_ptl = pte_lockptr(src_mm, src_pmd[pmd_index(addr)])
    src_pte = next_table(src_mm, src_pmd[pmd_index(addr)])
    spin_lock(src_ptl)
    first = (addr >> PAGE_SHIFT) & PTRS_INDEX_MASK  # pte_index
    last = first + ((end - addr) >> PAGE_SHIFT)
    # The C loop's "if (pte_none(*src_pte)) continue;": compress() makes
    # the skipping of empty ptes run in C.
    table_base = addr - (first << PAGE_SHIFT)  # the address of the table's entry 0
    err = 0
    for i in compress(range(first, last), src_pte[first:last]):
        addr = table_base + (i << PAGE_SHIFT)
        err = copy_one_pte(dst_mm, src_mm, dst_pte, src_pte, vma, addr, rss)
        if err:  # only copy_present_page fails: no page for a pinned page's copy
            break
    spin_unlock(src_ptl)
    dst_mm._file_rss += rss[0]  # add_mm_rss
    dst_mm._anon_rss += rss[1]
    pte_unmap_unlock(dst_pte, dst_ptl)
    cond_resched(src_mm.k)
    return err


def copy_pmd_range(
    dst_mm: mm_struct,
    src_mm: mm_struct,
    dst_pud: array,
    src_pud: array,
    vma: vm_area_struct,
    addr: int,
    end: int,
) -> int:
    dst_pmd = pmd_alloc(dst_mm, dst_pud, addr)
    if dst_pmd is None:
        return -ENOMEM
    src_pmd = next_table(src_mm, src_pud[pud_index(addr)])
    while True:
        nxt = pmd_addr_end(addr, end)
        e = src_pmd[pmd_index(addr)]
        if (
            not pmd_none(e)
            and not pmd_bad(e)
            and copy_pte_range(dst_mm, src_mm, dst_pmd, src_pmd, vma, addr, nxt)
        ):
            return -ENOMEM
        addr = nxt
        if addr == end:
            return 0


def copy_pud_range(
    dst_mm: mm_struct,
    src_mm: mm_struct,
    dst_pgd: array,
    src_pgd: array,
    vma: vm_area_struct,
    addr: int,
    end: int,
) -> int:
    dst_pud = pud_alloc(dst_mm, dst_pgd, addr)
    if dst_pud is None:
        return -ENOMEM
    src_pud = next_table(src_mm, src_pgd[pgd_index(addr)])
    while True:
        nxt = pud_addr_end(addr, end)
        e = src_pud[pud_index(addr)]
        if (
            not pud_none(e)
            and not pud_bad(e)
            and copy_pmd_range(dst_mm, src_mm, dst_pud, src_pud, vma, addr, nxt)
        ):
            return -ENOMEM
        addr = nxt
        if addr == end:
            return 0


def copy_page_range(dst_mm: mm_struct, src_mm: mm_struct, vma: vm_area_struct) -> int:
    """Copy a vma's ptes at fork.  Skipped (the child will fault) unless the
    vma has an anon_vma or is special: a mapping only ever read -- even one
    showing the zero page -- is not copied at all."""
    addr = vma.vm_start
    end = vma.vm_end
    if not vma.vm_flags & (VM_HUGETLB | VM_NONLINEAR | VM_RESERVED) and vma.anon_vma is None:
        return 0
    if is_vm_hugetlb_page(vma):
        from .hugetlb import copy_hugetlb_page_range

        return copy_hugetlb_page_range(dst_mm, src_mm, vma)
    dst_pgd = dst_mm.pgd.data
    src_pgd = src_mm.pgd.data
    while True:
        nxt = pgd_addr_end(addr, end)
        e = src_pgd[pgd_index(addr)]
        if (
            not pgd_none(e)
            and not pgd_bad(e)
            and copy_pud_range(dst_mm, src_mm, dst_pgd, src_pgd, vma, addr, nxt)
        ):
            return -ENOMEM
        addr = nxt
        if addr == end:
            return 0


# =============================================================================
# munmap, madvise(DONTNEED), exit: zap_page_range and unmap_vmas
# =============================================================================
def zap_pte_range(tlb: mmu_gather, vma: vm_area_struct, pmd: array, addr: int, end: int) -> None:
    """Clear the ptes of [addr, end) in one pte page under its lock.  (The
    ``details`` argument, used only by truncation, is not modelled.)"""
    mm = tlb.mm
    alloc = mm.k.alloc
    mem_map = alloc.mem_map
    # a13ea5b75964: vm_normal_page() is NULL for the zero pfn (no rmap, no rss)
    special = mm.k.zero_page if mm.k.semantics.zero_page_special else None
    file_rss = anon_rss = 0
    pte, ptl = pte_offset_map_lock(mm, pmd, addr)
    first = (addr >> PAGE_SHIFT) & PTRS_INDEX_MASK  # pte_index
    last = first + ((end - addr) >> PAGE_SHIFT)
    # The C loop's "if (pte_none(ptent)) continue;", run in C by compress().
    for i in compress(range(first, last), pte[first:last]):
        ptent = pte[i]
        if ptent & PTE_PRESENT_MASK:  # pte_present
            page = None
            if not vma.vm_flags & VM_RESERVED:
                pfn = (ptent & PTE_MASK) >> PAGE_SHIFT
                if pfn >= len(mem_map):  # !pfn_valid
                    print_bad_pte(vma, ptent, addr + ((i - first) << PAGE_SHIFT))
                else:
                    page = mem_map[pfn]
            pte[i] = 0  # ptep_get_and_clear_full
            if page is None or page is special:
                continue
            if page.flags & PG_anon:
                anon_rss -= 1
            else:
                if ptent & _PAGE_DIRTY:
                    set_page_dirty(page)
                if ptent & _PAGE_ACCESSED:
                    mark_page_accessed(page)
                file_rss -= 1
            page_remove_rmap(page)
            tlb_remove_page(tlb, page)
            continue
        # Not present: swap and nonlinear file entries are not modelled.
        pte[i] = 0
    mm._file_rss += file_rss
    mm._anon_rss += anon_rss
    pte_unmap_unlock(pte, ptl)


def zap_pmd_range(tlb: mmu_gather, vma: vm_area_struct, pud: array, addr: int, end: int) -> None:
    pmd = next_table(tlb.mm, pud[pud_index(addr)])
    while True:
        nxt = pmd_addr_end(addr, end)
        e = pmd[pmd_index(addr)]
        if not pmd_none(e):
            if pmd_bad(e):
                pmd[pmd_index(addr)] = 0  # pmd_clear_bad
                tlb.mm.pde_cache.clear()  # the MMU may have walked through it
            else:
                zap_pte_range(tlb, vma, pmd, addr, nxt)
        addr = nxt
        if addr == end:
            return


def zap_pud_range(tlb: mmu_gather, vma: vm_area_struct, pgd: array, addr: int, end: int) -> None:
    pud = next_table(tlb.mm, pgd[pgd_index(addr)])
    while True:
        nxt = pud_addr_end(addr, end)
        e = pud[pud_index(addr)]
        if not pud_none(e) and not pud_bad(e):
            zap_pmd_range(tlb, vma, pud, addr, nxt)
        addr = nxt
        if addr == end:
            return


def unmap_page_range(tlb: mmu_gather, vma: vm_area_struct, addr: int, end: int) -> None:
    BUG_ON(addr >= end, "mm/memory.c:unmap_page_range: BUG_ON(addr >= end)")
    k = vma.vm_mm.k
    if k.sched is not None:
        # The walk reads pgd/pud/pmd entries without a lock, and skips the
        # missing ones: a fault populating one (under page_table_lock) must
        # be ordered with it, so the walk is a declared read of that lock
        # (the key of a missing table, as for the MMU's walk), before it.
        k.sched.access("zap walk", ((vma.vm_mm.page_table_lock.name, 0),))
    pgd = vma.vm_mm.pgd.data
    while True:
        nxt = pgd_addr_end(addr, end)
        e = pgd[pgd_index(addr)]
        if not pgd_none(e) and not pgd_bad(e):
            zap_pud_range(tlb, vma, pgd, addr, nxt)
        addr = nxt
        if addr == end:
            return


#: Without CONFIG_PREEMPT the kernel zaps 1024 pages between reschedule points.
ZAP_BLOCK_SIZE = 1024 * PAGE_SIZE


# =============================================================================
# Spans without page tables (no kernel counterpart: the plain-run fast paths)
# =============================================================================
def missing_table_end(mm: mm_struct, addr: int, end: int, bad_pmd: bool = True) -> int:
    """Where the span of the first missing pgd, pud or pmd entry covering
    ``addr`` ends (at most ``end``); ``addr`` itself when ``addr`` has a pmd
    entry.  A bad entry counts as missing, as follow_page's ``p?d_none ||
    p?d_bad`` tests have it, except a bad pmd when ``bad_pmd`` is false (the
    zap walk clears those, so they are not nothing to it)."""
    e = mm.pgd.data[pgd_index(addr)]
    if pgd_none(e) or pgd_bad(e):
        return pgd_addr_end(addr, end)
    e = next_table(mm, e)[pud_index(addr)]
    if pud_none(e) or pud_bad(e):
        return pud_addr_end(addr, end)
    e = next_table(mm, e)[pmd_index(addr)]
    if pmd_none(e) or (bad_pmd and pmd_bad(e)):
        return pmd_addr_end(addr, end)
    return addr


def missing_tables_end(mm: mm_struct, addr: int, end: int, bad_pmd: bool = True) -> int:
    """The end of the run of consecutive missing-entry spans from ``addr``
    (see :func:`missing_table_end`): the first address below ``end`` that has
    a pmd entry, else ``end``.  Costs one step per missing entry, however
    large its span."""
    while addr < end:
        nxt = missing_table_end(mm, addr, end, bad_pmd)
        if nxt == addr:
            return addr
        addr = nxt
    return end


def unmap_vmas(
    tlb: mmu_gather, vma: vm_area_struct | None, start_addr: int, end_addr: int
) -> tuple[mmu_gather, int]:
    """Unmap [start_addr, end_addr) of a vma chain in ZAP_BLOCK_SIZE blocks,
    finishing the TLB gather and offering to reschedule between blocks.
    Returns the (possibly renewed) gather and the end address.

    Fast path, when no scheduler explores (``k.sched is None``): at the start
    of a block, with nothing gathered, the whole blocks of a span whose pgd,
    pud or pmd entries are all none (or a bad pgd/pud, which the zap walk
    skips too) are stepped over at once.  It leaves the same state as the
    C's loop: for such a block unmap_page_range finds no table and changes
    nothing, tlb_finish_mmu flushes an empty gather (nothing freed), and
    cond_resched does nothing when nothing else can run, so the next block
    starts with the same empty gather and a full zap_bytes either way.  This
    makes tearing down a huge untouched mapping cost the tables it has, not
    its size (64 TiB: 16 million blocks).  Under an explorer every block
    keeps its cond_resched, a schedule point.
    """
    zap_bytes = ZAP_BLOCK_SIZE
    tlb_start = 0
    tlb_start_valid = False
    start = start_addr
    fullmm = tlb.fullmm
    plain = tlb.mm.k.sched is None
    while vma is not None and vma.vm_start < end_addr:
        start = max(vma.vm_start, start_addr)
        end = min(vma.vm_end, end_addr)
        if start >= vma.vm_end or end <= vma.vm_start:
            vma = vma.vm_next
            continue
        while start != end:
            if not tlb_start_valid:
                tlb_start = start
                tlb_start_valid = True
            if is_vm_hugetlb_page(vma):
                from .hugetlb import unmap_hugepage_range

                block = end - start
                unmap_hugepage_range(vma, start, end)
            else:
                if plain and zap_bytes == ZAP_BLOCK_SIZE and not tlb.need_flush:
                    hole = missing_tables_end(tlb.mm, start, end, bad_pmd=False) - start
                    if hole >= ZAP_BLOCK_SIZE:
                        start += hole - hole % ZAP_BLOCK_SIZE  # whole empty blocks
                        continue
                block = min(zap_bytes, end - start)
                unmap_page_range(tlb, vma, start, start + block)
            start += block
            zap_bytes -= block
            if zap_bytes > 0:
                continue
            tlb_finish_mmu(tlb, tlb_start, start)
            cond_resched(vma.vm_mm.k)
            tlb = tlb_gather_mmu(vma.vm_mm, fullmm)
            tlb_start_valid = False
            zap_bytes = ZAP_BLOCK_SIZE
        vma = vma.vm_next
    return tlb, start


def zap_page_range(vma: vm_area_struct, address: int, size: int) -> int:
    """Remove the user pages of a range (MADV_DONTNEED); returns the end."""
    mm = vma.vm_mm
    end = address + size
    tlb = tlb_gather_mmu(mm, 0)
    update_hiwater_rss(mm)
    # zap only this vma: unmap_vmas stops at end, which lies inside it
    tlb, end = unmap_vmas(tlb, vma, address, end)
    tlb_finish_mmu(tlb, address, end)
    return end


# =============================================================================
# follow_page and get_user_pages: the seed patch
# =============================================================================
#: x86-64 p?d_bad(): an entry's flags, _PAGE_USER aside, must be _KERNPG_TABLE
#: (as an unsigned mask: Python's & with a negative int is slower).
_TABLE_FLAGS = ~PTE_MASK & ~_PAGE_USER & ULONG_MAX


def follow_page(mm: mm_struct, address: int, flags: int) -> Page | None:
    """Look up the page mapped at ``address`` without faulting.

    Models follow_page() as deceb6cd leaves it: the pte is read under
    pte_offset_map_lock (the caller holds only mmap_sem); FOLL_GET takes a
    reference under that lock; FOLL_TOUCH marks the page accessed (and dirty
    for FOLL_WRITE); FOLL_WRITE needs a writable pte; FOLL_ANON turns a missing
    pgd/pud/pmd into the ZERO_PAGE without allocating tables.  FOLL_DUMP,
    which replaced it (8e4b9a607189; the core dump of ``gup_foll_dump``
    profiles), answers DUMP_HOLE -- ERR_PTR(-EFAULT) -- for the zero page and
    for a hole a fault would fill with zeroes, taking no reference.
    x86-64's follow_huge_addr() always answers ERR_PTR(-EINVAL), so that first
    step is omitted; and x86-64's pmd_bad() is true for a huge pmd, so the
    pmd_huge() branch after it is never taken on this architecture (kept as
    the C has it).
    The p?d_offset/none/bad macros of the walk are written in place, and
    the walk down to the pmd table is memoised in ``mm.pmd_cache`` (valid
    until a pmd or pud table is freed): this runs once per page of every
    get_user_pages.
    """
    k = mm.k
    mem_map = k.alloc.mem_map
    pmd = mm.pmd_cache.get(address >> PUD_SHIFT)
    if pmd is None:
        e = mm.pgd.data[(address >> PGDIR_SHIFT) & PTRS_INDEX_MASK]
        if not e or e & _UPPER_BAD_FLAGS:  # pgd_none || pgd_bad
            return _follow_no_page_table(mm, address, flags)
        e = mem_map[(e & PTE_MASK) >> PAGE_SHIFT].data[(address >> PUD_SHIFT) & PTRS_INDEX_MASK]
        if not e or e & _UPPER_BAD_FLAGS:  # pud_none || pud_bad
            return _follow_no_page_table(mm, address, flags)
        pmd = mm.pmd_cache[address >> PUD_SHIFT] = mem_map[(e & PTE_MASK) >> PAGE_SHIFT].data
    e = pmd[(address >> PMD_SHIFT) & PTRS_INDEX_MASK]
    if not e or e & _TABLE_FLAGS != _KERNPG_TABLE:  # pmd_none || pmd_bad
        return _follow_no_page_table(mm, address, flags)
    if e & _PAGE_PSE:  # pmd_huge
        BUG_ON(flags & FOLL_GET, "mm/memory.c:follow_page: BUG_ON(flags & FOLL_GET) [huge pmd]")
        from .hugetlb import follow_huge_pmd

        return follow_huge_pmd(mm, address, pmd, flags & FOLL_WRITE)

    # pte_offset_map_lock(), a macro, written in place (e is *pmd).  The
    # section reads the pte; get_page and the accessed/dirty marking commute
    # with another lookup's, so the explorer may treat it as a read.
    ptepage = mem_map[(e & PTE_MASK) >> PAGE_SHIFT]
    ptl = ptepage.private if k.split_ptlock else mm.page_table_lock  # pte_lockptr
    if k.sched is None and ptl.owner is None:  # spin_lock, uncontended, in place
        ptl.owner = k.current or NO_TASK
    else:
        spin_lock(ptl, True)
    pte = ptepage.data[(address >> PAGE_SHIFT) & PTRS_INDEX_MASK]
    page = None
    # Each failed test is the C's "goto unlock" with page still NULL.
    if pte & PTE_PRESENT_MASK and (
        not flags & FOLL_WRITE or can_follow_write_pte(pte, flags, mm, address)
    ):
        pfn = (pte & PTE_MASK) >> PAGE_SHIFT
        if pfn < len(mem_map):  # pfn_valid
            page = mem_map[pfn]
            if flags & FOLL_DUMP and page is k.zero_page:
                page = DUMP_HOLE  # 8e4b9a607189's bad_page: a dump skips the zero page
            elif (
                flags & FOLL_PIN and not pte & _PAGE_RW and _must_unshare(mm, address, flags, page)
            ):
                page = UNSHARE  # later kernels' ERR_PTR(-EMLINK)
            elif flags & FOLL_PIN:  # try_grab_page(FOLL_PIN), fc1d8e7cca2d
                count_access(page, INC)  # an atomic add: commutes with another
                page._count += GUP_PIN_COUNTING_BIAS
            elif flags & FOLL_GET:  # get_page(), in place: a pte maps no compound page
                if k.sched is not None:  # another mm's reuse test may read the count
                    count_access(page, INC)
                page._count += 1
            if flags & FOLL_TOUCH and page is not UNSHARE and page is not DUMP_HOLE:
                if flags & FOLL_WRITE and not pte & _PAGE_DIRTY and not page.flags & PG_dirty:
                    set_page_dirty(page)
                mark_page_accessed(page)
    # unlock: pte_unmap_unlock (pte_unmap is a no-op on x86-64)
    if k.sched is None and ptl.owner is not None:  # spin_unlock, in place
        ptl.owner = None
    else:
        spin_unlock(ptl)
    if flags & FOLL_DUMP and not pte:  # 8e4b9a607189's no_page: pte_none falls through
        return _follow_no_page_table(mm, address, flags)
    return page


#: follow_page's answer when a R/O pin must unshare first (gup_must_unshare):
#: later kernels' ERR_PTR(-EMLINK).  Never a page anyone maps.
UNSHARE = Page.__new__(Page)
#: follow_page's ERR_PTR(-EFAULT) under FOLL_DUMP (8e4b9a607189): the dump
#: leaves a hole here.  Never a page anyone maps.
DUMP_HOLE = Page.__new__(Page)


def can_follow_write_pte(pte: int, flags: int, mm: mm_struct, address: int) -> bool:
    """A write lookup needs a writable pte -- or, since 19be0eaffa3a (the
    Dirty COW fix), a dirty one after a COW this call completed (FOLL_COW,
    set only by profiles with ``gup_foll_cow``); 17839856fd58 (v5.8,
    ``gup_cow_break_on_read``) dropped the FOLL_FORCE requirement.  Since
    5535be309971 (``foll_force_anon_exclusive``) there is no FOLL_COW: a
    FOLL_FORCE write may use a R/O pte only in a private VM_MAYWRITE mapping
    without VM_WRITE, on an exclusive anonymous page (soft-dirty and uffd-wp
    are not modelled)."""
    if pte & _PAGE_RW:
        return True
    sem = mm.k.semantics
    if sem.foll_force_anon_exclusive:
        return _can_force_write_exclusive(pte, flags, mm, address)
    if not flags & FOLL_COW or not pte & _PAGE_DIRTY:
        return False
    return bool(flags & FOLL_FORCE) or sem.gup_cow_break_on_read


def _can_force_write_exclusive(pte: int, flags: int, mm: mm_struct, address: int) -> bool:
    """5535be309971's can_follow_write_pte() for a R/O pte."""
    if not flags & FOLL_FORCE:
        return False
    vma = _mmap.find_vma(mm, address)  # follow_page_pte has it; this tree's follow_page not
    if vma is None or vma.vm_flags & (VM_MAYSHARE | VM_SHARED) or vma.vm_flags & VM_WRITE:
        return False
    if not vma.vm_flags & VM_MAYWRITE:
        return False
    return pte_maps_exclusive_anon(mm, pte)


def pte_maps_exclusive_anon(mm: mm_struct, pte: int) -> bool:
    """The pte maps a PageAnonExclusive anonymous page (6c287605fd56's
    state), the test behind a write through a read-only pte (FOLL_FORCE)
    and mprotect's write upgrade.  The zero page is never PG_anon."""
    pfn = (pte & PTE_MASK) >> PAGE_SHIFT
    mem_map = mm.k.alloc.mem_map
    if pfn >= len(mem_map):  # !pfn_valid
        return False
    page = mem_map[pfn]
    return bool(page.flags & PG_anon and page.flags & PG_anon_exclusive)


def _must_unshare(mm: mm_struct, address: int, flags: int, page: Page) -> bool:
    return mm.k.semantics.page_anon_exclusive and gup_must_unshare(mm, address, flags, page)


def gup_must_unshare(mm: mm_struct, address: int, flags: int, page: Page) -> bool:
    """6c287605fd56's series (v5.18, ``page_anon_exclusive``): a R/O FOLL_PIN
    of an anonymous page that may be shared must first unshare it, so that a
    later write fault cannot COW the pinned page away.  84209e87c696 (v6.2,
    ``longterm_pin_unshares_non_anon``): so must a R/O FOLL_LONGTERM pin of
    any other page (page cache, the zero page) in a COW mapping.  The C gets
    the vma from follow_page_pte; this tree's follow_page has only the mm."""
    if flags & (FOLL_WRITE | FOLL_PIN) != FOLL_PIN:
        return False
    if not page.flags & PG_anon:
        if not mm.k.semantics.longterm_pin_unshares_non_anon or not flags & FOLL_LONGTERM:
            return False
        vma = _mmap.find_vma(mm, address)
        return vma is None or vma.vm_flags & (VM_SHARED | VM_MAYWRITE) == VM_MAYWRITE
    return not page.flags & PG_anon_exclusive


def _follow_no_page_table(mm: mm_struct, address: int, flags: int) -> Page | None:
    """follow_page's no_page_table label: "When core dumping an enormous
    anonymous area that nobody has touched so far, we don't want to allocate
    page tables."  A later kernel's R/O long-term pin, which has no such
    shortcut, must not pin the zero page where it would unshare it
    (gup_must_unshare): it takes the fault instead.  Under FOLL_DUMP, which
    replaced FOLL_ANON (8e4b9a607189), a hole that a fault would surely fill
    with zeroes -- a mapping with no ->fault (``nopage`` here) -- is
    ERR_PTR(-EFAULT), left as a hole in the dump."""
    if flags & FOLL_DUMP:
        vma = _mmap.find_vma(mm, address)  # the C's follow_page has the vma; this tree's not
        if vma.vm_ops is None or vma.vm_ops.nopage is None:
            return DUMP_HOLE
        return None
    if not flags & FOLL_ANON:
        return None
    k = mm.k
    page = k.zero_page  # ZERO_PAGE(address): one global page on x86-64
    if flags & FOLL_PIN and _must_unshare(mm, address, flags, page):
        return UNSHARE
    if flags & FOLL_PIN:  # the model's FOLL_ANON meets a later kernel's pin
        page._count += GUP_PIN_COUNTING_BIAS
    elif flags & FOLL_GET:
        get_page(page)
    BUG_ON(flags & FOLL_WRITE, "mm/memory.c:follow_page: BUG_ON(flags & FOLL_WRITE) [FOLL_ANON]")
    return page


def get_user_pages(
    tsk: task_struct,
    mm: mm_struct,
    start: int,
    len: int,
    write: int,
    force: int,
    pages: list[Page] | None,
    vmas: list[vm_area_struct] | None,
    gup_flags: int = 0,
) -> int:
    """Fault in and pin ``len`` pages from ``start``; the caller holds mmap_sem.

    Models get_user_pages() after deceb6cd: no page_table_lock, FOLL_GET when
    ``pages`` is wanted, FOLL_ANON for reads of anonymous non-VM_LOCKED vmas,
    FOLL_WRITE re-armed for every page and dropped once __handle_mm_fault
    reports VM_FAULT_WRITE (profiles with the Dirty COW fix add FOLL_FORCE and
    keep FOLL_WRITE with FOLL_COW instead: see _cow_done).  ``pages``/``vmas``
    are lists that are appended to.
    ``gup_flags`` carries a later kernel's FOLL_PIN (pin_user_pages, profiles
    with ``foll_pin``): the references are pins (GUP_PIN_COUNTING_BIAS each),
    and with ``page_anon_exclusive`` a R/O pin of a shared anonymous page
    takes an unshare fault first.  With ``gup_cow_break_on_read`` (17839856fd58)
    any GUP that takes references on a COW mapping is a write (it breaks COW).
    Returns the number of pages handled, or -errno if none was.
    """
    k = mm.k
    if not k.semantics.follow_page_inner_ptlock:
        from . import prepatch  # the tree before deceb6cd

        return prepatch.get_user_pages(tsk, mm, start, len, write, force, pages, vmas)
    if len <= 0:  # BUG_ON, written in place (this runs for every ptrace'd page)
        BUG_ON(True, "mm/memory.c:get_user_pages: len <= 0 (the kernel's loop never ends)")
    vm_flags = (VM_WRITE | VM_MAYWRITE) if write else (VM_READ | VM_MAYREAD)
    vm_flags &= (VM_MAYREAD | VM_MAYWRITE) if force else (VM_READ | VM_WRITE)
    i = 0
    while True:
        vma = _mmap.find_extend_vma(mm, start)
        if vma is None and k.in_gate_area(tsk, start):
            ret = _get_gate_page(k, tsk, start, write, pages, vmas, gup_flags)
            if ret < 0:
                return i or ret
            i += 1
            start += PAGE_SIZE
            len -= 1
            if not len:
                return i
            continue

        if vma is None or vma.vm_flags & (VM_IO | VM_RESERVED) or not vm_flags & vma.vm_flags:
            return i or -EFAULT
        # cda540ace6a1 (v3.15): a forced write to a !VM_WRITE vma that is
        # not a COW mapping (a read-only MAP_SHARED of a writable file) no
        # longer COWs into an anonymous page: -EFAULT.
        if (
            write
            and k.semantics.gup_refuses_cow_in_shared
            and not vma.vm_flags & VM_WRITE
            and vma.vm_flags & (VM_SHARED | VM_MAYWRITE) != VM_MAYWRITE  # !is_cow_mapping
        ):
            return i or -EFAULT

        if vma.vm_flags & VM_HUGETLB:  # is_vm_hugetlb_page
            from .hugetlb import follow_hugetlb_page

            i, start, len = follow_hugetlb_page(mm, vma, pages, vmas, start, len, i)
            if not len:  # an error ends it too: i < 0 comes with len 0
                return i
            continue

        foll_flags = FOLL_TOUCH | (gup_flags & FOLL_DUMP)
        if pages is not None:
            foll_flags |= FOLL_PIN if gup_flags & FOLL_PIN else FOLL_GET
        foll_flags |= gup_flags & FOLL_LONGTERM
        if force and k.semantics.gup_foll_cow:
            foll_flags |= FOLL_FORCE
        # 17839856fd58's should_force_cow_break(): is_cow_mapping() and a
        # reference wanted.
        cow_break = (
            k.semantics.gup_cow_break_on_read
            and pages is not None
            and vma.vm_flags & (VM_SHARED | VM_MAYWRITE) == VM_MAYWRITE
        )
        # The seed's "!write && !(vma->vm_flags & VM_LOCKED) &&
        # (!vma->vm_ops || !vma->vm_ops->nopage)"; gone with 8e4b9a607189.
        if (
            not write
            and not cow_break
            and not k.semantics.gup_foll_dump
            and not _vm_locked_blocks_foll_anon(k, vma)
            and (vma.vm_ops is None or vma.vm_ops.nopage is None)
        ):
            foll_flags |= FOLL_ANON

        while True:
            if write or cow_break:
                foll_flags |= FOLL_WRITE
            if k.sched is not None:  # cond_resched(): a point only when exploring
                cond_resched(k)
            while True:
                page = follow_page(mm, start, foll_flags)
                if page is UNSHARE:  # gup_must_unshare: faultin_page(unshare=true)
                    ret = __handle_mm_fault(mm, vma, start, FAULT_FLAG_UNSHARE)
                    err = gup_fault_result(tsk, ret & ~VM_FAULT_WRITE)
                    if err:
                        return i or err
                    continue
                if page is DUMP_HOLE:  # IS_ERR(page)
                    return i or -EFAULT
                if page is not None:
                    break
                ret = __handle_mm_fault(mm, vma, start, foll_flags & FOLL_WRITE)
                # The VM_FAULT_WRITE bit tells us that do_wp_page has broken
                # COW when necessary, even if maybe_mkwrite decided not to set
                # pte_write: later lookups of this page can be done as reads.
                if ret & VM_FAULT_WRITE:
                    foll_flags = _cow_done(k, vma, foll_flags)
                err = gup_fault_result(tsk, ret & ~VM_FAULT_WRITE)
                if err:
                    return i or err
            if pages is not None:
                pages.append(page)  # flush_dcache_page() is a no-op on x86
            if vmas is not None:
                vmas.append(vma)
            i += 1
            start += PAGE_SIZE
            len -= 1
            if not (len and start < vma.vm_end):
                break
        if not len:
            return i


def gup_fault_result(tsk: task_struct, ret: int) -> int:
    """get_user_pages' switch on the fault result (both trees): count the
    fault on the task, or the errno to return when no page was done --
    SIGBUS becomes EFAULT, OOM ENOMEM; anything else is the kernel's BUG()."""
    if ret == VM_FAULT_MINOR:
        tsk.min_flt += 1
    elif ret == VM_FAULT_MAJOR:
        tsk.maj_flt += 1
    elif ret == VM_FAULT_SIGBUS:
        return -EFAULT
    elif ret == VM_FAULT_OOM:
        return -ENOMEM
    else:
        raise ModelFailure("mm/memory.c:get_user_pages: BUG()", f"fault result {ret}")
    return 0


def _cow_done(k: object, vma: vm_area_struct, foll_flags: int) -> int:
    """What get_user_pages remembers after VM_FAULT_WRITE.  The seed drops
    FOLL_WRITE -- the line behind Dirty COW: if the pte is zapped before the
    next lookup, the retry is a read fault that maps the page-cache page.
    The fix (19be0eaffa3a) keeps FOLL_WRITE and sets FOLL_COW instead."""
    if k.sched is not None:
        k.sched.note(
            "VM_FAULT_WRITE: COW resolved, "
            + ("FOLL_COW set" if k.semantics.gup_foll_cow else "FOLL_WRITE dropped")
        )
    if k.semantics.foll_force_anon_exclusive:  # 5535be309971: no FOLL_COW
        return foll_flags
    if k.semantics.gup_foll_cow:
        if not vma.vm_flags & VM_WRITE:
            foll_flags |= FOLL_COW
        return foll_flags
    return foll_flags & ~FOLL_WRITE


def _vm_locked_blocks_foll_anon(k: object, vma: vm_area_struct) -> bool:
    """deceb6cd's fix: no zero-page shortcut for VM_LOCKED vmas, so that
    make_pages_present() really maps read-only anonymous memory."""
    return bool(vma.vm_flags & VM_LOCKED) and k.semantics.foll_anon_respects_vm_locked


def _get_gate_page(
    k: object,
    tsk: task_struct,
    start: int,
    write: int,
    pages: list[Page] | None,
    vmas: list[vm_area_struct] | None,
    gup_flags: int = 0,
) -> int:
    """get_user_pages' gate-area branch: user gate pages are read-only and
    are looked up in the kernel's own page table, without follow_page."""
    if write:
        return -EFAULT
    page = k.gate_page(start)
    if page is None:
        return -EFAULT
    if pages is not None:
        if gup_flags & FOLL_PIN:  # a later kernel's try_grab_page
            page._count += GUP_PIN_COUNTING_BIAS
        else:
            get_page(page)
        pages.append(page)
    if vmas is not None:
        vmas.append(k.get_gate_vma(tsk))
    return 0


def make_pages_present(addr: int, end: int, current: task_struct) -> int:
    """mm/memory.c make_pages_present() (2.6.15): fault in [addr, end) of
    ``current``'s mm (mlock, MAP_LOCKED, MAP_POPULATE, stack growth).  A
    writable vma is write-faulted (every private page COW-broken).

    With ``populate_reads_shared`` it asks what 6.18's
    populate_vma_page_range() asks, which every one of those paths calls
    since bebeb3d68b24 (v3.9, mm_populate): a write fault only for a private
    writable mapping (5ecfda041e4b) and FOLL_FORCE for any mapping that is
    not PROT_NONE (fdf4c587a7, "mlock: operate on any regions with
    protection != PROT_NONE", v2.6.38, __mlock_vma_pages_range only: between
    v2.6.38 and v3.9 MAP_POPULATE's make_pages_present passed force=0, an
    era no profile models)."""
    from .mmap import find_vma

    mm = current.mm
    vma = find_vma(mm, addr)
    if vma is None:
        return -1
    write = 1 if vma.vm_flags & VM_WRITE else 0
    force = 0
    if mm.k.semantics.populate_reads_shared:
        # 5ecfda041e4b: shared mappings are not COWed, so no write fault to
        # dirty them; fdf4c587a7: any mapping but PROT_NONE may be populated
        # (FOLL_FORCE).
        write = 1 if vma.vm_flags & (VM_WRITE | VM_SHARED) == VM_WRITE else 0
        force = 1 if vma.vm_flags & (VM_READ | VM_WRITE | VM_EXEC) else 0
    BUG_ON(addr >= end, "mm/memory.c:make_pages_present: BUG() addr >= end")
    BUG_ON(end > vma.vm_end, "mm/memory.c:make_pages_present: BUG() end > vma->vm_end")
    length = (end + PAGE_SIZE - 1) // PAGE_SIZE - addr // PAGE_SIZE
    ret = get_user_pages(current, mm, addr, length, write, force, None, None)
    if ret < 0:
        return ret
    if ret == length:
        return 0
    # a range faulted in part: 2.6.15 says -1 (mlock's EPERM); 9978ad583e10
    # (mlock_posix_errno) made it -EFAULT (mlock's ENOMEM)
    return -EFAULT if mm.k.semantics.mlock_posix_errno else -1


# =============================================================================
# Page faults
# =============================================================================
def do_wp_page(
    mm: mm_struct,
    vma: vm_area_struct,
    address: int,
    page_table: array,
    pmd: array,
    ptl: object,
    orig_pte: int,
    unshare: bool = False,
) -> int:
    """Write to a present, write-protected pte: reuse the page if it is anonymous
    and mapped once, else copy it.  VM_FAULT_WRITE is or'ed in exactly when
    the COW was resolved.  The reuse test is the profile's (_wp_can_reuse).
    ``unshare`` (later kernels' FAULT_FLAG_UNSHARE, from a R/O pin): make the
    anonymous page exclusive -- reuse it or map a copy -- leaving the pte
    read-only, and report no VM_FAULT_WRITE; from 8d6a0ac09a16 (v6.2,
    ``longterm_pin_unshares_non_anon``) a page-cache or zero page is replaced
    by such a copy too.

    Locks: entered with mmap_sem held for read (vmas cannot change, other
    faults may run) and the pte lock ``ptl`` held; the copy runs with the pte
    lock dropped and rechecks the pte (pte_same) after retaking it.  Returns
    with mmap_sem still held and the pte lock released."""
    k = mm.k
    alloc = k.alloc
    pfn = (orig_pte & PTE_MASK) >> PAGE_SHIFT
    ret = VM_FAULT_MINOR
    BUG_ON(
        vma.vm_flags & VM_RESERVED, "mm/memory.c:do_wp_page: BUG_ON(vma->vm_flags & VM_RESERVED)"
    )
    if pfn >= len(alloc.mem_map):  # !pfn_valid
        print_bad_pte(vma, orig_pte, address)
        pte_unmap_unlock(page_table, ptl)
        return VM_FAULT_OOM
    old_page = alloc.mem_map[pfn]
    i = (address >> PAGE_SHIFT) & PTRS_INDEX_MASK  # pte_index

    sem = k.semantics
    # Before 8d6a0ac09a16 (v6.2) a page that is not anonymous here means the
    # pte changed under the pin: nothing to unshare.  From it, any page of a
    # COW mapping is unshared (copied below).
    if unshare and not old_page.flags & PG_anon and not sem.longterm_pin_unshares_non_anon:
        pte_unmap_unlock(page_table, ptl)
        return ret
    if old_page.flags & PG_anon and (
        sem.page_anon_exclusive and old_page.flags & PG_anon_exclusive
    ):  # 6c287605fd56: an exclusive page is reused at once
        reuse = True
    elif old_page.flags & PG_anon and not TestSetPageLocked(old_page):
        reuse = _wp_can_reuse(k, old_page)
        if reuse and sem.page_anon_exclusive:  # page_move_anon_rmap()
            old_page.flags |= PG_anon_exclusive
        unlock_page(old_page)
    else:
        reuse = False
    if reuse:
        if unshare:  # exclusive now; the pte stays read-only
            pte_unmap_unlock(page_table, ptl)
            return ret
        entry = maybe_mkwrite(orig_pte | _PAGE_ACCESSED | _PAGE_DIRTY, vma)
        page_table[i] = entry  # ptep_set_access_flags(..., 1)
        pte_unmap_unlock(page_table, ptl)
        return ret | VM_FAULT_WRITE

    # Ok, we need to copy. Oh, well..  Since a13ea5b75964 vm_normal_page()
    # gives no page for the zero pfn: the copy runs with old_page NULL (None
    # here), taking and dropping no reference and no rmap.
    zero = old_page is k.zero_page
    if zero and sem.zero_page_special:
        old_page = None
    else:
        get_page(old_page)  # page_cache_get
    pte_unmap_unlock(page_table, ptl)
    if vma.anon_vma is None and anon_vma_prepare(vma):  # its inline test, in place
        if old_page is not None:
            put_page(alloc, old_page)
        return VM_FAULT_OOM
    new_page = alloc.alloc_page_node(k.current_node())
    if new_page is None:
        if old_page is not None:
            put_page(alloc, old_page)
        return VM_FAULT_OOM
    if zero:
        clear_user_highpage(new_page)  # alloc_zeroed_user_highpage
    else:
        if k.sched is not None:  # the copy reads the old page unlocked
            k.sched.access("copy page", ((old_page.pfn, 0),))
        copy_user_highpage(new_page, old_page)

    # Re-check the pte - we dropped the lock
    page_table, ptl = pte_offset_map_lock(mm, pmd, address)
    if page_table[i] == orig_pte:
        if old_page is None:  # the special zero pfn: no rmap, no file rss
            mm._anon_rss += 1
        else:
            page_remove_rmap(old_page)
            if not old_page.flags & PG_anon:
                mm._anon_rss += 1
                mm._file_rss -= 1
        if unshare:  # wp_page_copy: the copy is mapped read-only, clean
            entry = (new_page.pfn << PAGE_SHIFT) | vma.vm_page_prot
        else:
            entry = maybe_mkwrite(
                (new_page.pfn << PAGE_SHIFT) | vma.vm_page_prot | _PAGE_DIRTY, vma
            )  # mk_pte
        page_table[i] = entry  # ptep_establish
        lru_cache_add_active(new_page)
        page_add_anon_rmap(new_page, vma, address)
        new_page = old_page  # Free the old page..
        if not unshare:
            ret |= VM_FAULT_WRITE
    if new_page is not None:
        put_page(alloc, new_page)
    if old_page is not None:
        put_page(alloc, old_page)
    pte_unmap_unlock(page_table, ptl)
    return ret


def _wp_can_reuse(k: object, page: Page) -> bool:
    """do_wp_page's test for reusing a locked anonymous page.  The seed:
    can_share_swap_page() (mapped once).  09854ba94c6a (v5.9,
    ``wp_reuse_page_count``): mapped once and page_count == 1, so any GUP
    reference (a pipe's, a pin's) makes the write copy."""
    if not k.semantics.wp_reuse_page_count:
        return can_share_swap_page(page)
    mapcount_access(page, 0)
    count_access(page, 0)
    return page._mapcount + 1 == 1 and page._count + 1 == 1


def can_share_swap_page(page: Page) -> bool:
    """mm/swapfile.c: reuse iff mapped once (no swap cache in this model).
    Note: page_count is not consulted -- a pinned page can be reused."""
    mapcount_access(page, 0)
    return page._mapcount + 1 == 1


def do_anonymous_page(
    mm: mm_struct,
    vma: vm_area_struct,
    address: int,
    page_table: array,
    pmd: array,
    write_access: int,
) -> int:
    """First touch of anonymous memory: a read maps the shared ZERO_PAGE
    (refcounted, rmap'd, counted as file_rss); a write maps a new zeroed page.

    Locks: entered with mmap_sem held for read and the pte table mapped but
    its lock not held; the page is allocated without it, then the pte lock is
    taken and the pte rechecked (still none, else another fault won and the
    page is released).  Returns with mmap_sem still held and the pte lock
    released.  Without ``fault_ptl_pushed_down`` (before 8f4e2101fd7d) it is
    entered with page_table_lock held: a write drops it to allocate, a read
    maps the zero page under it."""
    k = mm.k
    i = (address >> PAGE_SHIFT) & PTRS_INDEX_MASK  # pte_index
    locked = not k.semantics.fault_ptl_pushed_down
    if write_access:
        if locked:  # pte_unmap(page_table); spin_unlock(&mm->page_table_lock)
            spin_unlock(mm.page_table_lock)
        if vma.anon_vma is None and anon_vma_prepare(vma):  # its inline test, in place
            return VM_FAULT_OOM
        page = k.alloc.alloc_page_node(k.current_node())
        if page is None:
            return VM_FAULT_OOM
        sched = k.sched
        if sched is not None:  # virtual time: buffered_rmqueue, clear_page
            sched.charge("alloc_page")
            sched.charge("clear_page")
        entry = maybe_mkwrite(
            (page.pfn << PAGE_SHIFT) | vma.vm_page_prot | _PAGE_DIRTY, vma
        )  # mk_pte
        page_table, ptl = pte_offset_map_lock(mm, pmd, address)
        if page_table[i]:
            put_page(k.alloc, page)  # release:
            pte_unmap_unlock(page_table, ptl)
            return VM_FAULT_MINOR
        mm._anon_rss += 1
        if sched is not None:  # inc_mm_counter and the pagevec's lines
            sched.charge("mm_counter", mm)
            sched.charge("lru_cache_add")
        lru_cache_add_active(page)
        page.flags |= PG_referenced  # SetPageReferenced
        page_add_anon_rmap(page, vma, address)
    else:
        # Map the ZERO_PAGE - vm_page_prot is readonly.  Since a13ea5b75964
        # (zero_page_special) a special pte: no reference, rss or rmap.
        page = k.zero_page
        counted = not k.semantics.zero_page_special
        if counted:
            get_page(page)
        entry = _mk_pte(page, vma.vm_page_prot)
        ptl = pte_lockptr(mm, pmd[pmd_index(address)])
        if not locked:
            spin_lock(ptl)
        if page_table[i]:
            if counted:
                put_page(k.alloc, page)
            pte_unmap_unlock(page_table, ptl)
            return VM_FAULT_MINOR
        if counted:
            mm._file_rss += 1
            if k.sched is not None:
                k.sched.charge("mm_counter", mm)
            page_add_file_rmap(page)
    page_table[i] = entry  # set_pte_at
    if k.sched is not None:
        k.sched.charge("set_pte")
    pte_unmap_unlock(page_table, ptl)
    return VM_FAULT_MINOR


def do_no_page(
    mm: mm_struct,
    vma: vm_area_struct,
    address: int,
    page_table: array,
    pmd: array,
    write_access: int,
) -> int:
    """First touch of a file (or shmem) mapping: ask ->nopage for the page; a
    write fault on a private mapping copies it at once (early COW).

    Locks: entered with mmap_sem held for read and the pte table mapped but
    its lock not held; ->nopage (which may read the file) and the copy run
    without it.  The pte lock is then taken and the pte rechecked: a
    truncation since (mapping->truncate_count moved) retries, a pte filled by
    another fault backs out.  Returns with mmap_sem still held and the pte
    lock released.  Without ``fault_ptl_pushed_down`` (before 8f4e2101fd7d)
    it is entered with page_table_lock held and drops it first."""
    k = mm.k
    if not k.semantics.fault_ptl_pushed_down:  # pte_unmap; spin_unlock
        spin_unlock(mm.page_table_lock)
    if not write_access and k.semantics.fault_around and vma.vm_ops.map_pages is not None:
        # 8c6e50b0290c's do_read_fault(): map the cached pages around first;
        # if that mapped this page (!pte_same), the fault is done.  It is
        # given vmf->address, which __handle_mm_fault page-aligns.
        page_table, ptl = pte_offset_map_lock(mm, pmd, address)
        mapped = do_fault_around(vma, address & PAGE_MASK, page_table)
        pte_unmap_unlock(page_table, ptl)
        if mapped:
            return VM_FAULT_MINOR
    mapping = None
    sequence = 0
    anon = False
    if vma.vm_file is not None:
        mapping = vma.vm_file.mapping
        sequence = mapping.truncate_count
    while True:  # retry:
        new_page, ret = vma.vm_ops.nopage(vma, address & ~PAGE_MASK_LOW)
        if new_page is None:
            return VM_FAULT_SIGBUS
        if new_page is NOPAGE_OOM:
            return VM_FAULT_OOM
        # Should we do an early C-O-W break?
        if write_access and not vma.vm_flags & VM_SHARED:
            if anon_vma_prepare(vma):
                put_page(k.alloc, new_page)
                return VM_FAULT_OOM
            page = k.alloc.alloc_page_node(k.current_node())
            if page is None:
                put_page(k.alloc, new_page)
                return VM_FAULT_OOM
            if k.sched is not None:  # virtual time: buffered_rmqueue, copy_page
                k.sched.charge("alloc_page")
                k.sched.charge("copy_page")
            copy_user_highpage(page, new_page)
            put_page(k.alloc, new_page)
            new_page = page
            anon = True
        page_table, ptl = pte_offset_map_lock(mm, pmd, address)
        if mapping is not None and sequence != mapping.truncate_count:
            pte_unmap_unlock(page_table, ptl)
            put_page(k.alloc, new_page)
            cond_resched(k)
            sequence = mapping.truncate_count
            continue
        break
    i = pte_index(address)
    if not page_table[i]:
        entry = _mk_pte(new_page, vma.vm_page_prot)
        if write_access:
            entry = maybe_mkwrite(entry | _PAGE_DIRTY, vma)
        page_table[i] = entry
        sched = k.sched
        if sched is not None:
            sched.charge("set_pte")
        if anon:
            mm._anon_rss += 1
            if sched is not None:
                sched.charge("mm_counter", mm)
                sched.charge("lru_cache_add")
            lru_cache_add_active(new_page)
            page_add_anon_rmap(new_page, vma, address)
        elif not vma.vm_flags & VM_RESERVED:
            mm._file_rss += 1
            if sched is not None:
                sched.charge("mm_counter", mm)
            page_add_file_rmap(new_page)
    else:
        # One of our sibling threads was faster, back out.
        put_page(k.alloc, new_page)
    pte_unmap_unlock(page_table, ptl)
    return ret


#: fault_around_bytes (64 KiB, the default) in pages.
FAULT_AROUND_PAGES = 16


def do_fault_around(vma: vm_area_struct, address: int, page_table: array) -> bool:
    """mm/memory.c do_fault_around() (8c6e50b0290c, v3.15; the window as
    6.18 computes it): FAULT_AROUND_PAGES aligned in the page table, clamped
    to the vma and to the pte page, handed to ->map_pages.  True if the
    faulting page itself got mapped.  ``address`` is vmf->address: the
    fault's page, aligned."""
    nr = FAULT_AROUND_PAGES
    pte_off = pte_index(address)
    pgoff = linear_page_index(vma, address)  # vmf->pgoff
    vma_off = pgoff - vma.vm_pgoff
    vma_pages = (vma.vm_end - vma.vm_start) >> PAGE_SHIFT
    from_pte = max(pte_off & ~(nr - 1), pte_off - min(pte_off, vma_off))
    to_pte = min(from_pte + nr, PTRS_INDEX_MASK + 1, pte_off + vma_pages - vma_off) - 1
    return vma.vm_ops.map_pages(
        vma, page_table, address, pgoff + from_pte - pte_off, pgoff + to_pte - pte_off
    )


def handle_pte_fault(
    mm: mm_struct, vma: vm_area_struct, address: int, pte: array, pmd: array, write_access: int
) -> int:
    """Dispatch on the pte read without the lock; present ptes are rechecked
    under it (pte_same) before do_wp_page or an accessed/dirty update.

    Locks: entered with mmap_sem held for read and the pte table mapped but
    its lock not held; the not-present paths (do_anonymous_page, do_no_page)
    take the pte lock themselves, the present path takes it here and hands it
    to do_wp_page.  Returns with mmap_sem still held and the pte lock
    released.  Without ``fault_ptl_pushed_down`` (before 8f4e2101fd7d) it is
    entered with page_table_lock held, reads the pte under it, and every
    handler is entered with it held."""
    i = (address >> PAGE_SHIFT) & PTRS_INDEX_MASK  # pte_index
    k = mm.k
    locked = not k.semantics.fault_ptl_pushed_down
    unshare = write_access == FAULT_FLAG_UNSHARE
    if unshare:  # a not-present pte: an unshare fault is a read fault
        write_access = 0
    if k.sched is not None and not locked:  # the pte is read without its lock
        k.sched.access("read pte", ((pte_lockptr(mm, pmd[pmd_index(address)]).name, 0),))
    entry = pte[i]
    if not entry & PTE_PRESENT_MASK:  # !pte_present
        if not entry:
            if vma.vm_ops is None or vma.vm_ops.nopage is None:  # anonymous (no ->nopage)
                return do_anonymous_page(mm, vma, address, pte, pmd, write_access)
            return do_no_page(mm, vma, address, pte, pmd, write_access)
        raise ModelFailure(
            "mm/memory.c:handle_pte_fault", f"swap/nonlinear pte {entry:#x} (not modelled)"
        )
    ptl = pte_lockptr(mm, pmd[pmd_index(address)])
    if not locked:
        spin_lock(ptl)
    if pte[i] == entry:
        if unshare and not entry & _PAGE_RW:
            return do_wp_page(mm, vma, address, pte, pmd, ptl, entry, unshare=True)
        if write_access:
            if not entry & _PAGE_RW:
                return do_wp_page(mm, vma, address, pte, pmd, ptl, entry)
            entry |= _PAGE_DIRTY
        entry |= _PAGE_ACCESSED
        if write_access:  # x86 ptep_set_access_flags stores only when dirty
            pte[i] = entry
    pte_unmap_unlock(pte, ptl)
    return VM_FAULT_MINOR


def __handle_mm_fault(mm: mm_struct, vma: vm_area_struct, address: int, write_access: int) -> int:
    """Allocate the page tables down to the pte and handle the fault.  Returns
    VM_FAULT_* with the VM_FAULT_WRITE bit, which only get_user_pages sees.

    Locks: the caller holds mmap_sem for read (do_page_fault, get_user_pages)
    and no spinlock.  Missing pud/pmd/pte tables are allocated unlocked and
    installed under mm->page_table_lock (__pud_alloc, __pmd_alloc,
    __pte_alloc); handle_pte_fault is entered with no lock held and returns
    the same way.  Without ``fault_ptl_pushed_down`` (before c74df32c724a):
    page_table_lock is taken here, held over the walk (the allocators drop
    it only to allocate) and handed to handle_pte_fault, which returns with
    it released."""
    mm.k.pgfault += 1
    if is_vm_hugetlb_page(vma):
        from .hugetlb import hugetlb_fault

        return hugetlb_fault(mm, vma, address, write_access)
    locked = not mm.k.semantics.fault_ptl_pushed_down
    if locked:
        spin_lock(mm.page_table_lock)
    pmd = mm.pmd_cache.get(address >> PUD_SHIFT)  # memoised pud_alloc + pmd_alloc
    if pmd is None:
        pud = pud_alloc(mm, mm.pgd.data, address, locked)
        if pud is None:
            return _fault_oom(mm, locked)
        pmd = pmd_alloc(mm, pud, address, locked)
        if pmd is None:
            return _fault_oom(mm, locked)
        mm.pmd_cache[address >> PUD_SHIFT] = pmd
    pte = pte_alloc_map(mm, pmd, address, locked)
    if pte is None:
        return _fault_oom(mm, locked)
    return handle_pte_fault(mm, vma, address, pte, pmd, write_access)


def _fault_oom(mm: mm_struct, locked: bool) -> int:
    """__handle_mm_fault's ``oom:`` label."""
    if locked:
        spin_unlock(mm.page_table_lock)
    return VM_FAULT_OOM


def handle_mm_fault(mm: mm_struct, vma: vm_area_struct, address: int, write_access: int) -> int:
    """The arch fault handlers' entry: the VM_FAULT_WRITE bit masked off."""
    return __handle_mm_fault(mm, vma, address, write_access) & ~VM_FAULT_WRITE


# mm/mmap.c calls into this file (make_pages_present, unmap_vmas) and this
# file into it (find_extend_vma): the module is bound after both exist,
# instead of an import statement run on every get_user_pages call.
from . import mmap as _mmap  # noqa: E402

__all__ = [
    "follow_page",
    "get_user_pages",
    "handle_mm_fault",
    "make_pages_present",
    "zap_page_range",
]
