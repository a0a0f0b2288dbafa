"""mm/mprotect.c (Linux 2.6.15): sys_mprotect, mprotect_fixup and
change_protection.  Present ptes keep their frame, accessed and dirty bits and
take the new protection; a private mapping made writable still has read-only
ptes (PAGE_COPY), so later writes COW through do_wp_page."""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

from .constants import (
    EACCES,
    EINVAL,
    ENOMEM,
    PAGE_MASK_LOW,
    PAGE_SHIFT,
    PROT_EXEC,
    PROT_GROWSDOWN,
    PROT_GROWSUP,
    PROT_READ,
    PROT_SEM,
    PROT_WRITE,
    VM_ACCOUNT,
    VM_EXEC,
    VM_GROWSDOWN,
    VM_GROWSUP,
    VM_HUGETLB,
    VM_LOCKED,
    VM_READ,
    VM_RESERVED,
    VM_SHARED,
    VM_WRITE,
)
from .locks import down_write, up_write
from .memory import BUG_ON, make_pages_present, pte_maps_exclusive_anon
from .mmap import PAGE_ALIGN, calc_vm_prot_bits, find_vma_prev, split_vma, vma_merge
from .pgalloc import next_table, pte_offset_map_lock, pte_unmap_unlock
from .pgtable import (
    _PAGE_RW,
    PTE_PRESENT_MASK,
    pgd_addr_end,
    pgd_bad,
    pgd_index,
    pgd_none,
    pmd_addr_end,
    pmd_bad,
    pmd_index,
    pmd_none,
    protection_map,
    pte_index,
    pte_modify,
    pud_addr_end,
    pud_bad,
    pud_index,
    pud_none,
)
from .vma import is_vm_hugetlb_page, vm_area_struct

if TYPE_CHECKING:
    from .mm import task_struct


def change_pte_range(
    mm: object, pmd: array, addr: int, end: int, newprot: int, try_writable: bool = False
) -> None:
    """``try_writable``: 64fe24a3e05e's MM_CP_TRY_CHANGE_WRITABLE."""
    pte, ptl = pte_offset_map_lock(mm, pmd, addr)
    first = pte_index(addr)
    for i in range(first, first + ((end - addr) >> PAGE_SHIFT)):
        old = pte[i]
        if old & PTE_PRESENT_MASK:  # pte_present
            pte[i] = 0  # ptep_get_and_clear
            new = pte_modify(old, newprot)
            if try_writable and not new & _PAGE_RW and _can_change_pte_writable(mm, new):
                new |= _PAGE_RW  # pte_mkwrite
            pte[i] = new  # set_pte_at
    pte_unmap_unlock(pte, ptl)


def _can_change_pte_writable(mm: object, pte: int) -> bool:
    """can_change_pte_writable() for a private mapping (64fe24a3e05e): only an
    exclusive anonymous page, which the write fault would reuse anyway
    (soft-dirty and uffd-wp are not modelled)."""
    return pte_maps_exclusive_anon(mm, pte)


def change_pmd_range(
    mm: object, pud: array, addr: int, end: int, newprot: int, try_writable: bool = False
) -> None:
    pmd = next_table(mm, pud[pud_index(addr)])  # pmd_offset
    while True:
        nxt = pmd_addr_end(addr, end)
        e = pmd[pmd_index(addr)]
        if not pmd_none(e) and not pmd_bad(e):
            change_pte_range(mm, pmd, addr, nxt, newprot, try_writable)
        addr = nxt
        if addr == end:
            return


def change_pud_range(
    mm: object, pgd: array, addr: int, end: int, newprot: int, try_writable: bool = False
) -> None:
    pud = next_table(mm, pgd[pgd_index(addr)])  # pud_offset
    while True:
        nxt = pud_addr_end(addr, end)
        e = pud[pud_index(addr)]
        if not pud_none(e) and not pud_bad(e):
            change_pmd_range(mm, pud, addr, nxt, newprot, try_writable)
        addr = nxt
        if addr == end:
            return


def change_protection(
    vma: vm_area_struct, addr: int, end: int, newprot: int, try_writable: bool = False
) -> None:
    """mm/mprotect.c change_protection(): every present pte of [addr, end)
    takes ``newprot`` (pte_modify keeps frame, accessed and dirty); with
    ``try_writable`` (64fe24a3e05e) exclusive anonymous pages also become
    writable."""
    mm = vma.vm_mm
    BUG_ON(addr >= end, "mm/mprotect.c:change_protection: BUG_ON(addr >= end)")
    pgd = mm.pgd.data
    while True:
        nxt = pgd_addr_end(addr, end)
        e = pgd[pgd_index(addr)]
        if not pgd_none(e) and not pgd_bad(e):
            change_pud_range(mm, pgd, addr, nxt, newprot, try_writable)
        addr = nxt
        if addr == end:
            return


