"""get_user_pages() after deceb6cd (mm/memory.c).

The permission test (``vm_flags`` from write/force against the vma), partial
results, VM_FAULT_SIGBUS/OOM mapping to EFAULT/ENOMEM, the VM_FAULT_WRITE
retry that lets a forced write succeed on a read-only pte, FOLL_ANON for
reads of untouched anonymous memory (not VM_LOCKED, not ->nopage), FOLL_GET
pinning, and the task's fault counters.
"""

from __future__ import annotations

import pytest

from pagewalk import Kernel
from pagewalk.errors import ModelFailure
from pagewalk.kernel.constants import (
    PAGE_SIZE,
    PROT_WRITE,
    VM_LOCKED,
    VM_MAYWRITE,
    VSYSCALL_START,
)
from pagewalk.kernel.locks import down_read, up_read
from pagewalk.kernel.memory import get_user_pages
from pagewalk.kernel.page import PageAnon, page_count, page_mapcount
from pagewalk.kernel.pgtable import _PAGE_DIRTY, _PAGE_RW

EFAULT, ENOMEM = -14, -12


def gup_direct(
    k: Kernel,
    p,
    start: int,
    npages: int,
    write: int,
    force: int,
    pages: list | None,
    vmas: list | None = None,
) -> int:
    """get_user_pages under mmap_sem held for read, as its callers do."""
    with k.running(p):
        down_read(p.mm.mmap_sem)
        try:
            return get_user_pages(p, p.mm, start, npages, write, force, pages, vmas)
        finally:
            up_read(p.mm.mmap_sem)


# --- permissions ----------------------------------------------------------------
#: (prot, map flags, file mode or None for anonymous, ok for
#:  (read, read+force, write, write+force))
MATRIX = [
    ("rw", ("private",), None, (True, True, True, True)),
    ("r", ("private",), None, (True, True, False, True)),
    ("", ("private",), None, (False, True, False, True)),
    (PROT_WRITE, ("private",), None, (False, True, True, True)),
    ("rw", ("shared",), None, (True, True, True, True)),
    ("r", ("private",), "r", (True, True, False, True)),  # private: MAYWRITE kept
    ("rw", ("shared",), "rw", (True, True, True, True)),
    ("r", ("shared",), "rw", (True, True, False, True)),  # VM_MAYWRITE: force may write
    ("r", ("shared",), "r", (True, True, False, False)),  # no VM_MAYWRITE at all
    ("", ("shared",), "r", (False, True, False, False)),
]
ACCESS = [(0, 0), (0, 1), (1, 0), (1, 1)]


def _matrix_cases() -> list:
    cases = []
    for prot, flags, mode, oks in MATRIX:
        for (write, force), ok in zip(ACCESS, oks, strict=True):
            name = (
                f"{prot or 'none'!s}-{flags[0]}-{mode or 'anon'}-"
                f"{'write' if write else 'read'}{'-force' if force else ''}"
            )
            cases.append(pytest.param(prot, flags, mode, write, force, ok, id=name))
    return cases


@pytest.mark.parametrize(("prot", "flags", "mode", "write", "force", "ok"), _matrix_cases())
def test_permission_matrix(k, p, prot, flags, mode, write, force, ok):
    """vm_flags = write ? VM_WRITE|VM_MAYWRITE : VM_READ|VM_MAYREAD, masked by
    force ? VM_MAYREAD|VM_MAYWRITE : VM_READ|VM_WRITE; no overlap -> -EFAULT."""
    file = None
    if mode is not None:
        k.add_file("/f", b"f" * PAGE_SIZE, mode=mode)
        file = "/f"
    a = k.mmap(p, PAGE_SIZE, prot, flags, file=file)
    assert a > 0

    ret, pages = k.gup(p, a, 1, write=bool(write), force=bool(force))

    if ok:
        assert ret == 1
        assert len(pages) == 1
        assert page_count(pages[0]) >= 2  # mapped or reserved, plus the pin
    else:
        assert ret == EFAULT
        assert pages == []
        assert p.min_flt == p.maj_flt == 0  # refused before any fault
    k.put_pages(pages)


