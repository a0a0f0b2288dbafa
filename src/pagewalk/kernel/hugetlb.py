"""hugetlbfs and mm/hugetlb.c (Linux 2.6.15, the state of c74df32c724a
"mm: ptd_alloc take ptlock" as the seed patch finds it), with the i386/x86-64
arch helpers of arch/i386/mm/hugetlbpage.c.

In this era hugetlb memory is *prefaulted* when it is mapped
(``hugetlb_prefault``): there are no hugetlb page faults to speak of
(``hugetlb_fault`` answers MINOR if the huge pte exists, else SIGBUS), no COW
(a private writable mapping maps the file's page writable), no rmap and no
mapcount.  A huge pte is a pmd with _PAGE_PSE.  Huge pages come from a pool
(``max_huge_pages``, the ``hugepages=`` boot parameter) filled on first use.

Note: x86-64's ``pmd_bad()`` is true for a huge pmd, so ``follow_page``
returns at its "no page table" test before reaching ``pmd_huge()``:
get_user_pages never asks it (hugetlb vmas go to follow_hugetlb_page).
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

from ..errors import ModelFailure
from .constants import (
    EFAULT,
    EINVAL,
    ENOMEM,
    HPAGE_MASK_LOW,
    HPAGE_SHIFT,
    HPAGE_SIZE,
    PAGE_SHIFT,
    PAGE_SIZE,
    TASK_SIZE,
    TASK_UNMAPPED_BASE,
    VM_FAULT_MINOR,
    VM_FAULT_SIGBUS,
    VM_HUGETLB,
    VM_RESERVED,
    VM_WRITE,
)
from .locks import spin_lock, spin_unlock
from .mm import update_hiwater_rss
from .page import Page, get_page, put_page
from .pgalloc import next_table, pmd_alloc, pud_alloc
from .pgtable import (
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_PSE,
    _PAGE_RW,
    PTE_MASK,
    pgd_index,
    pgd_none,
    pmd_index,
    pud_index,
    pud_none,
)
from .vma import vm_area_struct, vm_operations_struct

if TYPE_CHECKING:
    from .filemap import File
    from .kernel import Kernel
    from .mm import mm_struct, task_struct

HUGETLB_PAGE_ORDER = HPAGE_SHIFT - PAGE_SHIFT
#: Default size of the huge page pool (the hugepages= boot parameter).
DEFAULT_MAX_HUGE_PAGES = 64


class HugePagePool:
    """The hugepage_freelists and counters of mm/hugetlb.c."""

    __slots__ = ("free", "k", "max_huge_pages", "nr_huge_pages")

    def __init__(self, k: Kernel, max_huge_pages: int = DEFAULT_MAX_HUGE_PAGES) -> None:
        self.k = k
        self.max_huge_pages = max_huge_pages
        self.nr_huge_pages = 0
        self.free: list[list[Page]] = [[] for _ in range(k.nodes)]

    def alloc_huge_page(self) -> Page | None:
        """dequeue_huge_page() (local node first), filling the pool on first
        use; the page's count is 1 and its contents are cleared."""
        nid = self.k.current_node()
        lists = [self.free[nid]] + [f for f in self.free if f is not self.free[nid]]
        page = next((f.pop() for f in lists if f), None)
        if page is None and self.nr_huge_pages < self.max_huge_pages:
            page = self.k.alloc.alloc_compound_node(nid, HUGETLB_PAGE_ORDER)
            if page is not None:
                self.nr_huge_pages += 1
        if page is None:
            return None
        page._count = 0  # set_page_count(page, 1)
        self.k.alloc.mem_map[page.pfn + 1].mapping = self.free_huge_page
        for j in range(1 << HUGETLB_PAGE_ORDER):
            self.k.alloc.mem_map[page.pfn + j].data = None  # clear_highpage
        return page

    def free_huge_page(self, page: Page) -> None:
        """The compound destructor: back onto the pool's free list."""
        if page._count != -1:
            raise ModelFailure("mm/hugetlb.c:free_huge_page: BUG_ON(page_count(page))", repr(page))
        page.mapping = None
        self.k.alloc.mem_map[page.pfn + 1].mapping = None
        self.free[page.node].append(page)


# --- arch helpers (arch/i386/mm/hugetlbpage.c) ------------------------------------
def huge_pte_offset(mm: mm_struct, addr: int) -> tuple[array, int] | None:
    """The pmd slot that serves as the huge pte, or None if pud/pmd is missing."""
    e = mm.pgd.data[pgd_index(addr)]
    if pgd_none(e):
        return None
    pud = next_table(mm, e)
    e = pud[pud_index(addr)]
    if pud_none(e):
        return None
    return next_table(mm, e), pmd_index(addr)


def huge_pte_alloc(mm: mm_struct, addr: int) -> tuple[array, int] | None:
    pud = pud_alloc(mm, mm.pgd.data, addr)
    if pud is None:
        return None
    pmd = pmd_alloc(mm, pud, addr)
    if pmd is None:
        return None
    return pmd, pmd_index(addr)


