"""DPOR soundness regressions: one minimal scenario per root cause the
differential test (test_dpor_differential.py) found.  Each must reach, under
``dpor``, exactly the final states and the verdict an exhaustive ``dfs``
reaches."""

from __future__ import annotations

from array import array

import pytest

from dpor_diff import compare
from pagewalk import Kernel
from pagewalk.explore.api import explore
from pagewalk.kernel.locks import spin_lock, spin_unlock, spinlock_t
from pagewalk.scenario.loader import parse_scenario
from pagewalk.sched.scheduler import R, Scheduler, W


def assert_dpor_matches_dfs(text: str) -> None:
    # an exit's exit_mm and the threads' signal checks are schedule points:
    # the child-exit case takes about 8,000 dfs executions
    c = compare(text, "regression.toml", max_dfs=20_000)
    assert c.complete, "the dfs must finish for the comparison to mean anything"
    assert not c.differs, c.report(text, "regression.toml")


# Two readers of mmap_sem and one writer: the writer races with both reads.
# The explorer used to reverse only the last race of each step, so it never
# ran "r2 reads, munmap, r1 reads" (r1 EFAULT, r2 a key).
MUNMAP_VS_TWO_READERS = """
name = "munmap_vs_two_readers"
[[setup]]
op = "mmap"
length = 4096
as = "a"
[[thread]]
name = "unmapper"
ops = [{ op = "munmap", addr = "a", length = 4096 }]
[[thread]]
name = "r1"
ops = [{ op = "futex_key", addr = "a" }]
[[thread]]
name = "r2"
ops = [{ op = "futex_key", addr = "a" }]
"""


def test_a_write_racing_with_two_reads_is_reversed_with_each():
    assert_dpor_matches_dfs(MUNMAP_VS_TWO_READERS)


def test_every_combination_of_two_readers_and_an_unmapper_is_reached():
    res = explore(
        parse_scenario(MUNMAP_VS_TWO_READERS, "r.toml"),
        strategy="dpor",
        collect=True,
        stop_first=False,
        shorten=False,
    )
    outcomes = set()
    for results, _files, _pages, _pins in res.observations:
        by_step = {step: errno for step, _value, errno, _signal, _data in results}
        outcomes.add((by_step["r1[0]"], by_step["r2[0]"]))
    assert outcomes == {(None, None), (None, "EFAULT"), ("EFAULT", None), ("EFAULT", "EFAULT")}


# Two threads that use different addresses commute; the final-state summary
# used to list the addresses in the order the schedule first used them, so
# the two orders looked like two states and dfs "found" one dpor had not.
TWO_ADDRESSES = """
name = "two_addresses"
[[setup]]
op = "mmap"
length = 8192
as = "a"
[[thread]]
name = "t0"
ops = [{ op = "futex_key", addr = "a" }]
[[thread]]
name = "t1"
ops = [{ op = "futex_key", addr = "a+4096" }]
"""


def test_threads_on_different_addresses_end_in_one_state():
    assert_dpor_matches_dfs(TWO_ADDRESSES)
    res = explore(
        parse_scenario(TWO_ADDRESSES, "t.toml"), strategy="dfs", collect=True, stop_first=False
    )
    assert len(res.observations) == 1


def test_final_states_are_observed_before_no_leaks_exits_the_processes():
    text = TWO_ADDRESSES + '[[check]]\nkind = "no_leaks"\n'
    res = explore(parse_scenario(text, "t.toml"), strategy="dpor", collect=True)
    [(_results, _files, pages, _pins)] = res.observations
    assert [entry[2] for entry in pages] == ["absent", "absent"]


# munmap frees the pte page (pmd_clear, under mmap_sem only) in the step of
# its zap's lock, and a user load after that walks to a missing table, whose
# footprint key is page_table_lock, not the freed table's lock: the two steps
# looked independent, so "load, then munmap" (the load reads 'x') was never
# run.  free_pte_range now declares the pmd_clear with both keys.
LOAD_VS_MUNMAP = """
name = "load_vs_munmap"
[[setup]]
op = "mmap"
length = 4096
as = "a"
[[setup]]
op = "write"
addr = "a"
data = "x"
[[thread]]
name = "unmapper"
ops = [{ op = "munmap", addr = "a", length = 4096 }]
[[thread]]
name = "reader"
ops = [{ op = "read", addr = "a", length = 1 }]
"""


def test_a_load_racing_with_the_freeing_of_its_page_table_is_reversed():
    assert_dpor_matches_dfs(LOAD_VS_MUNMAP)


# A page that fork shares is mapped by ptes of two mms, under two pte locks;
# the child's exit unmaps it (mapcount 2 -> 1) under its lock while the
# parent's numa_maps reads the mapcount under the parent's: the steps looked
# independent and "MaxRef=2" (numa_maps first) was never reached.  Changes of
# a page that another pte maps, and reads of its mapcount, are now declared.
NUMA_MAPS_VS_CHILD_EXIT = """
name = "numa_maps_vs_child_exit"
[[setup]]
op = "mmap"
length = 4096
as = "a"
[[setup]]
op = "write"
addr = "a"
data = "x"
[[setup]]
op = "fork"
as = "c"
[[thread]]
name = "child"
process = "c"
ops = [{ op = "exit" }]
[[thread]]
name = "parent"
ops = [{ op = "numa_maps" }]
"""


