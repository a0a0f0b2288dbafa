"""The fault path's page_table_lock before and after Hugh Dickins' push-down
(c74df32c724a "mm: ptd_alloc take ptlock", 8f4e2101fd7d "mm: page fault
handler locking"): ``seed^-ptl-pushdown`` holds the lock over the whole
fault, as v2.6.14 did; ``seed^`` takes it only around the pte update."""

from __future__ import annotations

import pytest

from lockrecorder import LockRecorder
from pagewalk import Kernel
from pagewalk.kernel.semantics import get_semantics

PAGE = 4096
WIDE, NARROW = "seed^-ptl-pushdown", "seed^"


def _ptl_events(k: Kernel, p, action) -> list[str]:
    """The page_table_lock operations, and unlocked pte reads, of ``action``."""
    k.sched = rec = LockRecorder(k)
    try:
        with k.running(p):
            action()
    finally:
        k.sched = None
    return [
        kind if kind != "access" else name
        for kind, name in rec.events
        if name == "p.page_table_lock" or (kind == "access" and name == "read pte")
    ]


def _anon(profile: str):
    k = Kernel(profile)
    p = k.spawn("p")
    addr = k.mmap(p, 2 * PAGE, "rw")
    return k, p, addr


def test_the_profile_is_the_seed_parent_without_the_pushdown():
    wide, narrow = get_semantics(WIDE), get_semantics(NARROW)
    assert not wide.fault_ptl_pushed_down and narrow.fault_ptl_pushed_down
    assert {n: v for n, v in wide.describe().items() if n != "fault_ptl_pushed_down"} == {
        n: v for n, v in narrow.describe().items() if n != "fault_ptl_pushed_down"
    }


def test_wide_lock_write_fault_takes_page_table_lock_twice():
    k, p, addr = _anon(WIDE)
    k.write(p, addr, b"x")  # the page tables exist from here on
    events = _ptl_events(k, p, lambda: k.write(p, addr + PAGE, b"y"))
    assert events == ["lock", "unlock", "lock", "unlock"]


def test_narrowed_lock_write_fault_takes_it_once_after_an_unlocked_peek():
    k, p, addr = _anon(NARROW)
    k.write(p, addr, b"x")
    events = _ptl_events(k, p, lambda: k.write(p, addr + PAGE, b"y"))
    assert events == ["read pte", "lock", "unlock"]


def test_wide_lock_read_fault_maps_the_zero_page_under_one_hold():
    k, p, addr = _anon(WIDE)
    k.write(p, addr, b"x")
    events = _ptl_events(k, p, lambda: k.read(p, addr + PAGE, 1))
    assert events == ["lock", "unlock"]
    assert k.page(p, addr + PAGE) is k.zero_page


def test_wide_lock_first_fault_allocates_tables_with_the_lock_dropped():
    k, p, addr = _anon(WIDE)
    events = _ptl_events(k, p, lambda: k.write(p, addr, b"x"))
    # head; pud, pmd, pte: drop, allocate, retake; the page: drop, retake
    assert events == ["lock"] + ["unlock", "lock"] * 4 + ["unlock"]


def test_narrowed_lock_first_fault_takes_it_per_table_and_for_the_pte():
    k, p, addr = _anon(NARROW)
    events = _ptl_events(k, p, lambda: k.write(p, addr, b"x"))
    assert events == ["lock", "unlock"] * 3 + ["read pte", "lock", "unlock"]


def test_wide_lock_file_fault_drops_the_lock_for_nopage():
    k = Kernel(WIDE)
    p = k.spawn("p")
    k.add_file("/f", b"a" * 2 * PAGE)
    addr = k.mmap(p, 2 * PAGE, "r", file="/f")
    k.read(p, addr, 1)
    events = _ptl_events(k, p, lambda: k.read(p, addr + PAGE, 1))
    assert events == ["lock", "unlock", "lock", "unlock"]


@pytest.mark.parametrize("profile", [WIDE, NARROW])
def test_both_fault_paths_leave_the_same_pages(profile):
    k, p, addr = _anon(profile)
    k.write(p, addr, b"x")
    k.read(p, addr + PAGE, 1)
    assert k.read(p, addr, 1).data == b"x"
    assert k.page(p, addr + PAGE) is k.zero_page
    k.check_invariants()