def mprotect_fixup(
    vma: vm_area_struct, prev: vm_area_struct | None, start: int, end: int, newflags: int
) -> tuple[int, vm_area_struct | None]:
    """mm/mprotect.c mprotect_fixup() (2.6.15): set the flags on [start,
    end), merging or splitting vmas, and change the ptes.  Returns (error,
    new prev).  Making a private mapping writable accounts it (VM_ACCOUNT);
    with ``mprotect_unaccounts_unfaulted`` (v6.7) making an anonymous one
    read-only unaccounts it while it has no anon_vma.  With
    ``mprotect_cows_locked`` (36f881883c57) a private locked range made
    writable is write-faulted in at once, so that it stays locked."""
    mm = vma.vm_mm
    oldflags = vma.vm_flags
    if newflags == oldflags:
        return 0, vma
    if newflags & VM_WRITE:
        # b5810039: private writable VM_RESERVED mappings are deprecated
        if oldflags & VM_RESERVED:
            return -EACCES, prev
        if not oldflags & (VM_ACCOUNT | VM_WRITE | VM_SHARED | VM_HUGETLB):
            newflags |= VM_ACCOUNT
    elif (
        mm.k.semantics.mprotect_unaccounts_unfaulted
        and oldflags & VM_ACCOUNT
        and vma.vm_ops is None  # vma_is_anonymous
        and vma.anon_vma is None
    ):
        newflags &= ~VM_ACCOUNT  # nothing faulted in to stay accounted for
    newprot = protection_map[newflags & 0xF]
    pgoff = vma.vm_pgoff + ((start - vma.vm_start) >> PAGE_SHIFT)
    merged = vma_merge(mm, prev, start, end, newflags, vma.anon_vma, vma.vm_file, pgoff)
    if merged is not None:
        vma = merged
    else:
        if start != vma.vm_start:
            err = split_vma(mm, vma, start, 1)
            if err:
                return err, vma
        if end != vma.vm_end:
            err = split_vma(mm, vma, end, 0)
            if err:
                return err, vma
    vma.vm_flags = newflags
    vma.vm_page_prot = newprot
    # 64fe24a3e05e: vma_wants_manual_pte_write_upgrade() -- a private writable
    # mapping (a shared one's vm_page_prot is writable already: no writenotify)
    try_writable = bool(
        vma.vm_mm.k.semantics.mprotect_exclusive_writable
        and newflags & VM_WRITE
        and not newflags & VM_SHARED
    )
    change_protection(vma, start, end, newprot, try_writable)
    # 36f881883c57: "Private VM_LOCKED VMA becoming writable: trigger COW to
    # avoid major fault on access" (populate_vma_page_range)
    if (
        mm.k.semantics.mprotect_cows_locked
        and oldflags & (VM_WRITE | VM_SHARED | VM_LOCKED) == VM_LOCKED
        and newflags & VM_WRITE
    ):
        make_pages_present(start, end, mm.k.current)
    return 0, vma


def sys_mprotect(current: task_struct, start: int, length: int, prot: int) -> int:
    grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP)
    prot &= ~(PROT_GROWSDOWN | PROT_GROWSUP)
    if grows == PROT_GROWSDOWN | PROT_GROWSUP:  # can't be both
        return -EINVAL
    if start & PAGE_MASK_LOW:
        return -EINVAL
    if not length:
        return 0
    length = PAGE_ALIGN(length)
    end = start + length
    if end <= start:
        return -ENOMEM
    if prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM):
        return -EINVAL
    vm_flags = calc_vm_prot_bits(prot)
    mm = current.mm
    down_write(mm.mmap_sem)
    try:
        return _mprotect_locked(mm, start, end, vm_flags, grows)
    finally:
        up_write(mm.mmap_sem)


def _mprotect_locked(mm: object, start: int, end: int, vm_flags: int, grows: int) -> int:
    vma, prev = find_vma_prev(mm, start)
    if vma is None:
        return -ENOMEM
    if grows & PROT_GROWSDOWN:  # extend down to the start of the stack vma
        if vma.vm_start >= end:
            return -ENOMEM
        start = vma.vm_start
        if not vma.vm_flags & VM_GROWSDOWN:
            return -EINVAL
    else:
        if vma.vm_start > start:
            return -ENOMEM
        if grows & PROT_GROWSUP:
            end = vma.vm_end
            if not vma.vm_flags & VM_GROWSUP:
                return -EINVAL
    if start > vma.vm_start:
        prev = vma
    nstart = start
    while True:
        if is_vm_hugetlb_page(vma):
            return -EACCES
        newflags = vm_flags | (vma.vm_flags & ~(VM_READ | VM_WRITE | VM_EXEC))
        if (newflags & ~(newflags >> 4)) & 0xF:
            return -EACCES  # a VM_xxx without its VM_MAYxxx
        tmp = min(vma.vm_end, end)
        err, prev = mprotect_fixup(vma, prev, nstart, tmp, newflags)
        if err:
            return err
        nstart = tmp
        if nstart < prev.vm_end:
            nstart = prev.vm_end
        if nstart >= end:
            return 0
        vma = prev.vm_next
        if vma is None or vma.vm_start != nstart:
            return -ENOMEM