def test_read_only_shared_mapping_of_read_only_file_has_no_maywrite(k, p):
    """do_mmap_pgoff clears VM_MAYWRITE|VM_SHARED when the file is not open
    for write: the vma is VM_MAYSHARE only, and even a forced write fails."""
    k.add_file("/ro", b"r" * PAGE_SIZE, mode="r")
    a = k.mmap(p, PAGE_SIZE, "r", ("shared",), file="/ro")
    assert not k.vma(p, a).vm_flags & VM_MAYWRITE
    assert k.mem_write(p, a, b"poke") == 0
    assert k.read(p, a, 4).data == b"rrrr"


# --- partial results -----------------------------------------------------------------
def test_range_running_into_a_hole_returns_pages_done(k, p):
    a = k.mmap(p, 3 * PAGE_SIZE, "rw")
    assert k.munmap(p, a + PAGE_SIZE, PAGE_SIZE) == 0

    ret, pages = k.gup(p, a, 3, write=True)

    assert ret == 1
    assert len(pages) == 1
    assert pages[0] is k.page(p, a)
    k.put_pages(pages)


def test_range_starting_in_a_hole_is_efault(k, p):
    a = k.mmap(p, 3 * PAGE_SIZE, "rw")
    assert k.munmap(p, a + PAGE_SIZE, PAGE_SIZE) == 0

    assert k.gup(p, a + PAGE_SIZE, 2) == (EFAULT, [])


def test_range_past_the_last_vma_returns_pages_done(k, p):
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    ret, pages = k.gup(p, a, 5, write=True)
    assert ret == 2
    k.put_pages(pages)


@pytest.mark.parametrize(("force", "expected"), [(False, 2), (True, 3)], ids=["no_force", "force"])
def test_range_running_into_prot_none_area(k, p, force, expected):
    a = k.mmap(p, 3 * PAGE_SIZE, "rw")
    assert k.mprotect(p, a + 2 * PAGE_SIZE, PAGE_SIZE, "") == 0

    ret, pages = k.gup(p, a, 3, write=False, force=force)

    assert ret == expected
    assert len(pages) == expected
    k.put_pages(pages)


def test_sigbus_after_some_pages_returns_pages_done(k, p):
    """VM_FAULT_SIGBUS (past EOF) -> return i ? i : -EFAULT."""
    k.add_file("/short", b"s" * 100, mode="r")
    a = k.mmap(p, 3 * PAGE_SIZE, "r", ("private",), file="/short")

    ret, pages = k.gup(p, a, 3)

    assert ret == 1
    k.put_pages(pages)
    assert k.gup(p, a + PAGE_SIZE, 1) == (EFAULT, [])


def test_out_of_memory_on_first_page_is_enomem():
    """pgd at spawn + pud, pmd and pte pages fill 4 frames: no frame is left
    for the data page, so do_anonymous_page returns VM_FAULT_OOM."""
    k = Kernel(pages_per_node=4)
    p = k.spawn("p")
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")

    assert k.gup(p, a, 2, write=True) == (ENOMEM, [])
    k.check_invariants()


def test_out_of_memory_when_page_tables_cannot_be_allocated_is_enomem():
    k = Kernel(pages_per_node=1)  # the pgd only
    p = k.spawn("p")
    a = k.mmap(p, PAGE_SIZE, "rw")

    assert k.gup(p, a, 1, write=True) == (ENOMEM, [])
    assert k.page_tables(p) == 0
    k.check_invariants()


def test_out_of_memory_after_some_pages_returns_pages_done():
    k = Kernel(pages_per_node=6)  # pgd + 3 tables + 2 data pages
    p = k.spawn("p")
    a = k.mmap(p, 4 * PAGE_SIZE, "rw")

    ret, pages = k.gup(p, a, 4, write=True)

    assert ret == 2
    assert [k.page(p, a + i * PAGE_SIZE) for i in range(2)] == pages
    assert k.pte(p, a + 2 * PAGE_SIZE) == 0
    k.put_pages(pages)
    k.check_invariants()


