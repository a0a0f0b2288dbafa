"""follow_page(mm, address, flags) as deceb6cd leaves it (mm/memory.c).

Every FOLL_* combination that changes the outcome: FOLL_GET takes a reference
under the pte lock, FOLL_TOUCH marks the page accessed (and dirty with
FOLL_WRITE), FOLL_WRITE needs a writable pte, FOLL_ANON answers a missing
pgd/pud/pmd with ZERO_PAGE (and BUG_ONs with FOLL_WRITE).  follow_page takes
and drops the pte lock itself (pte_offset_map_lock / pte_unmap_unlock).
"""

from __future__ import annotations

import pytest

from pagewalk import Kernel
from pagewalk.errors import ModelFailure
from pagewalk.kernel.constants import (
    FOLL_ANON,
    FOLL_GET,
    FOLL_TOUCH,
    FOLL_WRITE,
    PAGE_SIZE,
    PGDIR_SIZE,
    PMD_SIZE,
    PUD_SIZE,
)
from pagewalk.kernel.inspect import walk_tables
from pagewalk.kernel.locks import is_locked
from pagewalk.kernel.memory import follow_page
from pagewalk.kernel.page import (
    PageActive,
    PageDirty,
    PageReferenced,
    page_count,
    page_mapcount,
    put_page,
)
from pagewalk.kernel.pgtable import _PAGE_DIRTY, _PAGE_RW

#: A 2 GiB anonymous area is enough to reach a new pmd, pud (and, by
#: address arithmetic, pgd) slot; mmap itself allocates nothing.
BIG = 2 << 30


def follow(k: Kernel, p, addr: int, flags: int):
    """Call follow_page as get_user_pages does: with ``p`` current."""
    with k.running(p):
        return follow_page(p.mm, addr, flags)


def release(k: Kernel, page) -> None:
    """Drop a reference follow_page took with FOLL_GET."""
    put_page(k.alloc, page)


def pte_page_lock(k: Kernel, p, addr: int):
    """The split pte lock of the pte page covering addr."""
    for level, base, pfn in walk_tables(k, p.mm):
        if level == 1 and base <= addr < base + PMD_SIZE:
            return k.alloc.mem_map[pfn].private
    raise AssertionError("no pte page")


# --- FOLL_GET -----------------------------------------------------------------
def test_foll_get_takes_a_reference_on_the_mapped_page(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"data")
    page = k.page(p, a)
    assert page_count(page) == 1

    got = follow(k, p, a, FOLL_GET)

    assert got is page
    assert page_count(page) == 2  # pte reference + ours
    assert page_mapcount(page) == 1  # follow_page never maps
    release(k, got)
    assert page_count(page) == 1


def test_without_foll_get_no_reference_is_taken(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"data")
    page = k.page(p, a)

    assert follow(k, p, a, FOLL_TOUCH) is page
    assert follow(k, p, a, 0) is page
    assert page_count(page) == 1


# --- FOLL_TOUCH -----------------------------------------------------------------
def test_foll_touch_marks_zero_page_referenced(k, p):
    """mark_page_accessed on a page off the LRU only sets PG_referenced."""
    a = k.mmap(p, PAGE_SIZE, "r")
    k.read(p, a, 1)
    assert k.page(p, a) is k.zero_page
    assert not PageReferenced(k.zero_page)

    assert follow(k, p, a, FOLL_TOUCH) is k.zero_page

    assert PageReferenced(k.zero_page)
    assert not PageActive(k.zero_page)


def test_foll_touch_activates_referenced_page_cache_page(k, p):
    """filemap_nopage already marked the page accessed (inactive, referenced);
    a second mark_page_accessed activates it and clears PG_referenced."""
    k.add_file("/f", b"x" * PAGE_SIZE, mode="r")
    a = k.mmap(p, PAGE_SIZE, "r", ("private",), file="/f")
    k.read(p, a, 1)
    page = k.page(p, a)
    assert PageReferenced(page) and not PageActive(page)

    follow(k, p, a, FOLL_TOUCH)

    assert PageActive(page)
    assert not PageReferenced(page)


@pytest.mark.parametrize("flags", [0, FOLL_GET, FOLL_WRITE], ids=["none", "get", "write"])
def test_without_foll_touch_page_flags_are_untouched(k, p, flags):
    """get_numa_maps passes 0: no accessed (or dirty) marking without FOLL_TOUCH."""
    k.add_file("/f", b"x" * PAGE_SIZE, mode="rw")
    a = k.mmap(p, PAGE_SIZE, "rw", ("shared",), file="/f")
    k.read(p, a, 1)  # writable, clean pte
    page = k.page(p, a)
    before = page.flags
    pte_before = k.pte(p, a)

    got = follow(k, p, a, flags)

    assert got is page
    assert page.flags == before
    assert not PageDirty(page)
    assert k.pte(p, a) == pte_before
    if flags & FOLL_GET:
        release(k, got)