def follow_huge_pmd(mm: mm_struct, address: int, pmd: array, write: int) -> Page | None:
    """The 4K subpage of the huge page a pmd maps."""
    entry = pmd[pmd_index(address)]
    pfn = ((entry & PTE_MASK) >> PAGE_SHIFT) + ((address & HPAGE_MASK_LOW) >> PAGE_SHIFT)
    return mm.k.alloc.mem_map[pfn]


def make_huge_pte(vma: vm_area_struct, page: Page) -> int:
    entry = (page.pfn << PAGE_SHIFT) | vma.vm_page_prot
    if vma.vm_flags & VM_WRITE:
        entry |= _PAGE_RW | _PAGE_DIRTY
    else:
        entry &= ~_PAGE_RW
    return entry | _PAGE_ACCESSED | _PAGE_PSE


# --- mm/hugetlb.c ---------------------------------------------------------------------
def hugetlb_nopage(vma: vm_area_struct, address: int) -> tuple[Page | None, int]:
    """Faults never reach here: do_page_fault/get_user_pages route hugetlb vmas
    elsewhere."""
    raise ModelFailure("mm/hugetlb.c:hugetlb_nopage: BUG()", repr(vma))


hugetlb_vm_ops = vm_operations_struct("hugetlb_vm_ops", hugetlb_nopage)


def hugetlb_prefault(mapping: object, vma: vm_area_struct, current: task_struct) -> int:
    """Map every huge page of a new hugetlb vma, allocating missing ones into
    the file's page cache."""
    from .filemap import add_to_page_cache, find_get_page

    mm = current.mm
    if vma.vm_start & HPAGE_MASK_LOW or vma.vm_end & HPAGE_MASK_LOW:
        raise ModelFailure("mm/hugetlb.c:hugetlb_prefault: BUG_ON(misaligned vma)", repr(vma))
    pool = mm.k.hugetlb_pool
    addr = vma.vm_start
    while addr < vma.vm_end:
        slot = huge_pte_alloc(mm, addr)
        if slot is None:
            return -ENOMEM
        idx = ((addr - vma.vm_start) >> HPAGE_SHIFT) + (vma.vm_pgoff >> HUGETLB_PAGE_ORDER)
        page = find_get_page(mapping, idx)
        if page is None:
            page = pool.alloc_huge_page()
            if page is None:
                return -ENOMEM
            add_to_page_cache(page, mapping, idx)  # cache ref; ours goes to the pte
        spin_lock(mm.page_table_lock)
        mm._file_rss += HPAGE_SIZE // PAGE_SIZE
        pmd, i = slot
        pmd[i] = make_huge_pte(vma, page)  # set_huge_pte_at
        spin_unlock(mm.page_table_lock)
        addr += HPAGE_SIZE
    return 0


def hugetlb_fault(mm: mm_struct, vma: vm_area_struct, address: int, write_access: int) -> int:
    """MINOR if the huge pte exists (a stale TLB entry), else SIGBUS (truncated)."""
    ret = VM_FAULT_SIGBUS
    spin_lock(mm.page_table_lock)
    slot = huge_pte_offset(mm, address)
    if slot is not None and slot[0][slot[1]]:
        ret = VM_FAULT_MINOR
    spin_unlock(mm.page_table_lock)
    return ret


