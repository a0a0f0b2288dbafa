"""The callers of follow_page / get_user_pages (docs/callers.md): every
example under examples/callers runs clean, and one test per behaviour the
document describes, through the Python API."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from lockrecorder import LockRecorder
from pagewalk import Kernel
from pagewalk.cli import main
from pagewalk.errors import ModelFailure
from pagewalk.kernel.constants import FOLL_ANON, VM_HUGETLB, VM_RESERVED, VSYSCALL_START
from pagewalk.kernel.filemap import truncate_inode_pages
from pagewalk.kernel.futex import _futex_fast_path, _shared_key
from pagewalk.kernel.memory import follow_page
from pagewalk.kernel.page import PG_anon, PG_compound, PG_referenced, page_count
from pagewalk.kernel.pgtable import _PAGE_PSE
from pagewalk.kernel.semantics import get_semantics

PAGE = 4096
HPAGE = 2 << 20
GiB = 1 << 30
TiB = 1 << 40

CALLERS = Path(__file__).parent.parent / "examples" / "callers"
EXAMPLES = sorted(CALLERS.glob("*.toml"))


# --- the examples ------------------------------------------------------------------------
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_caller_example_passes_all_checks(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--check", "--json", "--output-dir", str(tmp_path), str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "ok"
    assert all(c["ok"] for c in out["checks"])


def test_every_caller_section_has_its_example() -> None:
    names = {p.name for p in EXAMPLES}
    assert names >= {
        "ptrace_forced_write.toml",
        "ptrace_readonly_shared.toml",
        "gup_pins.toml",
        "futex_keys.toml",
        "numa_maps.toml",
        "core_dump_sparse.toml",
        "hugetlb_fork.toml",
        "gate_and_stack.toml",
    }


# --- the gate area -------------------------------------------------------------------------
def test_gate_page_is_readable_through_mem_read_and_gup() -> None:
    k = Kernel()
    p = k.spawn("p")
    k.spawn("debugger")
    assert k.mem_read(p, VSYSCALL_START, 8, by="debugger") == (8, bytes(8))
    before = page_count(k.vsyscall_page)
    ret, pages = k.gup(p, VSYSCALL_START, 1)
    assert (ret, pages) == (1, [k.vsyscall_page])
    assert page_count(k.vsyscall_page) == before + 1
    k.put_pages(pages)
    assert page_count(k.vsyscall_page) == before
    # only the first page of the area is mapped: a second page ends the run
    ret, pages = k.gup(p, VSYSCALL_START, 2)
    assert ret == 1
    k.put_pages(pages)
    assert k.page_tables(p) == 0  # the kernel's own table, nothing in the process
    k.check_invariants()


def test_gate_page_write_is_efault() -> None:
    k = Kernel()
    p = k.spawn("p")
    assert k.mem_write(p, VSYSCALL_START, b"x") == 0  # access_process_vm: 0 bytes
    assert k.gup(p, VSYSCALL_START, 1, write=True, force=True) == (-14, [])
    k.check_invariants()


# --- stack growth --------------------------------------------------------------------------
STACK = 0x7FFFFF100000  # not 2 MiB-aligned: the page below shares the stack's pte table


def test_mem_read_below_a_growsdown_vma_grows_it_and_maps_the_page() -> None:
    k = Kernel()
    p = k.spawn("p")
    k.spawn("debugger")
    assert k.mmap(p, 4 * PAGE, "rw", ("private", "growsdown"), addr=STACK) == STACK
    assert k.write(p, STACK + 4 * PAGE - 8, b"top").signal is None  # the pte table exists
    assert k.mem_read(p, STACK - PAGE + 16, 8, by="debugger") == (8, bytes(8))
    vma = k.vma(p, STACK)
    assert (vma.vm_start, vma.vm_end) == (STACK - PAGE, STACK + 4 * PAGE)
    assert k.page(p, STACK - PAGE) is k.zero_page  # a read fault mapped it
    k.check_invariants()


def test_mem_read_below_a_vma_without_growsdown_is_refused() -> None:
    k = Kernel()
    p = k.spawn("p")
    k.spawn("debugger")
    assert k.mmap(p, 4 * PAGE, "rw", addr=STACK) == STACK
    k.write(p, STACK, b"x")
    assert k.mem_read(p, STACK - PAGE, 8, by="debugger") == (0, b"")
    assert k.gup(p, STACK - PAGE, 1) == (-14, [])
    assert k.vma(p, STACK - PAGE) is None
    assert k.vma(p, STACK).vm_start == STACK
    k.check_invariants()


def test_growing_a_locked_stack_faults_the_new_pages_in() -> None:
    k = Kernel()
    p = k.spawn("p")
    k.mmap(p, PAGE, "rw", ("private", "growsdown", "locked"), addr=STACK)
    assert k.mem_read(p, STACK - 4 * PAGE, 8) == (8, bytes(8))
    for i in range(1, 5):  # make_pages_present write-faulted each new page
        page = k.page(p, STACK - i * PAGE)
        assert page is not None and page.flags & PG_anon
    assert p.mm.locked_vm == 5
    k.check_invariants()


def test_a_debugger_growing_a_locked_stack_faults_in_its_own_mm() -> None:
    """Kernel quirk, modelled faithfully: find_extend_vma calls
    make_pages_present(addr, start), which works on current->mm -- the
    debugger's -- not on the target's mm (reference 3.10 and 4.4)."""
    k = Kernel()
    p = k.spawn("p")
    d = k.spawn("debugger")
    k.mmap(p, PAGE, "rw", ("private", "growsdown", "locked"), addr=STACK)
    k.mmap(d, 256 * PAGE, "rw", addr=STACK - 128 * PAGE)  # covers the range in the debugger
    assert k.mem_read(p, STACK - 4 * PAGE, 8, by=d) == (8, bytes(8))
    assert k.page(p, STACK - 4 * PAGE) is k.zero_page  # the target: only the read's fault
    assert k.page(p, STACK - PAGE) is None
    assert all(k.page(d, STACK - i * PAGE) is not None for i in range(1, 5))
    k.check_invariants()


def test_a_debugger_vma_ending_inside_the_growth_hits_make_pages_present_bug() -> None:
    """The same quirk: make_pages_present's BUG_ON(end > vma->vm_end) fires on
    the debugger's own vma."""
    k = Kernel()
    p = k.spawn("p")
    d = k.spawn("debugger")
    k.mmap(p, PAGE, "rw", ("private", "growsdown", "locked"), addr=STACK)
    k.mmap(d, 6 * PAGE, "rw", addr=STACK - 8 * PAGE)  # ends 2 pages below the old start
    with pytest.raises(ModelFailure, match=r"end > vma->vm_end"):
        k.mem_read(p, STACK - 4 * PAGE, 8, by=d)


