"""The MMU model: its walk cache never changes what an access sees."""

from pagewalk import Kernel
from pagewalk.kernel.constants import PAGE_SIZE
from pagewalk.kernel.pgtable import (
    _KERNPG_TABLE,
    _PAGE_DIRTY,
    _PAGE_PSE,
    _PAGE_USER,
    pgd_bad,
    pmd_bad,
    pud_bad,
)

PMD = 512 * PAGE_SIZE


def test_access_after_munmap_and_remap_does_not_see_the_freed_table():
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, PMD, "rw")
    k.write(p, a, b"old")
    assert k.munmap(p, a, PMD) == 0
    assert k.mmap(p, PMD, "rw", addr=a, flags=["private", "fixed"]) == a
    assert k.read(p, a, 3).data == b"\0\0\0"
    assert k.page(p, a) is k.zero_page


def test_access_after_munmap_faults_with_sigsegv():
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, PMD, "rw")
    k.write(p, a, b"x")
    k.munmap(p, a, PMD)
    assert k.read(p, a, 1).signal == "SIGSEGV"


def test_walk_cache_is_emptied_when_a_pte_table_is_freed():
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, PMD, "rw")
    k.write(p, a, b"x")
    assert k.tasks["p"].mm.pde_cache
    k.munmap(p, a, PMD)
    assert not k.tasks["p"].mm.pde_cache


def test_dontneed_keeps_the_table_and_the_next_store_faults_a_fresh_page():
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"x")
    faults = k.pgfault
    k.madvise(p, a, PAGE_SIZE, "dontneed")
    k.write(p, a + 1, b"y")
    assert k.pgfault == faults + 1
    assert k.read(p, a, 2).data == b"\0y"


GIB = 1 << 30


def _fixed(k, p, addr, length):
    return k.mmap(p, length, "rw", addr=addr, flags=["private", "fixed"])


def test_pmd_walk_memo_is_emptied_when_a_pmd_table_is_freed():
    k = Kernel()
    p = k.spawn("p")
    a = _fixed(k, p, 8 * GIB, GIB)
    k.write(p, a, b"x")
    assert k.tasks["p"].mm.pmd_cache
    before = k.page_tables(p)
    k.munmap(p, a, GIB)
    assert k.page_tables(p) < before - 1  # the pte and the pmd table went
    assert not k.tasks["p"].mm.pmd_cache


def test_get_user_pages_after_the_pmd_table_was_freed_walks_the_new_one():
    k = Kernel()
    p = k.spawn("p")
    a = _fixed(k, p, 8 * GIB, GIB)
    k.write(p, a, b"old")
    k.munmap(p, a, GIB)
    _fixed(k, p, a, GIB)
    k.write(p, a, b"new")
    ret, pages = k.gup(p, a, 1)
    assert ret == 1 and pages[0] is k.page(p, a)
    k.put_pages(pages)
    assert k.mem_read(p, a, 3) == (3, b"new")


def test_pgd_bad_rejects_only_extra_flags_pmd_bad_also_missing_ones():
    """x86-64 before 2.6.20: pgd_bad/pud_bad test for flags beyond a table
    entry's, pmd_bad for flags other than exactly _KERNPG_TABLE."""
    table = 0x5000 | _KERNPG_TABLE | _PAGE_USER
    assert not pgd_bad(table) and not pud_bad(table) and not pmd_bad(table)
    clean = table & ~_PAGE_DIRTY
    assert not pgd_bad(clean) and not pud_bad(clean) and pmd_bad(clean)
    assert pgd_bad(table | _PAGE_PSE) and pmd_bad(table | _PAGE_PSE)