def test_zero_page_reads_need_no_memory():
    """FOLL_ANON: untouched anonymous memory is read as ZERO_PAGE without
    allocating anything, so even a full machine can serve it."""
    k = Kernel(pages_per_node=1)
    p = k.spawn("p")
    a = k.mmap(p, 8 * PAGE_SIZE, "r")

    ret, pages = k.gup(p, a, 8)

    assert ret == 8
    assert all(page is k.zero_page for page in pages)
    k.put_pages(pages)
    k.check_invariants()


@pytest.mark.parametrize("length", [0, -1])
def test_len_not_positive_is_a_model_failure(k, p, length):
    a = k.mmap(p, PAGE_SIZE, "rw")
    with pytest.raises(ModelFailure) as info:
        gup_direct(k, p, a, length, 0, 0, [])
    assert "get_user_pages" in info.value.location


# --- VM_FAULT_WRITE ------------------------------------------------------------------
def test_forced_write_into_read_only_private_anon_cows_an_anon_page(k, p):
    """do_anonymous_page maps a read-only dirty page (maybe_mkwrite: no
    VM_WRITE); follow_page(FOLL_WRITE) still refuses it, so a second fault
    goes to do_wp_page, which reuses the page and reports VM_FAULT_WRITE;
    get_user_pages then drops FOLL_WRITE and accepts the read-only pte."""
    a = k.mmap(p, PAGE_SIZE, "r")

    ret, pages = k.gup(p, a, 1, write=True, force=True)

    assert ret == 1
    page = pages[0]
    assert page is k.page(p, a)
    assert page is not k.zero_page
    assert PageAnon(page)
    pte = k.pte(p, a)
    assert not pte & _PAGE_RW
    assert pte & _PAGE_DIRTY
    assert p.min_flt == 2  # do_anonymous_page + do_wp_page (reuse)
    assert (p.mm._anon_rss, p.mm._file_rss) == (1, 0)
    k.put_pages(pages)


def test_forced_write_over_zero_page_copies_to_a_fresh_anon_page(k, p):
    a = k.mmap(p, PAGE_SIZE, "r")
    k.read(p, a, 1)
    assert k.page(p, a) is k.zero_page

    ret, pages = k.gup(p, a, 1, write=True, force=True)

    assert ret == 1
    page = pages[0]
    assert page is not k.zero_page and PageAnon(page)
    assert k.page(p, a) is page
    assert page_mapcount(k.zero_page) == 0
    assert not k.pte(p, a) & _PAGE_RW
    assert (p.mm._anon_rss, p.mm._file_rss) == (1, 0)
    assert k.peek(p, a, 8) == bytes(8)
    k.put_pages(pages)


def test_forced_write_is_rearmed_for_every_page(k, p):
    """``if (write) foll_flags |= FOLL_WRITE`` per page: clearing it after the
    first page's VM_FAULT_WRITE must not turn the next page into a read
    (which would hand out the zero page)."""
    a = k.mmap(p, 2 * PAGE_SIZE, "r")

    ret, pages = k.gup(p, a, 2, write=True, force=True)

    assert ret == 2
    assert all(page is not k.zero_page and PageAnon(page) for page in pages)
    assert pages[0] is not pages[1]
    assert p.min_flt == 4
    k.put_pages(pages)


def test_ptrace_write_into_read_only_private_file_mapping_leaves_file_alone(k, p):
    f = k.add_file("/bin", b"original" + bytes(PAGE_SIZE - 8), mode="r")
    a = k.mmap(p, PAGE_SIZE, "r", ("private",), file="/bin")

    assert k.mem_write(p, a, b"BREAK") == 5

    assert k.read(p, a, 8).data == b"BREAKnal"
    assert f.content()[:8] == b"original"
    page = k.page(p, a)
    assert PageAnon(page)
    assert not k.pte(p, a) & _PAGE_RW
    assert k.write(p, a, b"x").signal == "SIGSEGV"