def test_a_mapcount_read_racing_with_another_mms_unmap_is_reversed():
    assert_dpor_matches_dfs(NUMA_MAPS_VS_CHILD_EXIT)


# numa_maps reads the mapcount after dropping the pte lock (as the C does),
# so it can read that of a page MADV_DONTNEED has just unmapped ("Mapped=0"
# for a page it counted): an unmap must be declared even when no other pte
# maps the page.
NUMA_MAPS_VS_DONTNEED = """
name = "numa_maps_vs_dontneed"
semantics = "2.6.22"
[[setup]]
op = "mmap"
length = 4096
as = "a"
[[setup]]
op = "write"
addr = "a"
data = "x"
[[thread]]
name = "reader"
ops = [{ op = "numa_maps" }]
[[thread]]
name = "discarder"
ops = [{ op = "madvise", addr = "a", length = 4096, advice = "dontneed" }]
"""


def test_a_mapcount_read_after_the_pte_lock_races_with_the_unmap():
    assert_dpor_matches_dfs(NUMA_MAPS_VS_DONTNEED)


# MADV_DONTNEED over a range with no page tables yet walks the pgd/pud/pmd
# entries without a lock and finds nothing to zap; the first fault of
# another thread populates them under page_table_lock.  The walk was not a
# schedule point at all, so "fault, then DONTNEED" (the page discarded) was
# never run.  unmap_page_range now declares its walk before it reads.
DONTNEED_VS_FIRST_FAULT = """
name = "dontneed_vs_first_fault"
semantics = "2.6.22"
[[setup]]
op = "mmap"
length = 4096
as = "a"
[[thread]]
name = "discarder"
ops = [{ op = "madvise", addr = "a", length = 4096, advice = "dontneed" }]
[[thread]]
name = "writer"
ops = [{ op = "write", addr = "a", data = "w" }]
"""


def test_a_zap_walk_over_missing_tables_races_with_the_fault_populating_them():
    assert_dpor_matches_dfs(DONTNEED_VS_FIRST_FAULT)


# A COW break and a get_user_pages of the same page in one mm.  do_wp_page's
# pte-lock section has a point inside it (page_remove_rmap's mapcount
# update) before the pte write that maps the copy.  The section used to be
# judged at the task's next point -- that inner one, before the write -- so
# it counted as a read, commuted with follow_page's read-only section, and
# dpor never ran "gup first, then the COW": the gup holds the old page while
# the parent maps the copy.  A section is now judged at its unlock.
COW_VS_GUP = """
name = "cow_section_vs_gup"
[[process]]
name = "parent"
[[setup]]
op = "mmap"
length = 4096
prot = "rw"
flags = ["private"]
as = "buf"
[[setup]]
op = "write"
addr = "buf"
data = "before"
[[setup]]
op = "fork"
as = "child"
[[thread]]
name = "writer"
process = "parent"
ops = [{ op = "write", addr = "buf", data = "after" }]
[[thread]]
name = "getter"
process = "parent"
ops = [{ op = "gup", addr = "buf", pages = 1, as = "g" }]
[[check]]
kind = "pinned"
pins = "g"
process = "parent"
addr = "buf"
"""


@pytest.mark.parametrize("semantics", ["2.6.15", "4.8.3", "6.18"])
def test_dpor_runs_the_gup_before_the_cow_that_replaces_its_page(semantics: str) -> None:
    sc = parse_scenario(COW_VS_GUP, "r.toml")
    res = explore(sc, semantics, "dpor", stop_first=False)
    assert res.status == "violation"
    assert res.violation.message.startswith("pinned: g holds pfn")


def test_a_section_with_a_point_inside_reaches_the_states_of_dfs() -> None:
    assert_dpor_matches_dfs(COW_VS_GUP)


def test_nested_sections_are_each_judged_at_their_own_unlock() -> None:
    # fork's copy_pte_range holds the child's pte lock while it takes the
    # parent's: the outer section's writes come after the inner lock's point
    k = Kernel()
    outer, inner = spinlock_t(k, "outer"), spinlock_t(k, "inner")
    outer.guards, inner.guards = array("Q", [0]), array("Q", [0])

    def body() -> None:
        spin_lock(outer)
        spin_lock(inner)
        outer.guards[0] = 1  # the outer lock's memory, written inside the inner section
        spin_unlock(inner)
        spin_unlock(outer)

    sched = Scheduler(k)
    sched.add_task("copier", body, None)
    k.sched = sched
    try:
        assert sched.run() == "ok"
    finally:
        k.sched = None
    modes = {ev.obj.name: ev.footprint for _, ev in sched.steps if ev.obj is not None}
    assert modes == {"outer": (("outer", W),), "inner": (("inner", R),)}


# The same race with no check and the reference dropped in ``final``: which
# page the gup held shows only in the final states' pin views, which is what
# lets the dpor-vs-dfs differential test see a search that misses the order.
COW_VS_GUP_RELEASED = (
    COW_VS_GUP.split("[[check]]")[0]
    + """
[[final]]
op = "put_pages"
pins = "g"
"""
)


def test_final_states_tell_which_page_a_released_gup_held() -> None:
    sc = parse_scenario(COW_VS_GUP_RELEASED, "r.toml")
    res = explore(sc, "4.8.3", "dpor", collect=True, stop_first=False)
    assert {obs[3] for obs in res.observations} == {(("g", "same"),), (("g", "other"),)}