def follow_hugetlb_page(
    mm: mm_struct,
    vma: vm_area_struct,
    pages: list[Page] | None,
    vmas: list[vm_area_struct] | None,
    position: int,
    length: int,
    i: int,
) -> tuple[int, int, int]:
    """get_user_pages for a hugetlb vma: no faulting (prefaulted), a reference
    on each 4K subpage (counted on the head).  Returns (i, position, length)
    -- the C's ``i`` and its ``*position``/``*length`` out-parameters."""
    vaddr = position
    remainder = length
    vpfn = vaddr // PAGE_SIZE
    spin_lock(mm.page_table_lock)
    while vaddr < vma.vm_end and remainder:
        if pages is not None:
            slot = huge_pte_offset(mm, vaddr & ~HPAGE_MASK_LOW)
            if slot is None or not slot[0][slot[1]]:
                remainder = 0  # the hugetlb file might have been truncated
                if not i:
                    i = -EFAULT
                break
            head_pfn = (slot[0][slot[1]] & PTE_MASK) >> PAGE_SHIFT
            page = mm.k.alloc.mem_map[head_pfn + vpfn % (HPAGE_SIZE // PAGE_SIZE)]
            get_page(page)
            pages.append(page)
        if vmas is not None:
            vmas.append(vma)
        vaddr += PAGE_SIZE
        vpfn += 1
        remainder -= 1
        i += 1
    spin_unlock(mm.page_table_lock)
    return i, vaddr, remainder


def copy_hugetlb_page_range(dst: mm_struct, src: mm_struct, vma: vm_area_struct) -> int:
    """fork: share every huge page (a reference each, no rmap)."""
    addr = vma.vm_start
    while addr < vma.vm_end:
        src_slot = huge_pte_offset(src, addr)
        if src_slot is not None:
            dst_slot = huge_pte_alloc(dst, addr)
            if dst_slot is None:
                return -ENOMEM
            spin_lock(dst.page_table_lock)
            spin_lock(src.page_table_lock)
            entry = src_slot[0][src_slot[1]]
            if entry:
                get_page(src.k.alloc.mem_map[(entry & PTE_MASK) >> PAGE_SHIFT])
                dst._file_rss += HPAGE_SIZE // PAGE_SIZE
                dst_slot[0][dst_slot[1]] = entry
            spin_unlock(src.page_table_lock)
            spin_unlock(dst.page_table_lock)
        addr += HPAGE_SIZE
    return 0


def unmap_hugepage_range(vma: vm_area_struct, start: int, end: int) -> None:
    """Clear the huge ptes of a range under page_table_lock (taken here since
    17/21 "unmap_vmas with inner ptlock"), dropping a reference per page."""
    mm = vma.vm_mm
    if start & HPAGE_MASK_LOW or end & HPAGE_MASK_LOW:
        raise ModelFailure("mm/hugetlb.c:unmap_hugepage_range: BUG_ON(misaligned range)")
    spin_lock(mm.page_table_lock)
    update_hiwater_rss(mm)
    address = start
    while address < end:
        slot = huge_pte_offset(mm, address)
        if slot is not None:
            pmd, i = slot
            pte = pmd[i]
            pmd[i] = 0  # huge_ptep_get_and_clear
            if pte:
                put_page(mm.k.alloc, mm.k.alloc.mem_map[(pte & PTE_MASK) >> PAGE_SHIFT])
                mm._file_rss -= HPAGE_SIZE // PAGE_SIZE
        address += HPAGE_SIZE
    spin_unlock(mm.page_table_lock)


# --- fs/hugetlbfs/inode.c -----------------------------------------------------------------
def hugetlbfs_file_mmap(file: File, vma: vm_area_struct) -> int:
    """Only huge-aligned mappings of a huge-aligned offset; no private
    writable mappings (hugetlb COW came in 2.6.16); a read-only mapping may
    not reach past EOF; VM_HUGETLB|VM_RESERVED; prefault at once."""
    from .constants import VM_MAYSHARE

    if vma.vm_start & HPAGE_MASK_LOW or vma.vm_end & HPAGE_MASK_LOW:
        return -EINVAL
    if vma.vm_end - vma.vm_start < HPAGE_SIZE:
        return -EINVAL
    if vma.vm_pgoff & ((HPAGE_SIZE >> PAGE_SHIFT) - 1):
        return -EINVAL
    if (vma.vm_flags & (VM_MAYSHARE | VM_WRITE)) == VM_WRITE:
        return -EINVAL
    length = (vma.vm_end - vma.vm_start) + (vma.vm_pgoff << PAGE_SHIFT)
    if not vma.vm_flags & VM_WRITE and length > file.i_size:
        return -ENOMEM
    vma.vm_flags |= VM_HUGETLB | VM_RESERVED
    vma.vm_ops = hugetlb_vm_ops
    ret = hugetlb_prefault(file.mapping, vma, vma.vm_mm.k.current)
    if ret == 0 and file.i_size < length:
        file.i_size = length
    return ret


def hugetlb_get_unmapped_area(mm: mm_struct, addr: int, length: int, flags: int) -> int:
    """fs/hugetlbfs/inode.c: a huge-aligned hole, searched bottom-up."""
    from .mmap import find_vma

    if length & HPAGE_MASK_LOW:
        return -EINVAL
    if length > TASK_SIZE:
        return -ENOMEM
    if addr:
        addr = (addr + HPAGE_MASK_LOW) & ~HPAGE_MASK_LOW
        vma = find_vma(mm, addr)
        if TASK_SIZE - length >= addr and (vma is None or addr + length <= vma.vm_start):
            return addr
    start_addr = mm.free_area_cache
    if length <= mm.cached_hole_size:
        start_addr = TASK_UNMAPPED_BASE
    while True:  # full_search:
        addr = (start_addr + HPAGE_MASK_LOW) & ~HPAGE_MASK_LOW
        vma = find_vma(mm, addr)
        while True:
            if TASK_SIZE - length < addr:
                if start_addr != TASK_UNMAPPED_BASE:
                    start_addr = TASK_UNMAPPED_BASE
                    break
                return -ENOMEM
            if vma is None or addr + length <= vma.vm_start:
                return addr
            addr = (vma.vm_end + HPAGE_MASK_LOW) & ~HPAGE_MASK_LOW
            vma = vma.vm_next