# --- get_futex_key -------------------------------------------------------------------------
def test_futex_key_errnos() -> None:
    k = Kernel()
    p = k.spawn("p")
    anon = k.mmap(p, PAGE, "rw")
    none = k.mmap(p, PAGE, "")
    assert k.futex_key(p, anon + 2) == -22  # EINVAL: not 4-byte aligned
    assert k.futex_key(p, 0x1000) == -14  # EFAULT: no vma
    assert k.futex_key(p, none) == -13  # EACCES: no VM_READ
    assert k.futex_key(p, VSYSCALL_START) == -14  # the gate area is no vma
    k.check_invariants()


def test_futex_key_texts() -> None:
    k = Kernel()
    p = k.spawn("p")
    k.add_file("/f", bytes(2 * PAGE))
    k.add_file("/ro", bytes(PAGE), mode="r")
    shared = k.mmap(p, PAGE, "rw", ["shared"], file="/f", offset=PAGE)
    shared_ro = k.mmap(p, PAGE, "r", ["shared"], file="/ro")
    private_file = k.mmap(p, PAGE, "rw", ["private"], file="/f")
    anon = k.mmap(p, PAGE, "rw")
    assert k.futex_key(p, shared + 12) == "shared inode=1 (/f) pgoff=1 offset=13"
    # VM_MAYSHARE without VM_SHARED (a file opened read-only) is still an inode key
    assert k.futex_key(p, shared_ro) == "shared inode=2 (/ro) pgoff=0 offset=1"
    assert k.futex_key(p, private_file + 4) == f"private mm=p uaddr={private_file:#x} offset=4"
    assert k.futex_key(p, anon + 8) == f"private mm=p uaddr={anon:#x} offset=8"
    assert k.page_tables(p) == 0  # linear vmas: the page itself is never looked up
    k.check_invariants()


