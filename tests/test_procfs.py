"""/proc/PID/maps, smaps and numa_maps as fs/proc/task_mmu.c printed them in
2.6.15 (read at torvalds/linux 705e87c0c3c3, with deceb6cd's change to
get_numa_maps), and the page-table dump."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lockrecorder import LockRecorder
from pagewalk import Kernel
from pagewalk.errors import InputError, ModelFailure
from pagewalk.kernel.page import PG_referenced, page_count, page_mapcount
from pagewalk.kernel.procfs import (
    get_numa_maps,
    numa_maps,
    show_map,
    show_numa_map,
    show_pagetables,
    show_smap,
)
from pagewalk.kernel.semantics import get_semantics

PAGE = 4096
BASE = 0x2AAAAAAAB000  # TASK_UNMAPPED_BASE: where the first mmap lands
GATE = "ffffffffff600000-ffffffffffe00000 ---p 00000000 00:00 0" + " " * 18 + "[vdso]"


def lines(text: str) -> list[str]:
    return text.splitlines()


def pad(prefix: str) -> str:
    """The prefix plus pad_len_spaces: names start at column 73."""
    return prefix + " " * (73 - len(prefix))


def smap_block(text: str, start: int) -> dict[str, int]:
    """The kB fields of the smaps entry whose line starts at ``start``."""
    out = lines(text)
    i = next(n for n, line in enumerate(out) if line.startswith(f"{start:08x}-"))
    return {line.split(":")[0]: int(line.split()[1]) for line in out[i + 1 : i + 7]}


# --- /proc/PID/maps ------------------------------------------------------------------
def test_maps_private_anonymous_line(k, p):
    a = k.mmap(p, 2 * PAGE, "rw")
    # Private anonymous vmas have vm_pgoff = addr >> PAGE_SHIFT, so the offset
    # column shows the start address; no name, so the trailing space stays.
    assert lines(show_map(p))[0] == f"{a:08x}-{a + 2 * PAGE:08x} rw-p {a:08x} 00:00 0 "


def test_maps_private_file_line(k, p):
    f = k.add_file("/data/lib.so", b"x" * 3 * PAGE)
    a = k.mmap(p, 2 * PAGE, "rx", ("private",), file="/data/lib.so", offset=PAGE)
    want = pad(f"{a:08x}-{a + 2 * PAGE:08x} r-xp 00001000 00:00 {f.ino} ") + "/data/lib.so"
    assert lines(show_map(p))[0] == want


def test_maps_shared_file_line(k, p):
    f = k.add_file("/data/shm", b"y" * 2 * PAGE)
    a = k.mmap(p, 2 * PAGE, "rw", ("shared",), file="/data/shm")
    want = pad(f"{a:08x}-{a + 2 * PAGE:08x} rw-s 00000000 00:00 {f.ino} ") + "/data/shm"
    assert lines(show_map(p))[0] == want


def test_maps_shared_anonymous_line_is_deleted_dev_zero(k, p):
    a = k.mmap(p, PAGE, "rw", ("shared",))
    ino = k.vma(p, a).vm_file.ino
    want = pad(f"{a:08x}-{a + PAGE:08x} rw-s 00000000 00:00 {ino} ") + "/dev/zero (deleted)"
    assert lines(show_map(p))[0] == want


def test_maps_read_only_private_mapping_of_shared_flag_letter(k, p):
    # 's' comes from VM_MAYSHARE: a shared mapping opened read-only is still 's'.
    k.add_file("/data/ro", b"z" * PAGE, mode="r")
    a = k.mmap(p, PAGE, "r", ("shared",), file="/data/ro")
    assert lines(show_map(p))[0].startswith(f"{a:08x}-{a + PAGE:08x} r--s ")


def test_maps_ends_with_the_gate_vma_as_vdso(k, p):
    k.mmap(p, PAGE, "rw")
    assert lines(show_map(p))[-1] == GATE


def test_maps_mprotect_of_the_middle_splits_the_vma(k, p):
    a = k.mmap(p, 3 * PAGE, "rw")
    assert k.mprotect(p, a + PAGE, PAGE, "r") == 0
    assert lines(show_map(p))[:3] == [
        f"{a:08x}-{a + PAGE:08x} rw-p {a:08x} 00:00 0 ",
        f"{a + PAGE:08x}-{a + 2 * PAGE:08x} r--p {a + PAGE:08x} 00:00 0 ",
        f"{a + 2 * PAGE:08x}-{a + 3 * PAGE:08x} rw-p {a + 2 * PAGE:08x} 00:00 0 ",
    ]


def test_maps_mprotect_of_the_tail_shows_two_lines(k, p):
    a = k.mmap(p, 2 * PAGE, "rw")
    assert k.mprotect(p, a + PAGE, PAGE, "") == 0
    assert lines(show_map(p)) == [
        f"{a:08x}-{a + PAGE:08x} rw-p {a:08x} 00:00 0 ",
        f"{a + PAGE:08x}-{a + 2 * PAGE:08x} ---p {a + PAGE:08x} 00:00 0 ",
        GATE,
    ]


def test_maps_of_an_exited_process_is_empty(k, p):
    k.mmap(p, PAGE, "rw")
    k.exit(p)
    assert show_map(p) == ""


def test_maps_reading_leaves_no_lock_and_mm_users(k, p):
    k.mmap(p, PAGE, "rw")
    show_map(p)
    assert p.mm.mm_users == 1
    assert not p.mm.mmap_sem.readers


# --- /proc/PID/smaps -----------------------------------------------------------------
def test_smaps_private_dirty_after_writes(k, p):
    a = k.mmap(p, 4 * PAGE, "rw")
    k.write(p, a, b"1")
    k.write(p, a + PAGE, b"2")
    assert smap_block(show_smap(p), a) == {
        "Size": 16,
        "Rss": 8,
        "Shared_Clean": 0,
        "Shared_Dirty": 0,
        "Private_Clean": 0,
        "Private_Dirty": 8,
    }


def test_smaps_zero_page_counts_as_shared_clean(k, p):
    a = k.mmap(p, 2 * PAGE, "rw")
    k.read(p, a, 1)  # the ZERO_PAGE: page_count >= 2 (reserved + pte)
    block = smap_block(show_smap(p), a)
    assert (block["Rss"], block["Shared_Clean"], block["Private_Clean"]) == (4, 4, 0)


def test_smaps_shared_dirty_in_parent_and_child_after_fork(k, p):
    a = k.mmap(p, 2 * PAGE, "rw")
    k.write(p, a, b"1")
    k.write(p, a + PAGE, b"2")
    k.fork(p, "c")
    for tsk in (p, k.task("c")):
        block = smap_block(show_smap(tsk), a)
        assert (block["Rss"], block["Shared_Dirty"], block["Private_Dirty"]) == (8, 8, 0)


def test_smaps_cow_after_fork_makes_the_written_page_private_again(k, p):
    a = k.mmap(p, 2 * PAGE, "rw")
    k.write(p, a, b"1")
    k.write(p, a + PAGE, b"2")
    k.fork(p, "c")
    # do_wp_page copies the first page for the parent: both its new copy and
    # the old page, now mapped by the child alone, have count 1; the second
    # page is still shared by both.
    k.write(p, a, b"3")
    for tsk in (p, k.task("c")):
        block = smap_block(show_smap(tsk), a)
        assert (block["Shared_Dirty"], block["Private_Dirty"]) == (4, 4)


def test_smaps_file_page_mapped_once_is_shared_by_page_count(k, p):
    # The 2.6.15 rule is page_count(page) >= 2, not the mapcount: the page
    # cache's reference makes a file page "shared" even with one mapping.
    k.add_file("/data/f", b"x" * PAGE)
    a = k.mmap(p, PAGE, "r", ("private",), file="/data/f")
    k.read(p, a, 1)
    block = smap_block(show_smap(p), a)
    assert (block["Shared_Clean"], block["Private_Clean"]) == (4, 0)


def test_smaps_gate_vma_has_size_but_no_rss(k, p):
    text = show_smap(p)
    assert lines(text)[0] == GATE
    assert smap_block(text, 0xFFFFFFFFFF600000)["Size"] == 8192
    assert smap_block(text, 0xFFFFFFFFFF600000)["Rss"] == 0


def test_smaps_takes_the_pte_lock_once_per_pte_page(k, p):
    a = k.mmap(p, 4 << 20, "rw")  # spans three pte pages
    k.write(p, a, b"1")
    k.write(p, a + (3 << 20), b"2")
    k.sched = rec = LockRecorder(k)
    try:
        show_smap(p)
    finally:
        k.sched = None
    ptls = [name for ev, name in rec.events if ev == "lock" and name.startswith("ptl:")]
    assert len(ptls) == 2
    sems = [(ev, name) for ev, name in rec.events if ev.startswith("down")]
    assert sems[0] == ("down_read", "p.mmap_sem")
    assert rec.events.count(("cond_resched", "")) == 2


# --- /proc/PID/numa_maps -------------------------------------------------------------
def test_numa_maps_line_format_after_writes(k, p):
    a = k.mmap(p, 2 * PAGE, "rw")
    assert a == BASE
    k.write(p, a, b"1")
    k.write(p, a + PAGE, b"2")
    assert numa_maps(p) == "2aaaaaaab000 default MaxRef=1 Pages=2 Mapped=2 Anon=2 N0=2\n"


def test_numa_maps_counts_zero_page_ptes(k, p):
    a = k.mmap(p, 3 * PAGE, "r")
    k.read(p, a, 1)
    k.read(p, a + PAGE, 1)
    # Two ptes map the ZERO_PAGE: both count, not as Anon, and MaxRef is the
    # zero page's mapcount.
    assert numa_maps(p) == f"{a:08x} default MaxRef=2 Pages=2 Mapped=2 N0=2\n"


def test_numa_maps_maxref_after_fork(k, p):
    a = k.mmap(p, PAGE, "rw")
    k.write(p, a, b"1")
    k.fork(p, "c")
    assert numa_maps(k.task("c")) == f"{a:08x} default MaxRef=2 Pages=1 Mapped=1 Anon=1 N0=1\n"


def test_numa_maps_prints_a_line_when_no_page_is_mapped(k, p):
    a = k.mmap(p, 1 << 30, "r")  # not merged with b: other flags
    b = k.mmap(p, PAGE, "rw")
    k.write(p, b, b"1")
    assert numa_maps(p) == (
        f"{a:08x} default MaxRef=0 Pages=0 Mapped=0\n"
        f"{b:08x} default MaxRef=1 Pages=1 Mapped=1 Anon=1 N0=1\n"
    )


def test_numa_maps_file_pages_are_not_anon(k, p):
    k.add_file("/data/f", b"x" * 2 * PAGE)
    a = k.mmap(p, 2 * PAGE, "r", ("shared",), file="/data/f")
    k.read(p, a + PAGE, 1)
    assert numa_maps(p) == f"{a:08x} default MaxRef=1 Pages=1 Mapped=1 N0=1\n"


def test_numa_maps_gate_vma_prints_nothing(k, p):
    assert numa_maps(p) == ""
    assert show_numa_map(p, k.get_gate_vma(p)) == ""


def test_numa_maps_nodes_of_a_two_node_kernel():
    k = Kernel(nodes=2)
    q = k.spawn("q", node=1)
    a = k.mmap(q, 3 * PAGE, "rw")
    k.write(q, a, b"1")
    k.write(q, a + PAGE, b"2")
    k.read(q, a + 2 * PAGE, 1)  # the ZERO_PAGE lives on node 0
    assert numa_maps(q) == f"{a:08x} default MaxRef=1 Pages=3 Mapped=3 Anon=2 N0=1 N1=2\n"
    k.check_invariants()


def test_get_numa_maps_counts(k, p):
    a = k.mmap(p, 4 * PAGE, "rw")
    k.write(p, a, b"1")
    k.read(p, a + PAGE, 1)
    with k.running(p):
        md = get_numa_maps(k.vma(p, a))
    assert md == {"pages": 2, "anon": 1, "mapped": 2, "mapcount_max": 1, "node": [2]}


def test_get_numa_maps_needs_a_running_task(k, p):
    a = k.mmap(p, PAGE, "rw")
    k.write(p, a, b"1")
    with pytest.raises(InputError):
        get_numa_maps(k.vma(p, a))


@pytest.mark.parametrize(("profile", "marked"), [("2.6.14", True), ("2.6.15", False)])
def test_numa_maps_marks_pages_accessed_only_before_the_patch(profile, marked):
    k = Kernel(profile)
    p = k.spawn("p")
    a = k.mmap(p, PAGE, "rw")
    k.write(p, a, b"1")
    page = k.page(p, a)
    page.flags &= ~PG_referenced
    numa_maps(p)
    assert bool(page.flags & PG_referenced) is marked
    k.check_invariants()


@pytest.mark.parametrize("profile", ["2.6.14", "2.6.15"])
@pytest.mark.parametrize("split_ptlock", [False, True])
def test_numa_maps_leaves_no_lock_and_no_reference(profile, split_ptlock):
    k = Kernel(profile, split_ptlock=split_ptlock)
    p = k.spawn("p")
    a = k.mmap(p, 4 * PAGE, "rw")
    k.write(p, a, b"1")
    k.read(p, a + PAGE, 1)
    k.fork(p, "c")
    before = [(page_count(pg), page_mapcount(pg)) for pg in k.alloc.mem_map]
    numa_maps(p)
    numa_maps(k.task("c"))
    assert [(page_count(pg), page_mapcount(pg)) for pg in k.alloc.mem_map] == before
    assert p.mm.mm_users == 1
    k.check_invariants()  # no lock held, counts as they were


def test_numa_maps_locking_after_the_patch():
    k = Kernel("2.6.15")
    p = k.spawn("p")
    a = k.mmap(p, 3 * PAGE, "rw")
    k.write(p, a, b"1")
    k.sched = rec = LockRecorder(k)
    try:
        numa_maps(p)
    finally:
        k.sched = None
    assert ("lock", "p.page_table_lock") not in rec.events
    # follow_page takes the pte lock for the addresses whose tables exist,
    # and the walk reschedules after every address.
    assert rec.events.count(("cond_resched", "")) == 3
    # m_start's get_task_mm takes task_lock first
    assert rec.events[:3] == [
        ("lock", "p[1].alloc_lock"),
        ("unlock", "p[1].alloc_lock"),
        ("down_read", "p.mmap_sem"),
    ]
    assert rec.events[-1] == ("up_read", "p.mmap_sem")


def test_numa_maps_locking_before_the_patch():
    k = Kernel("2.6.14")
    p = k.spawn("p")
    a = k.mmap(p, 3 * PAGE, "rw")
    k.write(p, a, b"1")
    k.sched = rec = LockRecorder(k)
    try:
        numa_maps(p)
    finally:
        k.sched = None
    # (the mapcount reads, declared accesses, are not locking)
    assert [e for e in rec.events if e[0] != "access"] == [
        ("lock", "p[1].alloc_lock"),  # get_task_mm's task_lock
        ("unlock", "p[1].alloc_lock"),
        ("down_read", "p.mmap_sem"),
        ("lock", "p.page_table_lock"),
        ("unlock", "p.page_table_lock"),
        ("up_read", "p.mmap_sem"),
    ]


# --- the page-table dump -------------------------------------------------------------
def test_pagetables_marks_zero_page_and_counts_tables(k, p):
    a = k.mmap(p, 2 * PAGE, "rw")
    k.read(p, a, 1)
    k.write(p, a + PAGE, b"1")
    b = k.mmap(p, PAGE, "rw", ("private", "fixed"), addr=0x100000000000)
    k.write(p, b, b"2")
    out = lines(show_pagetables(p))
    zero = [line for line in out if line.lstrip().startswith(f"{a:012x} ")]
    assert len(zero) == 1 and "ZERO_PAGE" in zero[0] and "[ro young nx]" in zero[0]
    anon = next(line for line in out if line.lstrip().startswith(f"{a + PAGE:012x} "))
    assert "[rw dirty young nx]" in anon and "anon" in anon and "ZERO_PAGE" not in anon
    assert out[-1] == "summary: pud=2 pmd=2 pte=2 present=3 zero=1 prot_none=0 shared=0"
    assert [line.split()[0] for line in out[:4]] == ["pgd", "pud", "pmd", "pte"]
    assert out[1].startswith("  pud ") and out[2].startswith("    pmd ")
    assert out[3].startswith("      pte ") and out[4].startswith("        ")


def test_pagetables_marks_pages_shared_with_another_process(k, p):
    a = k.mmap(p, PAGE, "rw")
    k.write(p, a, b"1")
    k.fork(p, "c")
    line = next(x for x in lines(show_pagetables(p)) if x.lstrip().startswith(f"{a:012x} "))
    assert "shared" in line and "count=2, mapcount=2" in line
    assert lines(show_pagetables(p))[-1].endswith("shared=1")


def test_pagetables_marks_prot_none_ptes(k, p):
    a = k.mmap(p, PAGE, "rw")
    k.write(p, a, b"1")
    assert k.mprotect(p, a, PAGE, "") == 0
    out = lines(show_pagetables(p))
    line = next(x for x in out if x.lstrip().startswith(f"{a:012x} "))
    assert f"{a:012x} PROT_NONE -> pfn" in line
    assert out[-1] == "summary: pud=1 pmd=1 pte=1 present=1 zero=0 prot_none=1 shared=0"


def test_pagetables_of_an_empty_process(k, p):
    assert show_pagetables(p) == (
        f"pgd pfn {p.mm.pgd.pfn}\n"
        "summary: pud=0 pmd=0 pte=0 present=0 zero=0 prot_none=0 "
        "shared=0\n"
    )


def _huge_mapping_then_smaps(k: Kernel) -> tuple[object, int]:
    k.add_file("/hugetlbfs/f", b"", hugetlb=True)
    q = k.spawn("q")
    a = k.mmap(q, 2 << 20, "rw", ("shared",), file="/hugetlbfs/f")
    k.write(q, a, b"x")
    show_smap(q)
    return q, a


def test_smaps_of_a_hugetlb_vma_clears_its_huge_pmd_and_the_next_access_is_sigbus():
    """2.6.15 walks a hugetlb vma too, and x86-64's pmd_bad is true for a huge
    pmd: pmd_none_or_clear_bad clears it, leaving the page referenced."""
    k = Kernel()
    q, a = _huge_mapping_then_smaps(k)
    assert k.page(q, a) is None
    assert k.read(q, a, 1).signal == "SIGBUS"
    with pytest.raises(ModelFailure, match="rss counters"):
        k.check_invariants()


def test_smaps_skips_a_hugetlb_vma_once_the_profile_has_the_fix():
    k = Kernel(replace(get_semantics("2.6.15"), smaps_skips_hugetlb=True))
    q, a = _huge_mapping_then_smaps(k)
    assert k.page(q, a) is not None
    assert k.read(q, a, 1).data == b"x"
    k.check_invariants()
