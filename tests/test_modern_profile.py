"""The modern profile's switches outside the GUP/COW family (``6.18`` only),
each against the seed (``2.6.15``): what a process can observe -- mapped
pages, mapcounts, rss, fault counts, errnos.  docs/profiles.md lists them;
the host oracle (docs/oracle.md, "Under 6.18") is what found them."""

from __future__ import annotations

import pytest

from pagewalk.kernel.constants import (
    EAGAIN,
    EBADF,
    EFAULT,
    ENOMEM,
    FOLL_DUMP,
    FOLL_GET,
    FOLL_TOUCH,
    PAGE_SIZE,
    VM_LOCKED,
)
from pagewalk.kernel.filemap import page_cache_read
from pagewalk.kernel.kernel import Kernel
from pagewalk.kernel.memory import DUMP_HOLE, follow_page
from pagewalk.kernel.mlock import __mlock_posix_error_return as posix_error
from pagewalk.kernel.page import PG_anon, PG_referenced, page_mapcount
from pagewalk.kernel.pgtable import _PAGE_DIRTY, _PAGE_RW
from pagewalk.kernel.semantics import get_semantics

OLD, NEW = "2.6.15", "6.18"


def _kernel(sem: str, file_pages: int = 0, cached: bool = True) -> tuple[Kernel, object]:
    k = Kernel(sem)
    p = k.spawn("p")
    if file_pages:
        f = k.add_file("/f", b"".join(b"%04d" % i * 1024 for i in range(file_pages)))
        if cached:  # as if just written: every page in the page cache
            for index in range(file_pages):
                page_cache_read(f, index, 0)
    return k, p


def _mapped(k: Kernel, p, addr: int, pages: int) -> list[int]:
    """The page indexes of [addr, addr + pages) that have a present pte."""
    return [i for i in range(pages) if k.page(p, addr + i * PAGE_SIZE) is not None]


def _faults(p) -> int:
    return p.min_flt + p.maj_flt


# --- zero_page_special: a13ea5b75964 ------------------------------------------------
@pytest.mark.parametrize(("sem", "mapcount", "file_rss"), [(OLD, 2, 2), (NEW, 0, 0)])
def test_zero_page_mappings_count_only_before_it_became_special(sem, mapcount, file_rss):
    k, p = _kernel(sem)
    a = k.mmap(p, 2 * PAGE_SIZE, "r")
    k.read(p, a, 2 * PAGE_SIZE)
    assert k.page(p, a) is k.zero_page and k.page(p, a + PAGE_SIZE) is k.zero_page
    assert (page_mapcount(k.zero_page), p.mm._file_rss) == (mapcount, file_rss)
    k.check_invariants()


@pytest.mark.parametrize("sem", [OLD, NEW])
def test_writing_over_the_zero_page_copies_it_and_leaves_its_count_alone(sem):
    k, p = _kernel(sem)
    a = k.mmap(p, PAGE_SIZE, "rw")
    count = k.zero_page._count
    k.read(p, a, 1)
    k.write(p, a, b"x")
    page = k.page(p, a)
    assert page is not k.zero_page and page.flags & PG_anon
    assert (k.zero_page._count, p.mm._anon_rss, p.mm._file_rss) == (count, 1, 0)
    k.check_invariants()


def test_fork_and_exit_leave_the_special_zero_page_unmapped_and_uncounted():
    k, p = _kernel(NEW)
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    k.write(p, a, b"anon")  # an anon_vma: fork copies the ptes
    k.read(p, a + PAGE_SIZE, 1)
    count = k.zero_page._count
    k.fork(p, "c")
    assert k.page("c", a + PAGE_SIZE) is k.zero_page
    assert page_mapcount(k.zero_page) == 0
    k.exit("c")
    k.munmap(p, a, 2 * PAGE_SIZE)
    assert k.zero_page._count == count
    k.check_invariants()