@pytest.mark.parametrize(("profile", "page_table_lock"), [("2.6.14", True), ("2.6.15", False)])
def test_futex_fast_path_called_directly(profile: str, page_table_lock: bool) -> None:
    """The nonlinear-only fast path cannot be reached (no VM_NONLINEAR vmas);
    called directly it finds the page with or without page_table_lock per the
    profile switch futex_fast_path_inner_ptlock, and leaves the count as it was."""
    k = Kernel(profile)
    p = k.spawn("p")
    f = k.add_file("/f", b"futex")
    addr = k.mmap(p, PAGE, "rw", ["shared"], file="/f")
    k.read(p, addr, 1)
    page = k.page(p, addr)
    before = page_count(page)
    page.flags &= ~PG_referenced
    k.sched = rec = LockRecorder(k)
    try:
        with k.running(p):
            found = _futex_fast_path(p, addr)
    finally:
        k.sched = None
    assert found is page
    assert ("p.page_table_lock" in rec.locks_taken()) is page_table_lock
    assert page.flags & PG_referenced  # FOLL_TOUCH, or the old lookup's marking
    key = _shared_key(1, f, found, k.alloc)
    assert str(key) == "shared inode=1 (/f) pgoff=0 offset=1"
    assert page_count(page) == before
    k.check_invariants()


# --- get_numa_maps -------------------------------------------------------------------------
@pytest.mark.parametrize(("profile", "referenced"), [("2.6.14", True), ("2.6.15", False)])
def test_numa_maps_marks_pages_referenced_only_before_the_patch(
    profile: str, referenced: bool
) -> None:
    k = Kernel(profile, nodes=2)
    p = k.spawn("p", node=1)
    k.add_file("/lib", b"x" * 3 * PAGE)
    heap = k.mmap(p, 4 * PAGE, "rw")
    k.write(p, heap, b"one")
    k.read(p, heap + PAGE, 1)  # the ZERO_PAGE, on node 0
    lib = k.mmap(p, 3 * PAGE, "r", file="/lib")
    k.read(p, lib, 1)
    pages = [k.page(p, heap), k.page(p, lib)]
    for page in pages:
        page.flags &= ~PG_referenced
    text = k.proc_view(p, "numa_maps")
    assert text == (
        f"{heap:08x} default MaxRef=1 Pages=2 Mapped=2 Anon=1 N0=1 N1=1\n"
        f"{lib:08x} default MaxRef=1 Pages=1 Mapped=1 N1=1\n"
    )
    assert [bool(pg.flags & PG_referenced) for pg in pages] == [referenced, referenced]
    k.check_invariants()


# --- elf_core_dump -------------------------------------------------------------------------
def test_core_dump_of_the_terabyte_example_is_fast_and_allocates_no_tables(
    tmp_path: Path,
) -> None:
    """examples/callers/core_dump_sparse.toml through the API."""
    k = Kernel()
    p = k.spawn("p")
    big = k.mmap(p, TiB, "r")
    assert k.mem_write(p, big + 300 * GiB + 5 * PAGE + 7, b"core") == 4
    assert k.page_tables(p) == 3
    start = time.perf_counter()
    size = k.core_dump(p, str(tmp_path / "sparse.core"))
    elapsed = time.perf_counter() - start
    assert elapsed < 5
    assert size == (tmp_path / "sparse.core").stat().st_size > TiB
    assert k.page_tables(p) == 3  # no new page table
    k.check_invariants()


# --- hugetlb -------------------------------------------------------------------------------
def huge(k: Kernel, path: str = "/hugetlbfs/f") -> str:
    k.add_file(path, b"", hugetlb=True)
    return path


def test_hugetlb_mmap_needs_a_2mib_multiple() -> None:
    k = Kernel()
    p = k.spawn("p")
    f = huge(k)
    assert k.mmap(p, HPAGE + PAGE, "rw", ["shared"], file=f) == -22
    assert k.mmap(p, PAGE, "rw", ["shared"], file=f) == -22
    assert k.page_tables(p) == 0
    k.check_invariants()


