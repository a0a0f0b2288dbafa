"""User page faults (arch do_page_fault -> handle_mm_fault) and copy-on-write:
do_anonymous_page, do_no_page, do_wp_page in mm/memory.c at deceb6cd."""

from __future__ import annotations

import pytest

from pagewalk.kernel.constants import PAGE_SIZE
from pagewalk.kernel.page import PageAnon, PageReferenced, page_count, page_mapcount
from pagewalk.kernel.pgtable import _PAGE_DIRTY, _PAGE_RW


def rss(p) -> tuple[int, int]:
    """(file_rss, anon_rss) of the process."""
    return p.mm._file_rss, p.mm._anon_rss


# --- anonymous memory ---------------------------------------------------------------
def test_read_fault_on_anon_maps_zero_page_counted_as_file_rss(k, p):
    """do_anonymous_page read: ZERO_PAGE, refcounted, rmap'd, file_rss."""
    a = k.mmap(p, PAGE_SIZE, "rw")

    acc = k.read(p, a, 8)

    assert acc.signal is None and acc.data == bytes(8)
    assert k.page(p, a) is k.zero_page
    assert rss(p) == (1, 0)
    assert page_mapcount(k.zero_page) == 1
    assert page_count(k.zero_page) == 2  # reserved + pte
    assert not k.pte(p, a) & _PAGE_RW  # vm_page_prot of private is PAGE_COPY
    assert p.min_flt == 1


def test_write_fault_on_anon_allocates_a_writable_dirty_anon_page(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")

    assert k.write(p, a, b"hello").signal is None

    page = k.page(p, a)
    assert page is not k.zero_page
    assert PageAnon(page)
    assert PageReferenced(page)  # do_anonymous_page: SetPageReferenced
    assert page_count(page) == 1 and page_mapcount(page) == 1
    assert rss(p) == (0, 1)
    pte = k.pte(p, a)
    assert pte & _PAGE_RW and pte & _PAGE_DIRTY
    assert k.read(p, a, 5).data == b"hello"
    assert p.min_flt == 1


def test_write_to_zero_page_pte_copies_to_a_fresh_zeroed_page(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.read(p, a, 1)

    assert k.write(p, a + 100, b"x").signal is None

    page = k.page(p, a)
    assert page is not k.zero_page and PageAnon(page)
    assert page_mapcount(k.zero_page) == 0
    assert page_count(k.zero_page) == 1
    assert rss(p) == (0, 1)  # do_wp_page moves it from file_rss to anon_rss
    assert k.read(p, a, 101).data == bytes(100) + b"x"
    assert k.zero_page.data is None  # the zero page stays zero
    assert p.min_flt == 2


def test_cow_reuses_page_mapped_once(k, p):
    """do_wp_page: anonymous and can_share_swap_page (mapcount 1) -> reuse."""
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"one")
    page = k.page(p, a)
    assert k.mprotect(p, a, PAGE_SIZE, "r") == 0
    assert k.mprotect(p, a, PAGE_SIZE, "rw") == 0
    assert not k.pte(p, a) & _PAGE_RW  # PAGE_COPY: still read-only

    assert k.write(p, a, b"two").signal is None

    assert k.page(p, a) is page  # same pfn
    assert k.pte(p, a) & _PAGE_RW  # now writable
    assert page_mapcount(page) == 1 and page_count(page) == 1
    assert k.read(p, a, 3).data == b"two"


def test_cow_copies_page_mapped_twice(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"shared")
    old = k.page(p, a)
    k.fork(p, "c")
    assert page_mapcount(old) == 2

    assert k.write(p, a, b"parent").signal is None

    new = k.page(p, a)
    assert new is not old and PageAnon(new)
    assert page_mapcount(old) == 1 and page_count(old) == 1
    assert page_mapcount(new) == 1
    assert k.page("c", a) is old
    assert k.read("c", a, 6).data == b"shared"
    assert k.read(p, a, 6).data == b"parent"


def test_pinned_page_mapped_once_is_still_reused(k, p):
    """can_share_swap_page looks at mapcount only, not page_count: an extra
    (get_user_pages) reference does not force a copy in this era."""
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"pin")
    page = k.page(p, a)
    assert k.mprotect(p, a, PAGE_SIZE, "r") == 0
    assert k.mprotect(p, a, PAGE_SIZE, "rw") == 0
    _, pages = k.gup(p, a, 1)
    assert page_count(page) == 2

    k.write(p, a, b"new")

    assert k.page(p, a) is page
    k.put_pages(pages)


# --- file mappings ------------------------------------------------------------------
def test_private_file_read_maps_page_cache_page_read_only(k, p):
    f = k.add_file("/f", b"contents" + bytes(PAGE_SIZE - 8), mode="rw")
    a = k.mmap(p, PAGE_SIZE, "rw", ("private",), file="/f")

    assert k.read(p, a, 8).data == b"contents"

    page = k.page(p, a)
    assert page.mapping is f.mapping and not PageAnon(page)
    assert not k.pte(p, a) & _PAGE_RW
    assert page_count(page) == 2  # page cache + pte
    assert rss(p) == (1, 0)