# --- gup_foll_dump: 8e4b9a607189 -----------------------------------------------------
@pytest.mark.parametrize(("sem", "mapped", "faults"), [(OLD, [], 0), (NEW, [0, 1], 2)])
def test_proc_mem_read_of_untouched_anon_faults_the_zero_page_in_only_without_foll_anon(
    sem, mapped, faults
):
    k, p = _kernel(sem)
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    assert k.mem_read(p, a, 2 * PAGE_SIZE) == (2 * PAGE_SIZE, bytes(2 * PAGE_SIZE))
    assert _mapped(k, p, a, 2) == mapped
    assert _faults(p) == faults


@pytest.mark.parametrize(("sem", "mapped"), [(OLD, [0, 1, 2, 3]), (NEW, [0])])
def test_core_dump_faults_in_untouched_anon_only_without_foll_dump(sem, mapped, tmp_path):
    k, p = _kernel(sem)
    a = k.mmap(p, 4 * PAGE_SIZE, "rw")
    k.write(p, a, b"x")  # a pte table: FOLL_ANON does not apply to the other ptes
    size = k.core_dump(p, str(tmp_path / "core"))
    assert size > 0
    assert _mapped(k, p, a, 4) == mapped
    assert _faults(p) == len(mapped)


def test_follow_page_for_a_dump_answers_efault_on_the_zero_page_without_a_reference():
    k, p = _kernel(NEW)
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.read(p, a, 1)  # maps the zero page
    count = k.zero_page._count
    assert follow_page(p.mm, a, FOLL_DUMP | FOLL_GET | FOLL_TOUCH) is DUMP_HOLE
    assert k.zero_page._count == count


@pytest.mark.parametrize("touched", [False, True], ids=["no_page_table", "pte_none"])
def test_follow_page_for_a_dump_answers_efault_on_an_untouched_anonymous_page(touched):
    k, p = _kernel(NEW)
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    if touched:  # the pte table exists; the second pte is none
        k.write(p, a, b"x")
    assert follow_page(p.mm, a + PAGE_SIZE, FOLL_DUMP | FOLL_GET) is DUMP_HOLE


def test_follow_page_for_a_dump_answers_nothing_on_an_uncached_file_page():
    k, p = _kernel(NEW, file_pages=1, cached=False)
    a = k.mmap(p, PAGE_SIZE, "r", file="/f")
    assert follow_page(p.mm, a, FOLL_DUMP | FOLL_GET) is None  # the dump faults it in