def test_hugetlb_mmap_prefaults_huge_pmds() -> None:
    k = Kernel()
    p = k.spawn("p")
    f = huge(k)
    a = k.mmap(p, 2 * HPAGE, "rw", ["shared"], file=f)
    assert a > 0 and a % HPAGE == 0
    assert k.vma(p, a).vm_flags & (VM_HUGETLB | VM_RESERVED) == VM_HUGETLB | VM_RESERVED
    assert k.page_tables(p) == 2  # a pud and a pmd page; the pmds map the pages
    assert k.pte(p, a) & _PAGE_PSE
    assert p.mm._file_rss == 2 * 512
    head = k.page(p, a)
    assert page_count(head) == 2  # the page cache and the pmd
    assert k.write(p, a + HPAGE + 5, b"huge").signal is None  # no fault needed
    assert k.read(p, a + HPAGE + 5, 4).data == b"huge"
    assert (p.min_flt, p.maj_flt) == (0, 0)
    k.check_invariants()


def test_follow_page_stops_at_pmd_bad_for_a_huge_pmd() -> None:
    """x86-64 pmd_bad() is true for a PSE pmd: follow_page goes to
    no_page_table and never reaches its pmd_huge() branch."""
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, HPAGE, "rw", ["shared"], file=huge(k))
    with k.running(p):
        assert follow_page(p.mm, a, 0) is None
        assert follow_page(p.mm, a, FOLL_ANON) is k.zero_page
    k.check_invariants()


def test_hugetlb_fork_shares_the_huge_page() -> None:
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, HPAGE, "rw", ["shared"], file=huge(k))
    k.write(p, a, b"parent")
    assert k.fork(p, "c") > 0
    c = k.task("c")
    assert k.page(c, a) is k.page(p, a)  # the same frame
    assert page_count(k.page(p, a)) == 3
    assert c.mm._file_rss == 512
    assert k.page_tables(c) == 2
    k.write(c, a + 8, b"child")
    assert k.read(p, a, 13).data == b"parent\0\0child"
    k.check_invariants()


def test_hugetlb_gup_is_efault_because_of_vm_reserved() -> None:
    """At deceb6cd get_user_pages refuses VM_IO|VM_RESERVED vmas before its
    hugetlb branch, and hugetlbfs_file_mmap sets VM_RESERVED."""
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, HPAGE, "rw", ["shared"], file=huge(k))
    count = page_count(k.page(p, a))
    assert k.gup(p, a, 1) == (-14, [])
    assert k.gup(p, a, 1, write=True, force=True) == (-14, [])
    assert k.mem_read(p, a, 4) == (0, b"")
    assert k.mlock(p, a, HPAGE) == -14  # make_pages_present's get_user_pages
    assert page_count(k.page(p, a)) == count
    k.check_invariants()


def test_hugetlb_dontneed_is_einval_and_mprotect_eacces() -> None:
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, HPAGE, "rw", ["shared"], file=huge(k))
    assert k.madvise(p, a, HPAGE, "dontneed") == -22
    assert k.mprotect(p, a, HPAGE, "r") == -13
    assert k.page(p, a) is not None
    k.check_invariants()


def test_hugetlb_munmap_of_an_aligned_part_works_an_unaligned_one_is_einval() -> None:
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, 2 * HPAGE, "rw", ["shared"], file=huge(k))
    assert k.munmap(p, a + PAGE, PAGE) == -22
    assert k.munmap(p, a, HPAGE + PAGE) == -22
    assert p.mm._file_rss == 1024
    assert k.munmap(p, a + HPAGE, HPAGE) == 0
    assert p.mm._file_rss == 512
    assert k.vma(p, a + HPAGE) is None
    assert k.page(p, a) is not None
    assert k.munmap(p, a, HPAGE) == 0
    assert (p.mm._file_rss, k.page_tables(p)) == (0, 0)
    k.check_invariants()