def test_foll_touch_write_dirties_clean_page_behind_clean_pte(k, p):
    k.add_file("/f", b"x" * PAGE_SIZE, mode="rw")
    a = k.mmap(p, PAGE_SIZE, "rw", ("shared",), file="/f")
    k.read(p, a, 1)
    pte = k.pte(p, a)
    assert pte & _PAGE_RW and not pte & _PAGE_DIRTY
    page = k.page(p, a)
    assert not PageDirty(page)

    assert follow(k, p, a, FOLL_WRITE | FOLL_TOUCH) is page

    assert PageDirty(page)  # set_page_dirty
    assert k.pte(p, a) == pte  # the pte itself is never changed


def test_foll_touch_write_leaves_page_clean_when_pte_is_dirty(k, p):
    """``if (FOLL_WRITE && !pte_dirty(pte) && !PageDirty(page)) set_page_dirty``:
    a dirty pte means the dirt is already recorded (zap/msync transfer it)."""
    k.add_file("/f", b"x" * PAGE_SIZE, mode="rw")
    a = k.mmap(p, PAGE_SIZE, "rw", ("shared",), file="/f")
    k.write(p, a, b"y")
    assert k.pte(p, a) & _PAGE_DIRTY
    page = k.page(p, a)
    assert not PageDirty(page)

    follow(k, p, a, FOLL_WRITE | FOLL_TOUCH)

    assert not PageDirty(page)
    assert PageReferenced(page) or PageActive(page)  # still marked accessed


def test_foll_touch_without_write_does_not_dirty(k, p):
    k.add_file("/f", b"x" * PAGE_SIZE, mode="rw")
    a = k.mmap(p, PAGE_SIZE, "rw", ("shared",), file="/f")
    k.read(p, a, 1)
    page = k.page(p, a)

    follow(k, p, a, FOLL_TOUCH)

    assert not PageDirty(page)


# --- FOLL_WRITE -------------------------------------------------------------------
def test_foll_write_on_writable_pte_returns_the_page(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"w")
    assert follow(k, p, a, FOLL_WRITE) is k.page(p, a)


@pytest.mark.parametrize("kind", ["zero_page", "private_file", "mprotected_anon"])
def test_foll_write_on_read_only_pte_returns_none_untouched(k, p, kind):
    if kind == "zero_page":
        a = k.mmap(p, PAGE_SIZE, "rw")
        k.read(p, a, 1)
    elif kind == "private_file":
        k.add_file("/f", b"x" * PAGE_SIZE, mode="rw")
        a = k.mmap(p, PAGE_SIZE, "rw", ("private",), file="/f")
        k.read(p, a, 1)  # PAGE_COPY: read-only pte on a page-cache page
    else:
        a = k.mmap(p, PAGE_SIZE, "rw")
        k.write(p, a, b"w")
        assert k.mprotect(p, a, PAGE_SIZE, "r") == 0
    assert not k.pte(p, a) & _PAGE_RW
    page = k.page(p, a)
    count, flags = page_count(page), page.flags

    assert follow(k, p, a, FOLL_WRITE | FOLL_GET | FOLL_TOUCH) is None

    assert page_count(page) == count  # no reference leaked
    assert page.flags == flags  # nothing marked


def test_prot_none_pte_counts_as_present(k, p):
    """x86-64 pte_present() includes _PAGE_PROTNONE, so follow_page returns
    the page of a PROT_NONE pte (but not for FOLL_WRITE)."""
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"w")
    page = k.page(p, a)
    assert k.mprotect(p, a, PAGE_SIZE, "") == 0

    assert follow(k, p, a, 0) is page
    assert follow(k, p, a, FOLL_WRITE) is None


# --- missing page tables and FOLL_ANON --------------------------------------------
def _probe_with_missing(k: Kernel, p, level: str) -> int:
    """Set up a process whose walk to the returned address stops at ``level``."""
    base = k.mmap(p, BIG, "rw")
    if level == "pgd":
        return base
    k.write(p, base, b"t")  # builds pud, pmd and pte pages for base
    return base + {"pud": PUD_SIZE, "pmd": PMD_SIZE}[level]


LEVELS = ["pgd", "pud", "pmd"]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize(
    "flags",
    [0, FOLL_GET | FOLL_TOUCH, FOLL_WRITE | FOLL_GET],
    ids=["none", "get_touch", "write_get"],
)
def test_missing_upper_table_without_foll_anon_returns_none(k, p, level, flags):
    addr = _probe_with_missing(k, p, level)
    assert k.pte(p, addr) is None
    tables = k.page_tables(p)
    zero_count = page_count(k.zero_page)

    assert follow(k, p, addr, flags) is None

    assert k.page_tables(p) == tables
    assert page_count(k.zero_page) == zero_count


@pytest.mark.parametrize("level", LEVELS)
def test_missing_upper_table_with_foll_anon_returns_zero_page(k, p, level):
    addr = _probe_with_missing(k, p, level)
    zero_count = page_count(k.zero_page)
    allocated = k.tables_allocated

    assert follow(k, p, addr, FOLL_ANON | FOLL_TOUCH) is k.zero_page

    assert page_count(k.zero_page) == zero_count  # no FOLL_GET, no reference
    assert k.tables_allocated == allocated
    assert k.pte(p, addr) is None