def test_private_file_write_fault_does_early_cow(k, p):
    """do_no_page: write_access && !VM_SHARED -> copy at once into an
    anonymous page; the page-cache page is not mapped."""
    f = k.add_file("/f", b"contents" + bytes(PAGE_SIZE - 8), mode="rw")
    a = k.mmap(p, PAGE_SIZE, "rw", ("private",), file="/f")

    assert k.write(p, a, b"C").signal is None

    page = k.page(p, a)
    assert PageAnon(page)
    assert k.pte(p, a) & _PAGE_RW and k.pte(p, a) & _PAGE_DIRTY
    assert k.read(p, a, 8).data == b"Contents"
    assert f.content()[:8] == b"contents"
    cached = f.mapping.page_tree[0]
    assert cached is not page
    assert page_mapcount(cached) == 0 and page_count(cached) == 1
    assert rss(p) == (0, 1)
    assert p.min_flt + p.maj_flt == 1  # one fault, no do_wp_page


def test_private_file_write_after_read_copies_page_cache_page(k, p):
    f = k.add_file("/f", b"contents" + bytes(PAGE_SIZE - 8), mode="rw")
    a = k.mmap(p, PAGE_SIZE, "rw", ("private",), file="/f")
    k.read(p, a, 1)
    cached = k.page(p, a)

    k.write(p, a, b"C")

    page = k.page(p, a)
    assert page is not cached and PageAnon(page)
    assert page_mapcount(cached) == 0
    assert rss(p) == (0, 1)
    assert f.content()[:8] == b"contents"


def test_shared_file_write_goes_to_the_page_cache(k, p):
    f = k.add_file("/f", b"contents" + bytes(PAGE_SIZE - 8), mode="rw")
    a = k.mmap(p, PAGE_SIZE, "rw", ("shared",), file="/f")

    assert k.write(p, a, b"C").signal is None

    page = k.page(p, a)
    assert page is f.mapping.page_tree[0]
    assert not PageAnon(page)
    pte = k.pte(p, a)
    assert pte & _PAGE_RW and pte & _PAGE_DIRTY
    assert f.content()[:8] == b"Contents"
    assert rss(p) == (1, 0)


def test_read_past_eof_in_file_mapping_is_sigbus(k, p):
    k.add_file("/f", b"x" * 100, mode="r")
    a = k.mmap(p, 2 * PAGE_SIZE, "r", ("private",), file="/f")

    assert k.read(p, a, 100).data == b"x" * 100
    assert k.read(p, a + 100, 10).data == bytes(10)  # rest of the last page
    acc = k.read(p, a + PAGE_SIZE, 1)

    assert acc.signal == "SIGBUS"
    assert k.pte(p, a + PAGE_SIZE) == 0


def test_first_file_access_is_a_major_fault_then_minor(k, p):
    k.add_file("/f", b"y" * 2 * PAGE_SIZE, mode="r")
    a = k.mmap(p, 2 * PAGE_SIZE, "r", ("private",), file="/f")

    k.read(p, a, 1)
    assert (p.maj_flt, p.min_flt) == (1, 0)

    k.read(p, a + PAGE_SIZE, 1)  # read around brought it into the cache
    assert (p.maj_flt, p.min_flt) == (1, 1)


def test_second_mapping_of_cached_file_faults_minor(k, p):
    k.add_file("/f", b"y" * PAGE_SIZE, mode="r")
    a = k.mmap(p, PAGE_SIZE, "r", ("private",), file="/f")
    k.read(p, a, 1)
    b = k.mmap(p, PAGE_SIZE, "r", ("private",), file="/f")

    k.read(p, b, 1)

    assert (p.maj_flt, p.min_flt) == (1, 1)
    assert k.page(p, a) is k.page(p, b)


# --- signals ------------------------------------------------------------------------
def test_access_outside_any_vma_is_sigsegv(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    assert k.read(p, a + PAGE_SIZE, 1).signal == "SIGSEGV"
    assert k.write(p, a + PAGE_SIZE, b"x").signal == "SIGSEGV"
    assert k.read(p, 0x1000, 1).signal == "SIGSEGV"


def test_write_to_read_only_vma_is_sigsegv(k, p):
    a = k.mmap(p, PAGE_SIZE, "r")
    acc = k.write(p, a, b"x")
    assert acc.signal == "SIGSEGV" and acc.data == 0
    assert k.pte(p, a) is None  # bad_area before handle_mm_fault


def test_write_to_read_only_vma_with_present_pte_is_sigsegv(k, p):
    a = k.mmap(p, PAGE_SIZE, "r")
    k.read(p, a, 1)
    assert k.write(p, a, b"x").signal == "SIGSEGV"
    assert k.page(p, a) is k.zero_page


@pytest.mark.parametrize("touched", [False, True], ids=["untouched", "populated"])
def test_prot_none_read_is_sigsegv(k, p, touched):
    a = k.mmap(p, PAGE_SIZE, "rw")
    if touched:
        k.write(p, a, b"x")
    assert k.mprotect(p, a, PAGE_SIZE, "") == 0
    assert k.read(p, a, 1).signal == "SIGSEGV"
    assert k.write(p, a, b"y").signal == "SIGSEGV"


def test_partial_write_stops_at_the_fault(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    acc = k.write(p, a + PAGE_SIZE - 2, b"abcd")
    assert acc.signal == "SIGSEGV" and acc.data == 2
    assert k.read(p, a + PAGE_SIZE - 2, 2).data == b"ab"
