"""Reverse-mapping counters (mm/rmap.c, Linux 2.6.15).

Only what is observable through ``struct page`` is modelled: ``_mapcount``,
``mapping``/``index`` for anonymous pages, and ``anon_vma`` existence (it
decides whether fork copies ptes and whether a core dump includes a vma).
Reverse walks (try_to_unmap) are not needed: nothing is reclaimed.

``_mapcount`` is an atomic_t that ptes of *different* mms (under different
pte locks) change: a COW-shared anonymous page, a page-cache page, the zero
page.  Its readers (numa_maps, do_wp_page's can_share_swap_page) see those
changes at once, so under an explorer the changes a reader can see, and
every such read, are declared accesses to ``mapcount:PFN``.
"""

from __future__ import annotations

from ..errors import ModelFailure
from .constants import PAGE_SHIFT, ULONG_MAX
from .page import Page, PG_anon, PG_anon_exclusive
from .vma import anon_vma, vm_area_struct


def anon_vma_prepare(vma: vm_area_struct) -> int:
    """Give the vma an anon_vma, reusing a mergeable neighbour's (0, or -ENOMEM)."""
    from .mmap import find_mergeable_anon_vma  # mm/mmap.c, which imports this file

    if vma.anon_vma is None:
        vma.anon_vma = find_mergeable_anon_vma(vma) or anon_vma()
    return 0


def mapcount_access(page: Page, write: int) -> None:
    """Declare a read or a change of ``page``'s mapcount to the explorer.
    An increment is declared when another pte maps the page already
    (``_mapcount >= 0``): only then can a reader reach the page; a decrement
    always, as numa_maps reads the mapcount after dropping the pte lock, so
    it may read that of a page the pte no longer maps."""
    k = page._allocator.k
    if k is not None and k.sched is not None:
        k.sched.access("page_mapcount", ((f"mapcount:{page.pfn}", write),))


def page_add_anon_rmap(page: Page, vma: vm_area_struct, address: int) -> None:
    if vma.anon_vma is None:
        raise ModelFailure("mm/rmap.c:page_add_anon_rmap: BUG_ON(!anon_vma)", repr(vma))
    if page._mapcount >= 0:
        mapcount_access(page, 1)
    page._mapcount += 1
    if page._mapcount == 0:
        page.mapping = vma.anon_vma
        page.flags |= PG_anon
        # linear_page_index(), written in place (pgoff_t arithmetic wraps)
        page.index = (((address - vma.vm_start) >> PAGE_SHIFT) + vma.vm_pgoff) & ULONG_MAX
        # Every caller maps a page it just allocated, page_add_new_anon_rmap's
        # job in later kernels, which since 6c287605fd56 (v5.18) marks it
        # exclusive to this mm.
        if vma.vm_mm.k.semantics.page_anon_exclusive:
            page.flags |= PG_anon_exclusive


def page_add_file_rmap(page: Page) -> None:
    if page.flags & PG_anon:
        raise ModelFailure("mm/rmap.c:page_add_file_rmap: BUG_ON(PageAnon(page))", repr(page))
    if page._mapcount >= 0:
        mapcount_access(page, 1)
    page._mapcount += 1


def page_remove_rmap(page: Page) -> None:
    mapcount_access(page, 1)  # a reader may hold the page from before the unmap
    page._mapcount -= 1
    if page._mapcount < -1:
        raise ModelFailure(
            "mm/rmap.c:page_remove_rmap: BUG_ON(page_mapcount(page) < 0)", repr(page)
        )