# --- fault_around: 8c6e50b0290c -------------------------------------------------------
@pytest.mark.parametrize(("sem", "mapped"), [(OLD, [5]), (NEW, None)])
def test_a_read_fault_maps_the_cached_window_only_with_fault_around(sem, mapped):
    k, p = _kernel(sem, file_pages=20)
    a = k.mmap(p, 20 * PAGE_SIZE, "r", file="/f")
    k.read(p, a + 5 * PAGE_SIZE, 4)
    # 16 pages aligned in the page table, around page 5
    group = ((a >> 12) + 5) // 16
    window = [i for i in range(20) if ((a >> 12) + i) // 16 == group]
    assert len(window) >= 6
    assert _mapped(k, p, a, 20) == (mapped if sem == OLD else window)
    assert _faults(p) == 1
    assert all(page_mapcount(k.page(p, a + i * PAGE_SIZE)) == 1 for i in _mapped(k, p, a, 20))
    k.check_invariants()


@pytest.mark.parametrize("offset", [0, 100, PAGE_SIZE - 1])
def test_fault_around_solves_a_read_fault_at_any_offset_in_the_page(offset):
    # vmf->address is page-aligned: ->nopage (filemap_fault), which would
    # count a read-ahead hit and mark the page accessed, is never asked
    k, p = _kernel(NEW, file_pages=8)
    a = k.mmap(p, 8 * PAGE_SIZE, "r", file="/f")
    k.read(p, a + 2 * PAGE_SIZE + offset, 4)
    assert k.vma(p, a).vm_file.f_ra.mmap_hit == 0
    assert not k.page(p, a + 2 * PAGE_SIZE).flags & PG_referenced


def test_fault_around_is_clamped_to_the_vma():
    k, p = _kernel(NEW, file_pages=40)
    a = k.mmap(p, 3 * PAGE_SIZE, "r", file="/f", offset=10 * PAGE_SIZE)
    k.read(p, a + PAGE_SIZE, 4)
    assert _mapped(k, p, a, 3) == [0, 1, 2]
    assert k.vma(p, a).vm_end == a + 3 * PAGE_SIZE


def test_fault_around_maps_no_page_that_is_not_cached():
    k, p = _kernel(NEW, file_pages=8, cached=False)
    a = k.mmap(p, 8 * PAGE_SIZE, "r", file="/f")
    k.read(p, a + 2 * PAGE_SIZE, 1)  # nothing cached yet: this page alone
    assert _mapped(k, p, a, 8) == [2]
    k.read(p, a, 1)  # the first fault's read-around cached the rest
    assert _mapped(k, p, a, 8) == list(range(8))


@pytest.mark.parametrize(("sem", "faults"), [(OLD, 2), (NEW, 1)])
def test_a_shared_mapping_read_around_is_writable_without_a_fault(sem, faults):
    k, p = _kernel(sem, file_pages=4)
    a = k.mmap(p, 4 * PAGE_SIZE, "rw", flags=("shared",), file="/f")
    k.read(p, a, 1)
    k.write(p, a + 2 * PAGE_SIZE, b"w")
    assert _faults(p) == faults


# --- populate_via_gup: 54cb8821de07 ----------------------------------------------------
@pytest.mark.parametrize(("sem", "mapped"), [(OLD, []), (NEW, [0, 1, 2])])
def test_map_populate_faults_in_a_private_anonymous_mapping(sem, mapped):
    k, p = _kernel(sem)
    a = k.mmap(p, 3 * PAGE_SIZE, "rw", flags=("private", "populate"))
    assert _mapped(k, p, a, 3) == mapped
    assert all(k.page(p, a + i * PAGE_SIZE).flags & PG_anon for i in mapped)
    assert _faults(p) == len(mapped)


def test_map_populate_stops_at_eof_and_still_succeeds():
    k, p = _kernel(NEW, file_pages=2)
    a = k.mmap(p, 4 * PAGE_SIZE, "r", flags=("shared", "populate"), file="/f")
    assert a > 0
    assert _mapped(k, p, a, 4) == [0, 1]


# --- populate_reads_shared: 5ecfda041e4b -----------------------------------------------
@pytest.mark.parametrize(("sem", "faults", "dirty"), [(OLD, 4, True), (NEW, 1, False)])
def test_mlock_of_a_shared_mapping_read_faults_it(sem, faults, dirty):
    k, p = _kernel(sem, file_pages=4)
    a = k.mmap(p, 4 * PAGE_SIZE, "rw", flags=("shared",), file="/f")
    assert k.mlock(p, a, 4 * PAGE_SIZE) == 0
    assert _mapped(k, p, a, 4) == [0, 1, 2, 3]
    assert _faults(p) == faults
    assert bool(k.pte(p, a) & _PAGE_DIRTY) is dirty


# --- mlock_posix_errno ---------------------------------------------------------------
@pytest.mark.parametrize(("sem", "errno"), [(OLD, EFAULT), (NEW, ENOMEM)])
def test_mlock_of_prot_none_fails_with_the_profiles_errno(sem, errno):
    k, p = _kernel(sem)
    a = k.mmap(p, PAGE_SIZE, "")
    assert k.mlock(p, a, PAGE_SIZE) == -errno


@pytest.mark.parametrize(("sem", "ret"), [(OLD, -1), (NEW, -ENOMEM)])
def test_mlock_of_a_file_mapping_past_eof_fails_with_the_profiles_errno(sem, ret):
    # make_pages_present faults in the first page only: 2.6.15 says -1
    # (EPERM); 9978ad583e10 made it EFAULT, reported as ENOMEM (the host's)
    k, p = _kernel(sem, file_pages=1)
    a = k.mmap(p, 3 * PAGE_SIZE, "r", file="/f")
    assert k.mlock(p, a, 3 * PAGE_SIZE) == ret
    assert _mapped(k, p, a, 3) == [0]


@pytest.mark.parametrize(("sem", "errno"), [(OLD, EAGAIN), (NEW, ENOMEM)])
def test_mlock_that_cannot_split_a_vma_fails_with_the_profiles_errno(sem, errno):
    k, p = _kernel(sem)
    a = k.mmap(p, 3 * PAGE_SIZE, "rw")
    k.sysctl_max_map_count = p.mm.map_count  # split_vma: ENOMEM
    assert k.mlock(p, a + PAGE_SIZE, PAGE_SIZE) == -errno


# --- mlock_populates_after_fixup: fed067da46ad ----------------------------------------
@pytest.mark.parametrize(("sem", "mapped"), [(OLD, [0, 1]), (NEW, [])])
def test_mlock_that_runs_into_a_hole_faults_in_only_before_the_populate_split(sem, mapped):
    k, p = _kernel(sem)
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    assert k.mlock(p, a, 3 * PAGE_SIZE) == -ENOMEM  # the third page is a hole
    assert _mapped(k, p, a, 2) == mapped
    assert k.vma(p, a).vm_flags & VM_LOCKED  # locked either way


def test_mlock_faults_in_every_vma_of_the_range_after_locking_them():
    k, p = _kernel(NEW, file_pages=2)
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    k.mmap(p, 2 * PAGE_SIZE, "r", file="/f", addr=a + 2 * PAGE_SIZE, flags=("private", "fixed"))
    assert k.mlock(p, a, 4 * PAGE_SIZE) == 0
    assert _mapped(k, p, a, 4) == [0, 1, 2, 3]


def test_mlock_posix_error_return_translates_efault_and_enomem():
    assert [posix_error(-e) for e in (EFAULT, ENOMEM, EBADF)] == [-ENOMEM, -EAGAIN, -EBADF]


# --- mprotect_unaccounts_unfaulted (v6.7) and mprotect_cows_locked (36f881883c57) ----
@pytest.mark.parametrize(("sem", "vmas"), [(OLD, 3), (NEW, 1)])
def test_an_unfaulted_range_made_writable_and_back_merges_again(sem, vmas):
    k, p = _kernel(sem)
    a = k.mmap(p, 3 * PAGE_SIZE, "r")
    k.mprotect(p, a + PAGE_SIZE, PAGE_SIZE, "rw")  # accounted: VM_ACCOUNT
    k.mprotect(p, a + PAGE_SIZE, PAGE_SIZE, "r")  # no anon_vma: unaccounted again
    assert p.mm.map_count == vmas


@pytest.mark.parametrize(("sem", "vmas"), [(OLD, 1), (NEW, 2)])
def test_a_faulted_and_an_unfaulted_range_made_read_only_stay_apart(sem, vmas):
    k, p = _kernel(sem)
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    k.mlock(p, a, PAGE_SIZE)  # splits; faults the first page in (an anon_vma)
    k.read(p, a + PAGE_SIZE, 1)  # the zero page: still no anon_vma
    k.mprotect(p, a, 2 * PAGE_SIZE, "r")
    k.munlock(p, a, 2 * PAGE_SIZE)  # the flags now differ only in VM_ACCOUNT
    assert p.mm.map_count == vmas


@pytest.mark.parametrize(("sem", "anon"), [(OLD, False), (NEW, True)])
def test_mprotect_of_a_locked_private_file_range_to_writable_breaks_cow(sem, anon):
    k, p = _kernel(sem, file_pages=1)
    a = k.mmap(p, PAGE_SIZE, "r", file="/f")
    assert k.mlock(p, a, PAGE_SIZE) == 0  # maps the page-cache page
    assert k.mprotect(p, a, PAGE_SIZE, "rw") == 0
    assert bool(k.page(p, a).flags & PG_anon) is anon


# --- merge_skips_fork_children: 965f55dea0e3 --------------------------------------------
@pytest.mark.parametrize(("sem", "vmas"), [(OLD, 1), (NEW, 2)])
def test_a_new_mapping_does_not_merge_into_an_anonymous_range_the_child_got_by_fork(sem, vmas):
    k, p = _kernel(sem)
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    k.write(p, a, b"s")  # an anon_vma, which fork hands down
    k.fork(p, "c")
    child = k.task("c")
    k.mmap(child, PAGE_SIZE, "rw", addr=a, flags=("private", "fixed"))
    assert child.mm.map_count == vmas


@pytest.mark.parametrize("sem", [OLD, NEW])
def test_the_parent_merges_a_new_mapping_into_its_own_anonymous_range(sem):
    k, p = _kernel(sem)
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    k.write(p, a, b"s")
    k.fork(p, "c")
    k.mmap(p, PAGE_SIZE, "rw", addr=a, flags=("private", "fixed"))
    assert p.mm.map_count == 1


# --- willneed_anon: 1998cc048901 -------------------------------------------------------
@pytest.mark.parametrize(("sem", "ret"), [(OLD, -EBADF), (NEW, 0)])
def test_willneed_on_anonymous_memory(sem, ret):
    k, p = _kernel(sem)
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    assert k.madvise(p, a, 2 * PAGE_SIZE, "willneed") == ret
    assert _mapped(k, p, a, 2) == []


# --- no_ptracer_past_eof -------------------------------------------------------------
@pytest.mark.parametrize(("sem", "n"), [(OLD, 8), (NEW, 0)])
def test_a_ptracer_reads_past_eof_only_in_the_seed(sem, n):
    k, p = _kernel(sem)
    k.add_file("/short", b"thirteen byte", mode="r")
    k.spawn("debugger")
    a = k.mmap(p, 2 * PAGE_SIZE, "r", file="/short")
    assert k.mem_read(p, a + PAGE_SIZE, 8)[0] == 0  # the owner: SIGBUS -> EIO in both
    assert k.mem_read(p, a + PAGE_SIZE, 8, by="debugger")[0] == n


# --- mprotect_exclusive_writable: 64fe24a3e05e -----------------------------------------
@pytest.mark.parametrize(("sem", "writable", "faults"), [(OLD, False, 2), (NEW, True, 1)])
def test_mprotect_back_to_writable_maps_an_exclusive_page_writable(sem, writable, faults):
    k, p = _kernel(sem)
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"one")
    k.mprotect(p, a, PAGE_SIZE, "r")
    k.mprotect(p, a, PAGE_SIZE, "rw")
    assert bool(k.pte(p, a) & _PAGE_RW) is writable
    k.write(p, a, b"two")
    assert _faults(p) == faults


