"""The CPU side of a user memory access (x86-64 hardware page walk).

A load or store walks pgd -> pud -> pmd -> pte as the MMU does: every level
must be present (and, as all table entries carry _PAGE_USER|_PAGE_RW, nothing
else can refuse); the pte must be present -- a PROT_NONE pte is not -- user,
and writable for a store.  The MMU then sets the accessed bit (and dirty for
a store) in the pte, and the access proceeds.  Otherwise the CPU raises a
page fault with PF_USER, PF_WRITE and PF_PROT (pte was present) and retries
the access after do_page_fault returns.  The TLB is not modelled: every
access sees the current page tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ModelFailure
from .constants import (
    PAGE_SHIFT,
    PAGE_SIZE,
    PGDIR_SHIFT,
    PMD_SHIFT,
    PTRS_INDEX_MASK,
    PUD_SHIFT,
    TASK_SIZE,
)
from .fault import PF_PROT, PF_USER, PF_WRITE, SIGSEGV, do_page_fault
from .page import Page, page_read, page_write
from .pgtable import (
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_PRESENT,
    _PAGE_PSE,
    _PAGE_RW,
    _PAGE_USER,
    PTE_MASK,
)

if TYPE_CHECKING:
    from .mm import mm_struct, task_struct

#: Retries of one access before the model calls it a livelock.
MAX_FAULT_RETRIES = 64


def hw_translate(mm: mm_struct, address: int, write: bool) -> tuple[Page | None, int]:
    """Walk like the MMU.  Returns (page, 0) on success, with A/D bits set in
    the pte, or (None, error_code) for the fault the CPU would raise.

    Like the CPU's paging-structure caches, ``mm.pde_cache`` remembers the
    pte table a walk reached for each 2 MiB of address space, so the next
    access there skips the pgd, pud and pmd; unlike them (which the kernel
    flushes in tlb_finish_mmu after freeing tables) it is emptied the moment
    a pmd entry stops pointing to its table, so it never changes what an
    access sees.
    """
    table = mm.pde_cache.get(address >> PMD_SHIFT)
    if table is None:
        mem_map = mm.k.alloc.mem_map
        missing = PF_USER | (PF_WRITE if write else 0)
        pgd_e = mm.pgd.data[(address >> PGDIR_SHIFT) & PTRS_INDEX_MASK]
        if not pgd_e & _PAGE_PRESENT:
            return None, missing
        pud_e = mem_map[(pgd_e & PTE_MASK) >> PAGE_SHIFT].data[
            (address >> PUD_SHIFT) & PTRS_INDEX_MASK
        ]
        if not pud_e & _PAGE_PRESENT:
            return None, missing
        pmd_e = mem_map[(pud_e & PTE_MASK) >> PAGE_SHIFT].data[
            (address >> PMD_SHIFT) & PTRS_INDEX_MASK
        ]
        if not pmd_e & _PAGE_PRESENT:
            return None, missing
        if pmd_e & _PAGE_PSE:  # a 2MB page
            need = _PAGE_PRESENT | _PAGE_USER | (_PAGE_RW if write else 0)
            if pmd_e & need != need:
                return None, missing | PF_PROT
            return mem_map[
                ((pmd_e & PTE_MASK) >> PAGE_SHIFT) + ((address >> PAGE_SHIFT) & PTRS_INDEX_MASK)
            ], 0
        table = mm.pde_cache[address >> PMD_SHIFT] = mem_map[(pmd_e & PTE_MASK) >> PAGE_SHIFT].data
    i = (address >> PAGE_SHIFT) & PTRS_INDEX_MASK
    pte = table[i]
    if write:
        if pte & _USER_RW != _USER_RW:
            return None, PF_USER | PF_WRITE | (PF_PROT if pte & _PAGE_PRESENT else 0)
        if pte & _ACCESSED_DIRTY != _ACCESSED_DIRTY:
            table[i] = pte | _ACCESSED_DIRTY  # the hardware's atomic A/D update
    else:
        if pte & _USER != _USER:
            return None, PF_USER | (PF_PROT if pte & _PAGE_PRESENT else 0)
        if not pte & _PAGE_ACCESSED:
            table[i] = pte | _PAGE_ACCESSED
    return mm.k.alloc.mem_map[(pte & PTE_MASK) >> PAGE_SHIFT], 0


_USER = _PAGE_PRESENT | _PAGE_USER
_USER_RW = _USER | _PAGE_RW
_ACCESSED_DIRTY = _PAGE_ACCESSED | _PAGE_DIRTY


def _mmu_point(mm: mm_struct, address: int, write: bool) -> None:
    """A schedule point before a user access: the MMU reads (and may set A/D
    bits in) the pte without its lock, then touches the page's bytes."""
    from .inspect import lookup_pte

    ptl, page = lookup_pte(mm, address)
    footprint = ((ptl.name, 0),) if page is None else ((ptl.name, 0), (page.pfn, int(write)))
    mm.k.sched.access("user store" if write else "user load", footprint)


def _outside_user_space(tsk: task_struct, address: int, write: bool) -> tuple[Page | None, str]:
    """An address at or above TASK_SIZE: a non-canonical one raises #GP and a
    kernel-half one faults on a supervisor page -- SIGSEGV either way -- except
    loads from the vsyscall page, which is mapped user-readable."""
    k = tsk.mm.k
    if not write and k.in_gate_area(tsk, address):
        page = k.gate_page(address)
        if page is not None:
            return page, ""
    return None, SIGSEGV


def user_access(
    tsk: task_struct, address: int, length: int, write: bool, data: bytes | None
) -> tuple[bytearray | None, int, str | None]:
    """A user-mode load (``data`` None) or store of ``length`` bytes, page by
    page through the MMU: (bytes read or None for a store, bytes done,
    signal or None)."""
    mm = tsk.mm
    out = None if write else bytearray()
    done = 0
    retries = 0
    while done < length:
        addr = address + done
        if addr >= TASK_SIZE:
            page, sig = _outside_user_space(tsk, addr, write)
            if page is None:
                return out, done, sig
            error_code = 0
        else:
            if mm.k.sched is not None and mm.k.sched.races:
                _mmu_point(mm, addr, write)
            page, error_code = hw_translate(mm, addr, write)
        if page is None:
            sig = do_page_fault(tsk, addr, error_code)
            if sig is not None:
                return out, done, sig
            retries += 1
            if retries > MAX_FAULT_RETRIES:
                raise ModelFailure(
                    "mmu: fault loop", f"{tsk} at {addr:#x}: faults never make the access possible"
                )
            continue
        retries = 0
        off = addr & (PAGE_SIZE - 1)
        n = length - done
        if n > PAGE_SIZE - off:
            n = PAGE_SIZE - off
        if write:
            page_write(page, off, data if n == length else data[done : done + n])
        else:
            out += page_read(page, off, n)
        done += n
    return out, done, None
