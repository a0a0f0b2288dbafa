"""Reverse-mapping counters (mm/rmap.c, Linux 2.6.15).

Only what is observable through ``struct page`` is modelled: ``_mapcount``,
``mapping``/``index`` for anonymous pages, and ``anon_vma`` existence (it
decides whether fork copies ptes and whether a core dump includes a vma).
Reverse walks (try_to_unmap) are not needed: nothing is reclaimed.
"""

from __future__ import annotations

from ..errors import ModelFailure
from .constants import ULONG_MAX
from .page import Page, PG_anon
from .vma import anon_vma, vm_area_struct


def anon_vma_prepare(vma: vm_area_struct) -> int:
    """Give the vma an anon_vma, reusing a mergeable neighbour's (0, or -ENOMEM)."""
    if vma.anon_vma is None:
        vma.anon_vma = find_mergeable_anon_vma(vma) or anon_vma()
    return 0


def find_mergeable_anon_vma(vma: vm_area_struct) -> anon_vma | None:
    """mm/mmap.c find_mergeable_anon_vma(): an adjacent vma whose anon_vma
    could later be shared if the two merged (same flags, contiguous)."""
    mm = vma.vm_mm
    nxt = vma.vm_next
    if (
        nxt is not None
        and nxt.vm_start == vma.vm_end
        and nxt.anon_vma is not None
        and _compatible(vma, nxt)
    ):
        return nxt.anon_vma
    prev = mm.find_vma_prev_of(vma)
    if (
        prev is not None
        and prev.vm_end == vma.vm_start
        and prev.anon_vma is not None
        and _compatible(prev, vma)
    ):
        return prev.anon_vma
    return None


def _compatible(a: vm_area_struct, b: vm_area_struct) -> bool:
    from .constants import VM_EXEC, VM_READ, VM_WRITE

    mask = ~(VM_READ | VM_WRITE | VM_EXEC)
    return (
        a.vm_file is b.vm_file
        and (a.vm_flags & mask) == (b.vm_flags & mask)
        and a.vm_pgoff + ((a.vm_end - a.vm_start) >> 12) == b.vm_pgoff
    )


def page_add_anon_rmap(page: Page, vma: vm_area_struct, address: int) -> None:
    if vma.anon_vma is None:
        raise ModelFailure("mm/rmap.c:page_add_anon_rmap: BUG_ON(!anon_vma)", repr(vma))
    page._mapcount += 1
    if page._mapcount == 0:
        page.mapping = vma.anon_vma
        page.flags |= PG_anon
        # linear_page_index(), written in place (pgoff_t arithmetic wraps)
        page.index = (((address - vma.vm_start) >> 12) + vma.vm_pgoff) & ULONG_MAX


def page_add_file_rmap(page: Page) -> None:
    if page.flags & PG_anon:
        raise ModelFailure("mm/rmap.c:page_add_file_rmap: BUG_ON(PageAnon(page))", repr(page))
    page._mapcount += 1


def page_dup_rmap(page: Page) -> None:
    """include/linux/rmap.h: fork's plain increment."""
    page._mapcount += 1


def page_remove_rmap(page: Page) -> None:
    page._mapcount -= 1
    if page._mapcount < -1:
        raise ModelFailure(
            "mm/rmap.c:page_remove_rmap: BUG_ON(page_mapcount(page) < 0)", repr(page)
        )
