"""mm/memory.c just before deceb6cd17e6 ("mm: follow_page with inner ptlock"):
the functions the seed patch rewrote, as they were, for the ``"seed^"``
profile (old name ``"2.6.14"``).  Read them side by side with their successors in ``memory.py``.

What differs (reference section 9):

* ``follow_page(mm, address, write)`` takes an int ``write``; the caller holds
  ``mm->page_table_lock``; it maps the pte without a lock of its own, takes no
  reference, and always marks the page accessed (and dirty when writing).
* ``get_user_pages`` holds ``page_table_lock`` across its inner loop
  (``cond_resched_lock`` per page), drops it only around
  ``__handle_mm_fault``, and takes the page reference with
  ``page_cache_get`` after ``follow_page`` returned, still under the lock.
* The zero-page shortcut is ``untouched_anonymous_page``, which ignores
  VM_LOCKED: ``make_pages_present`` of read-only anonymous memory maps
  nothing, so mlock leaves it unmapped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .constants import (
    EFAULT,
    PAGE_SHIFT,
    PAGE_SIZE,
    VM_FAULT_WRITE,
    VM_IO,
    VM_MAYREAD,
    VM_MAYWRITE,
    VM_READ,
    VM_RESERVED,
    VM_WRITE,
)
from .locks import cond_resched_lock, spin_lock, spin_unlock
from .page import Page, PageDirty, get_page, mark_page_accessed, set_page_dirty
from .pgalloc import next_table
from .pgtable import (
    _PAGE_DIRTY,
    _PAGE_RW,
    PTE_MASK,
    PTE_PRESENT_MASK,
    pgd_bad,
    pgd_index,
    pgd_none,
    pmd_bad,
    pmd_huge,
    pmd_index,
    pmd_none,
    pte_index,
    pud_bad,
    pud_index,
    pud_none,
)
from .vma import is_vm_hugetlb_page, vm_area_struct, vma_has_nopage

if TYPE_CHECKING:
    from .mm import mm_struct, task_struct


def follow_page(mm: mm_struct, address: int, write: int) -> Page | None:
    """Quick page-table lookup; ``mm->page_table_lock`` must be held."""
    k = mm.k
    e = mm.pgd.data[pgd_index(address)]
    if pgd_none(e) or pgd_bad(e):
        return None
    pud = next_table(mm, e)
    e = pud[pud_index(address)]
    if pud_none(e) or pud_bad(e):
        return None
    pmd = next_table(mm, e)
    e = pmd[pmd_index(address)]
    if pmd_none(e) or pmd_bad(e):
        return None
    if pmd_huge(e):
        from .hugetlb import follow_huge_pmd

        return follow_huge_pmd(mm, address, pmd, write)
    pte = next_table(mm, e)[pte_index(address)]  # pte_offset_map; pte_unmap
    if pte & PTE_PRESENT_MASK:  # pte_present
        if write and not pte & _PAGE_RW:
            return None
        pfn = (pte & PTE_MASK) >> PAGE_SHIFT
        if k.alloc.pfn_valid(pfn):
            page = k.alloc.mem_map[pfn]
            if write and not pte & _PAGE_DIRTY and not PageDirty(page):
                set_page_dirty(page)
            mark_page_accessed(page)
            return page
    return None


def untouched_anonymous_page(mm: mm_struct, vma: vm_area_struct, address: int) -> int:
    """1 if ``address`` is anonymous memory whose pgd/pud/pmd does not exist."""
    if vma_has_nopage(vma):
        return 0
    e = mm.pgd.data[pgd_index(address)]
    if pgd_none(e) or pgd_bad(e):
        return 1
    e = next_table(mm, e)[pud_index(address)]
    if pud_none(e) or pud_bad(e):
        return 1
    e = next_table(mm, e)[pmd_index(address)]
    if pmd_none(e) or pmd_bad(e):
        return 1
    return 0


def get_user_pages(
    tsk: task_struct,
    mm: mm_struct,
    start: int,
    len: int,
    write: int,
    force: int,
    pages: list[Page] | None,
    vmas: list[vm_area_struct] | None,
) -> int:
    """get_user_pages() before the patch: page_table_lock over the inner loop."""
    from .memory import BUG_ON, __handle_mm_fault, _get_gate_page, gup_fault_result
    from .mmap import find_extend_vma

    k = mm.k
    BUG_ON(len <= 0, "mm/memory.c:get_user_pages: len <= 0 (the kernel's loop never ends)")
    flags = (VM_WRITE | VM_MAYWRITE) if write else (VM_READ | VM_MAYREAD)
    flags &= (VM_MAYREAD | VM_MAYWRITE) if force else (VM_READ | VM_WRITE)
    i = 0
    while True:
        vma = find_extend_vma(mm, start)
        if vma is None and k.in_gate_area(tsk, start):
            ret = _get_gate_page(k, tsk, start, write, pages, vmas)
            if ret < 0:
                return i or ret
            i += 1
            start += PAGE_SIZE
            len -= 1
            if not len:
                return i
            continue
        if vma is None or vma.vm_flags & (VM_IO | VM_RESERVED) or not flags & vma.vm_flags:
            return i or -EFAULT
        if is_vm_hugetlb_page(vma):
            from .hugetlb import follow_hugetlb_page

            i, start, len = follow_hugetlb_page(mm, vma, pages, vmas, start, len, i)
            if not len:  # an error ends it too: i < 0 comes with len 0
                return i
            continue
        spin_lock(mm.page_table_lock)
        while True:
            write_access = write
            cond_resched_lock(mm.page_table_lock)
            while True:
                page = follow_page(mm, start, write_access)
                if page is not None:
                    break
                # Shortcut for anonymous pages: don't force the creation of
                # page tables for insanely big areas nobody touched (core dumps).
                if not write and untouched_anonymous_page(mm, vma, start):
                    page = k.zero_page  # ZERO_PAGE(start)
                    break
                spin_unlock(mm.page_table_lock)
                ret = __handle_mm_fault(mm, vma, start, write_access)
                if ret & VM_FAULT_WRITE:
                    write_access = 0
                err = gup_fault_result(tsk, ret & ~VM_FAULT_WRITE)
                if err:
                    return i or err
                spin_lock(mm.page_table_lock)
            if pages is not None:
                pages.append(page)  # flush_dcache_page is a no-op on x86
                get_page(page)  # page_cache_get, under page_table_lock
            if vmas is not None:
                vmas.append(vma)
            i += 1
            start += PAGE_SIZE
            len -= 1
            if not (len and start < vma.vm_end):
                break
        spin_unlock(mm.page_table_lock)
        if not len:
            return i