@pytest.mark.parametrize("level", LEVELS)
def test_missing_upper_table_with_foll_anon_get_references_zero_page(k, p, level):
    addr = _probe_with_missing(k, p, level)
    zero_count = page_count(k.zero_page)
    zero_maps = page_mapcount(k.zero_page)
    allocated = k.tables_allocated

    page = follow(k, p, addr, FOLL_ANON | FOLL_GET)

    assert page is k.zero_page
    assert page_count(k.zero_page) == zero_count + 1
    assert page_mapcount(k.zero_page) == zero_maps  # not mapped anywhere
    assert k.tables_allocated == allocated  # "we don't want to allocate page tables"
    release(k, page)


def test_missing_pgd_is_also_detected_in_a_populated_mm(k, p):
    """Another pgd slot than the one in use: no_page_table, ZERO_PAGE for FOLL_ANON."""
    base = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, base, b"t")
    far = base + PGDIR_SIZE
    assert follow(k, p, far, 0) is None
    assert follow(k, p, far, FOLL_ANON) is k.zero_page


@pytest.mark.parametrize("level", LEVELS)
def test_foll_anon_with_foll_write_on_missing_table_is_a_bug(k, p, level):
    addr = _probe_with_missing(k, p, level)

    with pytest.raises(ModelFailure) as info:
        follow(k, p, addr, FOLL_ANON | FOLL_WRITE)

    assert "follow_page" in info.value.location
    assert not is_locked(p.mm.page_table_lock)


def test_foll_anon_with_foll_write_on_present_writable_pte_is_fine(k, p):
    """The BUG_ON sits on the no_page_table path only."""
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"w")
    assert follow(k, p, a, FOLL_ANON | FOLL_WRITE) is k.page(p, a)


@pytest.mark.parametrize(
    "flags",
    [0, FOLL_ANON, FOLL_ANON | FOLL_GET | FOLL_TOUCH],
    ids=["none", "anon", "anon_get_touch"],
)
def test_none_pte_in_existing_pte_page_returns_none(k, p, flags):
    """FOLL_ANON only covers a missing pgd/pud/pmd; a none pte gives NULL and
    get_user_pages faults (do_anonymous_page maps the zero page)."""
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    k.write(p, a, b"w")
    assert k.pte(p, a + PAGE_SIZE) == 0  # pte page exists, the pte is none
    zero_count = page_count(k.zero_page)

    assert follow(k, p, a + PAGE_SIZE, flags) is None

    assert page_count(k.zero_page) == zero_count


def test_zero_page_pte_is_returned_like_any_page(k, p):
    a = k.mmap(p, PAGE_SIZE, "r")
    k.read(p, a, 1)
    assert k.page(p, a) is k.zero_page
    assert page_count(k.zero_page) == 2  # reserved + the pte
    assert page_mapcount(k.zero_page) == 1

    page = follow(k, p, a, FOLL_GET | FOLL_TOUCH)

    assert page is k.zero_page
    assert page_count(k.zero_page) == 3
    assert page_mapcount(k.zero_page) == 1
    assert PageReferenced(k.zero_page)
    release(k, page)


# --- locking ------------------------------------------------------------------------
def _cases(k: Kernel, p) -> list[tuple[int, int]]:
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    k.write(p, a, b"w")
    k.read(p, a + PAGE_SIZE, 1)  # zero page, read-only pte
    return [
        (a, FOLL_GET | FOLL_TOUCH),  # found
        (a + PAGE_SIZE, FOLL_WRITE | FOLL_GET),  # refused: read-only pte
        (a + 2 * PAGE_SIZE, FOLL_GET),  # none pte
        (a + PMD_SIZE, FOLL_ANON | FOLL_GET),  # no page table
    ]


@pytest.mark.parametrize("split", [True, False], ids=["split_ptlock", "mm_lock"])
def test_follow_page_leaves_no_lock_held(split):
    k = Kernel(split_ptlock=split)
    p = k.spawn("p")
    cases = _cases(k, p)
    ptl = pte_page_lock(k, p, cases[0][0]) if split else p.mm.page_table_lock
    for addr, flags in cases:
        page = follow(k, p, addr, flags)
        assert not is_locked(ptl)
        assert not is_locked(p.mm.page_table_lock)
        assert not p.mm.mmap_sem.readers and p.mm.mmap_sem.writer is None
        if page is not None:
            release(k, page)
    k.check_invariants()


@pytest.mark.parametrize("split", [True, False], ids=["split_ptlock", "mm_lock"])
def test_follow_page_takes_the_pte_lock_itself(split):
    """The caller must no longer hold page_table_lock (or the pte lock): the
    lock is taken inside, so holding it across the call self-deadlocks."""
    from pagewalk.kernel.locks import spin_lock, spin_unlock

    k = Kernel(split_ptlock=split)
    p = k.spawn("p")
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"w")
    ptl = pte_page_lock(k, p, a) if split else p.mm.page_table_lock
    with k.running(p):
        spin_lock(ptl)
        try:
            with pytest.raises(ModelFailure) as info:
                follow_page(p.mm, a, FOLL_GET)
        finally:
            spin_unlock(ptl)
    assert "spin_lock" in info.value.location
    k.check_invariants()