def test_ptrace_write_into_read_only_shared_mapping_copies_instead_of_writing_file(k, p):
    """VM_MAYWRITE without VM_WRITE: do_no_page maps the page-cache page
    read-only (shared: no early COW), then do_wp_page copies it because it is
    not anonymous -- the debugger's write lands in a private anonymous page,
    the file is untouched (the 2.6.15 behaviour of forced shared writes)."""
    f = k.add_file("/shared", b"S" * PAGE_SIZE, mode="rw")
    a = k.mmap(p, PAGE_SIZE, "r", ("shared",), file="/shared")

    assert k.mem_write(p, a, b"poke") == 4

    assert f.content()[:4] == b"SSSS"
    assert k.read(p, a, 4).data == b"poke"
    page = k.page(p, a)
    assert PageAnon(page)
    assert page.mapping is not f.mapping
    assert (p.mm._anon_rss, p.mm._file_rss) == (1, 0)


def test_write_gup_on_writable_private_anon_breaks_cow_of_zero_page(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.read(p, a, 1)

    ret, pages = k.gup(p, a, 1, write=True)

    assert ret == 1
    assert pages[0] is not k.zero_page
    assert k.pte(p, a) & _PAGE_RW  # maybe_mkwrite: VM_WRITE
    k.put_pages(pages)


# --- FOLL_ANON --------------------------------------------------------------------------
def test_read_of_untouched_anon_returns_zero_page_without_page_tables(k, p):
    a = k.mmap(p, 4 * PAGE_SIZE, "rw")

    ret, pages = k.gup(p, a, 4)

    assert ret == 4
    assert all(page is k.zero_page for page in pages)
    assert k.page_tables(p) == 0
    assert k.pte(p, a) is None
    assert page_count(k.zero_page) == 1 + 4  # reserved + 4 pins
    assert page_mapcount(k.zero_page) == 0
    assert p.min_flt == 0
    k.put_pages(pages)


def test_read_with_existing_pte_page_faults_zero_page_in(k, p):
    """FOLL_ANON only helps when an upper table is missing; with the pte page
    present the read faults and do_anonymous_page maps ZERO_PAGE."""
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    k.write(p, a, b"w")
    before = p.min_flt

    ret, pages = k.gup(p, a + PAGE_SIZE, 1)

    assert ret == 1
    assert pages[0] is k.zero_page
    assert k.page(p, a + PAGE_SIZE) is k.zero_page
    assert p.min_flt == before + 1
    assert p.mm._file_rss == 1
    k.put_pages(pages)


def test_read_of_vm_locked_anon_faults_zero_page_into_ptes(k, p):
    """deceb6cd: no FOLL_ANON for VM_LOCKED vmas.  A PROT_NONE MAP_LOCKED area
    is not populated (make_pages_present fails the VM_READ test); made
    readable, its first read really maps ZERO_PAGE."""
    a = k.mmap(p, PAGE_SIZE, "", ("private", "locked"))
    assert k.vma(p, a).vm_flags & VM_LOCKED
    assert k.page_tables(p) == 0
    assert k.mprotect(p, a, PAGE_SIZE, "r") == 0

    ret, pages = k.gup(p, a, 1)

    assert ret == 1
    assert pages[0] is k.zero_page
    assert k.page(p, a) is k.zero_page
    assert k.page_tables(p) == 3
    assert page_mapcount(k.zero_page) == 1
    assert p.mm._file_rss == 1
    assert p.min_flt == 1
    k.put_pages(pages)


def test_read_of_untouched_private_file_mapping_faults_page_cache_page(k, p):
    f = k.add_file("/f", b"F" * PAGE_SIZE, mode="r")
    a = k.mmap(p, PAGE_SIZE, "r", ("private",), file="/f")

    ret, pages = k.gup(p, a, 1)

    assert ret == 1
    page = pages[0]
    assert page is not k.zero_page
    assert page.mapping is f.mapping
    assert k.page(p, a) is page
    assert k.page_tables(p) == 3
    assert p.maj_flt == 1
    k.put_pages(pages)


def test_read_of_untouched_shared_anon_gets_a_shmem_page(k, p):
    """MAP_SHARED|MAP_ANONYMOUS has shmem's ->nopage: not FOLL_ANON material."""
    a = k.mmap(p, PAGE_SIZE, "rw", ("shared",))

    ret, pages = k.gup(p, a, 1)

    assert ret == 1
    assert pages[0] is not k.zero_page
    assert k.page(p, a) is pages[0]
    k.put_pages(pages)


# --- references ---------------------------------------------------------------------
def test_pages_are_pinned_until_put_pages(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"w")
    page = k.page(p, a)

    ret, pages = k.gup(p, a, 1, write=True)
    assert ret == 1 and pages == [page]
    assert page_count(page) == 2
    assert page_mapcount(page) == 1

    k.put_pages(pages)
    assert page_count(page) == 1


def test_pinned_page_outlives_munmap(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"keep")
    _, pages = k.gup(p, a, 1, write=True)
    page = pages[0]

    assert k.munmap(p, a, PAGE_SIZE) == 0
    assert page_count(page) == 1  # only the pin
    assert page_mapcount(page) == 0
    assert bytes(page.data[:4]) == b"keep"

    k.put_pages(pages)
    assert page_count(page) == 0  # freed


def test_without_pages_no_reference_is_taken(k, p):
    """pages == NULL -> no FOLL_GET (make_pages_present's use)."""
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")

    assert gup_direct(k, p, a, 2, 1, 0, None) == 2

    for i in range(2):
        page = k.page(p, a + i * PAGE_SIZE)
        assert page is not None and page_count(page) == 1


def test_vmas_are_reported_per_page(k, p):
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    vmas: list = []

    assert gup_direct(k, p, a, 2, 0, 0, None, vmas) == 2

    assert vmas == [k.vma(p, a)] * 2


# --- fault accounting --------------------------------------------------------------------
def test_anonymous_write_counts_minor_faults(k, p):
    a = k.mmap(p, 3 * PAGE_SIZE, "rw")

    ret, pages = k.gup(p, a, 3, write=True)

    assert ret == 3
    assert (p.min_flt, p.maj_flt) == (3, 0)
    k.put_pages(pages)


def test_file_read_counts_major_then_minor(k, p):
    k.add_file("/f", b"F" * 2 * PAGE_SIZE, mode="r")
    a = k.mmap(p, 2 * PAGE_SIZE, "r", ("private",), file="/f")

    ret, pages = k.gup(p, a, 2)

    assert ret == 2
    # filemap_nopage: the miss reads around the fault, so page 1 is cached
    assert (p.maj_flt, p.min_flt) == (1, 1)
    k.put_pages(pages)


def test_present_pages_need_no_fault(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"w")
    before = (p.min_flt, p.maj_flt)

    ret, pages = k.gup(p, a, 1, write=True)

    assert ret == 1
    assert (p.min_flt, p.maj_flt) == before
    k.put_pages(pages)


# --- gate area ------------------------------------------------------------------------------
def test_gate_page_can_be_read_not_written(k, p):
    ret, pages = k.gup(p, VSYSCALL_START, 1)
    assert ret == 1 and pages == [k.vsyscall_page]
    k.put_pages(pages)
    assert k.gup(p, VSYSCALL_START, 1, write=True, force=True) == (EFAULT, [])


# --- more FOLL_TOUCH / COW interplay ------------------------------------------------------
def test_write_gup_on_clean_writable_shared_pte_dirties_page_not_pte(k, p):
    """follow_page(FOLL_WRITE|FOLL_TOUCH) finds the writable pte at once: no
    fault, set_page_dirty on the page, the pte itself left clean."""
    from pagewalk.kernel.page import PageDirty

    k.add_file("/f", b"d" * PAGE_SIZE, mode="rw")
    a = k.mmap(p, PAGE_SIZE, "rw", ("shared",), file="/f")
    k.read(p, a, 1)
    flt = (p.min_flt, p.maj_flt)
    page = k.page(p, a)
    assert not PageDirty(page)

    ret, pages = k.gup(p, a, 1, write=True)

    assert ret == 1 and pages == [page]
    assert PageDirty(page)
    assert not k.pte(p, a) & _PAGE_DIRTY
    assert (p.min_flt, p.maj_flt) == flt
    k.put_pages(pages)


def test_write_gup_after_fork_breaks_cow_for_the_caller(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"orig")
    old = k.page(p, a)
    k.fork(p, "c")

    ret, pages = k.gup(p, a, 1, write=True)

    assert ret == 1
    assert pages[0] is not old
    assert pages[0] is k.page(p, a)
    assert k.pte(p, a) & _PAGE_RW
    assert k.page("c", a) is old and page_mapcount(old) == 1
    assert k.peek(p, a, 4) == b"orig"
    k.put_pages(pages)


def test_read_gup_after_fork_does_not_break_cow(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"orig")
    old = k.page(p, a)
    k.fork(p, "c")

    ret, pages = k.gup(p, a, 1)

    assert ret == 1 and pages == [old]
    assert page_mapcount(old) == 2
    k.put_pages(pages)


def test_gup_below_growsdown_vma_expands_it(k, p):
    """find_extend_vma -> expand_stack for a VM_GROWSDOWN vma."""
    top = k.mmap(p, 2 * PAGE_SIZE, "rw", ("private", "growsdown"), addr=0x7FFF00000000)
    assert top == 0x7FFF00000000

    ret, pages = k.gup(p, top - 3 * PAGE_SIZE, 1, write=True)

    assert ret == 1
    assert k.vma(p, top).vm_start == top - 3 * PAGE_SIZE
    assert k.page(p, top - 3 * PAGE_SIZE) is pages[0]
    k.put_pages(pages)


# --- access_process_vm past EOF -------------------------------------------------------------
def test_own_access_past_eof_through_access_process_vm_transfers_nothing(k, p):
    """filemap_nopage: pgoff >= size and area->vm_mm == current->mm -> NULL
    (NOPAGE_SIGBUS) -> get_user_pages -EFAULT -> nothing transferred."""
    k.add_file("/f", b"x" * 100, mode="r")
    a = k.mmap(p, 2 * PAGE_SIZE, "r", ("private",), file="/f")

    assert k.mem_read(p, a + PAGE_SIZE, 4) == (0, b"")
    # the last page inside EOF is transferred, then the copy stops
    assert k.mem_read(p, a + PAGE_SIZE - 4, 8) == (4, bytes(4))


def test_debugger_read_past_eof_gets_zeroes(k, p):
    k.add_file("/f", b"x" * 100, mode="r")
    a = k.mmap(p, 2 * PAGE_SIZE, "r", ("private",), file="/f")
    k.spawn("dbg")

    assert k.mem_read(p, a + PAGE_SIZE, 4, by="dbg") == (4, bytes(4))


def test_read_gup_of_fresh_file_page_activates_it(k, p):
    """filemap_nopage marks the new page accessed (referenced), then
    follow_page's FOLL_TOUCH marks it again: activate_page."""
    from pagewalk.kernel.page import PageActive, PageReferenced

    k.add_file("/f", b"F" * PAGE_SIZE, mode="r")
    a = k.mmap(p, PAGE_SIZE, "r", ("private",), file="/f")

    _, pages = k.gup(p, a, 1)

    assert PageActive(pages[0]) and not PageReferenced(pages[0])
    k.put_pages(pages)
