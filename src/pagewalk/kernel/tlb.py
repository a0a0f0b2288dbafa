"""struct mmu_gather (include/asm-generic/tlb.h, Linux 2.6.15).

Zapped pages are not freed while their ptes may still sit in another CPU's
TLB: ``tlb_remove_page`` gathers them and ``tlb_finish_mmu`` releases the
gathered references after the flush.  pagewalk has no TLB to flush, but keeps
the gather so that the moment a zapped page is really freed is the kernel's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .page import Page, put_page

if TYPE_CHECKING:
    from .mm import mm_struct

#: FREE_PTE_NR on x86-64 SMP: pages gathered before a forced flush.
FREE_PTE_NR = 506


class mmu_gather:
    __slots__ = ("fullmm", "mm", "need_flush", "pages")

    def __init__(self, mm: mm_struct, fullmm: int) -> None:
        self.mm = mm
        self.fullmm = fullmm
        self.need_flush = 0
        self.pages: list[Page] = []


def tlb_gather_mmu(mm: mm_struct, full_mm_flush: int) -> mmu_gather:
    return mmu_gather(mm, full_mm_flush)


def tlb_flush_mmu(tlb: mmu_gather) -> None:
    """Flush, then free_pages_and_swap_cache() on what was gathered."""
    if not tlb.need_flush:
        return
    tlb.need_flush = 0
    alloc = tlb.mm.k.alloc
    pages = tlb.pages
    tlb.pages = []
    for page in pages:
        put_page(alloc, page)


def tlb_remove_page(tlb: mmu_gather, page: Page) -> None:
    tlb.need_flush = 1
    tlb.pages.append(page)
    if len(tlb.pages) >= FREE_PTE_NR:
        tlb_flush_mmu(tlb)


def tlb_finish_mmu(tlb: mmu_gather, start: int, end: int) -> None:
    tlb_flush_mmu(tlb)