def test_hugetlb_pages_go_back_to_the_pool_when_the_file_cache_drops_them() -> None:
    """After every mapper exits the file's page cache is the only holder
    (count 1): the pages stay in the file, off the pool's free list, until the
    cache lets them go (hugetlbfs truncate_hugepages -> put_page -> the
    compound destructor free_huge_page)."""
    k = Kernel()
    p = k.spawn("p")
    f = huge(k)
    a = k.mmap(p, 2 * HPAGE, "rw", ["shared"], file=f)
    heads = [k.page(p, a), k.page(p, a + HPAGE)]
    k.fork(p, "c")
    k.exit("c")
    k.exit(p)
    pool = k.hugetlb_pool
    assert [page_count(h) for h in heads] == [1, 1]
    assert pool.free == [[]] and pool.nr_huge_pages == 2
    k.check_invariants()
    truncate_inode_pages(k.files[f].mapping)
    assert sorted(h.pfn for h in pool.free[0]) == sorted(h.pfn for h in heads)
    k.check_invariants()
    q = k.spawn("q")  # the next mapping takes a page from the free list
    b = k.mmap(q, HPAGE, "rw", ["shared"], file=f)
    assert k.page(q, b) in heads and pool.nr_huge_pages == 2
    k.check_invariants()


def test_hugetlb_mmap_at_an_offset_that_is_not_2mib_aligned_is_einval() -> None:
    k = Kernel()
    p = k.spawn("p")
    f = huge(k)
    k.mmap(p, 2 * HPAGE, "rw", ["shared"], file=f)
    assert k.mmap(p, HPAGE, "rw", ["shared"], file=f, offset=PAGE) == -22


def test_hugetlb_private_writable_mmap_is_einval() -> None:
    k = Kernel()
    p = k.spawn("p")
    assert k.mmap(p, HPAGE, "rw", ["private"], file=huge(k)) == -22


def test_hugetlb_read_only_mmap_past_the_end_of_the_file_is_enomem() -> None:
    k = Kernel()
    p = k.spawn("p")
    f = huge(k)
    assert k.mmap(p, HPAGE, "r", ["shared"], file=f) == -12
    assert k.files[f].i_size == 0


def test_hugetlb_munmap_of_a_length_past_the_last_huge_vma_unmaps_it() -> None:
    """2.6.15's do_munmap has no hugetlb length test: only split_vma checks
    the alignment, and nothing is split when the range ends above the vma."""
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, HPAGE, "rw", ["shared"], file=huge(k))
    assert k.vma(p, a + HPAGE) is None
    assert k.munmap(p, a, HPAGE + PAGE) == 0
    assert k.vma(p, a) is None
    assert (p.mm._file_rss, k.page_tables(p)) == (0, 0)
    k.check_invariants()


def _willneed_then_map_three_huge_pages(k: Kernel) -> tuple[object, int]:
    """p maps two huge pages and asks WILLNEED over them; q then maps three."""
    p = k.spawn("p")
    f = huge(k)
    a = k.mmap(p, 2 * HPAGE, "rw", ["shared"], file=f)
    assert k.madvise(p, a, 2 * HPAGE, "willneed") == 0
    q = k.spawn("q")
    return k.files[f].mapping, k.mmap(q, 3 * HPAGE, "rw", ["shared"], file=f)


def test_willneed_on_hugetlbfs_leaves_4k_pages_that_a_later_mmap_maps_as_huge() -> None:
    """2.6.15: hugetlbfs has a ->readpage (which fails), so readahead fills the
    4 KiB indices 2..1023 of the 4 MiB file; huge index 2 is one of them."""
    k = Kernel()
    mapping, b = _willneed_then_map_three_huge_pages(k)
    small = mapping.page_tree[2]
    assert not small.flags & PG_compound
    assert k.page("q", b + 2 * HPAGE) is small
    with pytest.raises(ModelFailure, match="huge pmd"):
        k.check_invariants()


def test_willneed_on_hugetlbfs_is_refused_once_hugetlbfs_has_no_readpage() -> None:
    k = Kernel(replace(get_semantics("2.6.15"), hugetlbfs_without_readpage=True))
    mapping, b = _willneed_then_map_three_huge_pages(k)
    assert all(page.flags & PG_compound for page in mapping.page_tree.values())
    assert k.page("q", b + 2 * HPAGE) is mapping.page_tree[2]
    k.check_invariants()
