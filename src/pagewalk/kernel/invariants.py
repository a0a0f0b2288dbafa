"""Invariants that must hold between operations (and, for the counting ones,
whenever no lock is held):

1. every page's count equals its pte mappings + its page-cache reference +
   pins held by users (gup) + 1 for boot-reserved pages;
2. every page's mapcount equals the ptes mapping it;
3. each mm's file_rss/anon_rss equal the present ptes mapping file/anon pages;
4. no lock is held;
5. every page-table page is reachable from exactly one live mm, and a freed
   mm reaches none (no leaked or dangling tables); nr_ptes counts its pte pages.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from ..errors import ModelFailure
from .constants import PAGE_SHIFT
from .inspect import table_walk, used_entries
from .locks import is_locked
from .page import PG_anon, PG_compound, PG_pgtable, PG_reserved
from .pgtable import PTE_MASK, PTE_PRESENT_MASK

if TYPE_CHECKING:
    from .kernel import Kernel


def live_mms(k: Kernel) -> list:
    """Every mm some task still uses: a process's, or one its threads keep
    alive after the leader has exited."""
    mms = {id(t.mm): t.mm for t in (*k.tasks.values(), *k.threads) if t.mm is not None}
    return list(mms.values())


def check_invariants(k: Kernel, pins: Counter | None = None) -> None:
    """Raise ModelFailure naming the first broken invariant."""
    pins = pins if pins is not None else k.pins
    mem_map = k.alloc.mem_map
    maps: dict[int, int] = {}  # pfn -> ptes (or huge pmds) mapping it
    tables: dict[int, int] = {}  # pfn -> live mms reaching it as a table
    mms = live_mms(k)
    for mm in mms:
        _check_mm(k, mm, maps, tables)
    cached: dict[int, int] = {}
    for f in _all_files(k, mms):
        for page in f.mapping.page_tree.values():
            cached[page.pfn] = cached.get(page.pfn, 0) + 1
    for pfn, n in list(pins.items()):  # pins on 4K subpages count on the head
        page = mem_map[pfn]
        if page.flags & PG_compound and page.private is not page:
            pins = pins.copy() if pins is k.pins else pins
            pins[page.private.pfn] += n
            del pins[pfn]
    for page in mem_map:
        pfn = page.pfn
        mapped, in_cache, pinned = maps.get(pfn, 0), cached.get(pfn, 0), pins.get(pfn, 0)
        if page.flags & PG_compound:
            if page.private is page:
                _check_huge_page(page, mapped, in_cache, pinned)
            continue
        _check_page(page, mapped, in_cache, pinned, tables.get(pfn, 0))


def _check_mm(k: Kernel, mm: object, maps: dict[int, int], tables: dict[int, int]) -> None:
    """One mm's locks, rss counters and nr_ptes, from one walk of its tables;
    counts the pages its ptes map and the tables it reaches."""
    mem_map = k.alloc.mem_map
    _check_locks_of(mm)
    _raws, upper, pte_tables, huge = table_walk(mem_map, mm)
    _check_pte_locks(k, pte_tables)
    for pfn in upper:
        tables[pfn] = tables.get(pfn, 0) + 1
    for pfn in pte_tables:
        tables[pfn] = tables.get(pfn, 0) + 1
    file_rss = anon_rss = 0
    # a13ea5b75964: a special zero pfn is neither counted nor rmap'd nor rss
    special = k.zero_page.pfn if k.semantics.zero_page_special else -1
    for head_pfn in huge:
        _check_huge_pmd_target(mm, mem_map[head_pfn])
        maps[head_pfn] = maps.get(head_pfn, 0) + 1
        file_rss += 512
    for table_pfn in pte_tables:
        table = mem_map[table_pfn].data
        for n in used_entries(table):
            pte = table[n]
            if not pte & PTE_PRESENT_MASK:
                continue
            pfn = (pte & PTE_MASK) >> PAGE_SHIFT
            if pfn == special:
                continue
            maps[pfn] = maps.get(pfn, 0) + 1
            if mem_map[pfn].flags & PG_anon:
                anon_rss += 1
            else:
                file_rss += 1
    if (mm._file_rss, mm._anon_rss) != (file_rss, anon_rss):
        raise ModelFailure(
            "invariant: rss counters",
            f"{mm}: file_rss={mm._file_rss} anon_rss={mm._anon_rss}, "
            f"ptes show file={file_rss} anon={anon_rss}",
        )
    if mm.nr_ptes != len(pte_tables):
        raise ModelFailure(
            "invariant: nr_ptes",
            f"{mm}: nr_ptes={mm.nr_ptes}, {len(pte_tables)} pte pages reachable",
        )
    tables[mm.pgd.pfn] = tables.get(mm.pgd.pfn, 0) + 1


def _all_files(k: Kernel, mms: list) -> list:
    files = dict.fromkeys(k.files.values())
    for mm in mms:
        for vma in mm.vmas():
            if vma.vm_file is not None:
                files[vma.vm_file] = None
    return list(files)


def _check_page(page: object, mapped: int, cached: int, pinned: int, tabled: int) -> None:
    count = page._count + 1
    if page.flags & PG_pgtable:
        if count and tabled != 1:
            raise ModelFailure(
                "invariant: page tables", f"{page!r} is reachable from {tabled} live mms (want 1)"
            )
        return
    if tabled:
        raise ModelFailure(
            "invariant: page tables",
            f"{page!r} is a table of a live mm but is not a page-table page",
        )
    if page._mapcount + 1 != mapped:
        raise ModelFailure(
            "invariant: mapcount",
            f"{page!r}: mapcount {page._mapcount + 1}, mapped by {mapped} ptes",
        )
    if count == 0 and not mapped and not cached and not pinned:
        return
    want = mapped + cached + pinned + (1 if page.flags & PG_reserved else 0)
    if count != want:
        raise ModelFailure(
            "invariant: page count",
            f"{page!r}: count {count}, want {want} = {mapped} ptes + "
            f"{cached} page cache + {pinned} pins"
            + (" + 1 reserved" if page.flags & PG_reserved else ""),
        )


def _check_huge_pmd_target(mm: object, page: object) -> None:
    """A huge pmd maps the head of a compound page.  2.6.15 breaks this itself:
    MADV_WILLNEED leaves 4 KiB pages in a hugetlbfs page cache, and
    hugetlb_prefault maps what it finds there (semantics.hugetlbfs_without_readpage)."""
    if not (page.flags & PG_compound and page.private is page):
        raise ModelFailure(
            "invariant: huge pmd", f"{mm}: a huge pmd maps {page!r}, not a huge page's head"
        )


def _check_huge_page(page: object, mapped: int, cached: int, pinned: int) -> None:
    """hugetlb pages: no rmap in this era, so only the count is checked."""
    count = page._count + 1
    if count == 0 and not (mapped or cached or pinned):
        return
    if count != mapped + cached + pinned:
        raise ModelFailure(
            "invariant: page count",
            f"huge {page!r}: count {count}, want {mapped} huge ptes + "
            f"{cached} page cache + {pinned} pins",
        )


def _check_locks_of(mm: object) -> None:
    for lock in (mm.mmap_sem, mm.page_table_lock):
        if is_locked(lock):
            raise ModelFailure("invariant: locks", f"{lock.name} is held between operations")


def _check_pte_locks(k: Kernel, pte_tables: list[int]) -> None:
    if k.split_ptlock:
        for pfn in pte_tables:
            ptl = k.alloc.mem_map[pfn].private
            if ptl is None or is_locked(ptl):
                raise ModelFailure(
                    "invariant: locks", f"pte lock of table pfn {pfn} is missing or held"
                )