def test_mprotect_leaves_a_page_shared_by_fork_and_the_zero_page_read_only():
    k, p = _kernel(NEW)
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    k.write(p, a, b"shared")
    k.read(p, a + PAGE_SIZE, 1)
    k.fork(p, "c")
    k.mprotect(p, a, 2 * PAGE_SIZE, "r")
    k.mprotect(p, a, 2 * PAGE_SIZE, "rw")
    assert not k.pte(p, a) & _PAGE_RW and not k.pte(p, a + PAGE_SIZE) & _PAGE_RW


# --- maps_anon_offset_zero ------------------------------------------------------------
@pytest.mark.parametrize("sem", [OLD, NEW])
def test_proc_maps_shows_an_anonymous_offset_only_in_the_seed(sem):
    k, p = _kernel(sem, file_pages=2)
    a = k.mmap(p, PAGE_SIZE, "rw")
    f = k.mmap(p, PAGE_SIZE, "r", file="/f", offset=PAGE_SIZE)
    lines = {
        int(line.split("-")[0], 16): line.split()[2] for line in k.proc_view(p, "maps").splitlines()
    }
    assert lines[a] == (f"{a:08x}" if sem == OLD else "00000000")
    assert lines[f] == "00001000"


# --- the profiles -------------------------------------------------------------------
MODERN = (
    "zero_page_special",
    "gup_foll_dump",
    "fault_around",
    "populate_via_gup",
    "populate_reads_shared",
    "mlock_posix_errno",
    "willneed_anon",
    "no_ptracer_past_eof",
    "mprotect_exclusive_writable",
    "maps_anon_offset_zero",
    "mlock_populates_after_fixup",
    "mprotect_unaccounts_unfaulted",
    "mprotect_cows_locked",
    "merge_skips_fork_children",
)


@pytest.mark.parametrize("switch", MODERN)
def test_modern_switches_are_on_in_6_18_only(switch):
    from pagewalk.kernel.semantics import PROFILES

    assert [name for name, sem in PROFILES.items() if getattr(sem, switch)] == ["6.18"]
    assert getattr(get_semantics(NEW), switch)
