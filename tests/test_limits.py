"""Robustness bounds (issue 10): walks over huge untouched mappings cost the
page tables present, not the size, and give what the page-by-page loop gives;
transfers have a documented limit and large results are summarised."""

from __future__ import annotations

import pytest

import pagewalk.kernel.memory as memory
import pagewalk.kernel.procfs as procfs
from lockrecorder import LockRecorder
from pagewalk import Kernel
from pagewalk.kernel.procfs import numa_maps

PAGE = 4096
GiB = 1 << 30
TiB = 1 << 40


def _slowly(k: Kernel, action) -> tuple:
    """Run ``action`` with a recording scheduler hook installed: the walks
    then take the C's path, page by page (numa_maps) or block by block
    (unmap_vmas), as they must when an explorer could interleave.  Returns
    what ``action`` returned and the recorder."""
    k.sched = rec = LockRecorder(k)
    try:
        return action(), rec
    finally:
        k.sched = None


def _scattered(k: Kernel, p, size: int) -> int:
    """A private mapping of ``size`` with pages written and read in a few
    pte tables, pmd tables and pud tables, the rest untouched."""
    a = k.mmap(p, size, "rw")
    for off in (0, 5 * PAGE, (2 << 20) + PAGE, GiB - PAGE, GiB + (7 << 20), size - PAGE):
        k.write(p, a + off, b"w")
    for off in (3 * PAGE, GiB + (9 << 20), (size // 2) & ~(PAGE - 1)):
        k.read(p, a + off, 1)  # ZERO_PAGE ptes
    return a


def _state(k: Kernel, p) -> tuple:
    """What a teardown leaves behind: every frame's counts and flags, the
    table counts, and the frames the next allocations get (the free lists'
    order)."""
    frames = tuple((pg._count, pg._mapcount, pg.flags) for pg in k.alloc.mem_map)
    b = k.mmap(p, 16 * PAGE, "rw")
    for i in range(16):
        k.write(p, b + i * PAGE, b"n")
    after = tuple(k.page(p, b + i * PAGE).pfn for i in range(16))
    return frames, k.nr_page_table_pages, p.mm.nr_ptes, k.page_tables(p), after


# --- numa_maps ---------------------------------------------------------------------
def _numa_text(profile: str, slow: bool) -> str:
    k = Kernel(profile)
    p = k.spawn("p")
    _scattered(k, p, 3 * GiB)
    k.mmap(p, 64 * PAGE, "r")  # never touched
    return _slowly(k, lambda: numa_maps(p))[0] if slow else numa_maps(p)


@pytest.mark.parametrize("profile", ["2.6.14", "2.6.15"])
def test_numa_maps_skipping_missing_tables_prints_what_the_page_loop_prints(profile):
    fast = _numa_text(profile, slow=False)
    # The 2.6.15 loop, page by page (the 2.6.14 one holds page_table_lock and
    # has no schedule point, so it skips even then): the counts are the same.
    assert fast == _numa_text("2.6.15", slow=True)
    assert "Pages=9" in fast  # six written pages, three zero-page ptes


def test_numa_maps_of_a_terabyte_mapping_looks_up_only_pages_with_tables(monkeypatch):
    k = Kernel("2.6.15")
    p = k.spawn("p")
    a = k.mmap(p, TiB, "r")
    k.mem_write(p, a + 300 * GiB, b"x")  # one pte table (512 ptes)
    calls = []
    real = procfs.follow_page
    monkeypatch.setattr(procfs, "follow_page", lambda *args: calls.append(1) or real(*args))
    assert " Pages=1 " in numa_maps(p)
    assert len(calls) == 512


def test_numa_maps_keeps_a_schedule_point_per_page_when_exploring():
    k = Kernel("2.6.15")
    p = k.spawn("p")
    k.mmap(p, 64 * PAGE, "r")  # no table at all
    _, rec = _slowly(k, lambda: numa_maps(p))
    assert rec.events.count(("cond_resched", "")) == 64


# --- teardown ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "teardown",
    [
        lambda k, p, a, size: k.munmap(p, a, size),
        lambda k, p, a, size: k.munmap(p, a + GiB - (5 << 20), GiB + (13 << 20)),
        lambda k, p, a, size: k.madvise(p, a, size, "dontneed"),
    ],
    ids=["munmap", "munmap-middle", "dontneed"],
)
def test_teardown_skipping_empty_blocks_leaves_what_the_block_loop_leaves(teardown):
    def run(slow: bool) -> tuple:
        k = Kernel()
        p = k.spawn("p")
        size = 3 * GiB
        a = _scattered(k, p, size)
        if slow:
            assert _slowly(k, lambda: teardown(k, p, a, size))[0] == 0
        else:
            assert teardown(k, p, a, size) == 0
        return _state(k, p)

    assert run(slow=False) == run(slow=True)


def test_exit_skipping_empty_blocks_leaves_what_the_block_loop_leaves():
    def run(slow: bool) -> tuple:
        k = Kernel()
        p = k.spawn("p")
        _scattered(k, p, 3 * GiB)
        q = k.spawn("q")
        if slow:
            _slowly(k, lambda: k.exit(p))
        else:
            k.exit(p)
        return _state(k, q)

    assert run(slow=False) == run(slow=True)


def test_munmap_of_an_untouched_64_tib_mapping_zaps_no_empty_block(monkeypatch):
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, 64 * TiB, "r")
    calls = []
    real = memory.unmap_page_range
    monkeypatch.setattr(memory, "unmap_page_range", lambda *args: calls.append(1) or real(*args))
    assert k.munmap(p, a, 64 * TiB) == 0
    # at most the partial blocks at the ends of the missing-table runs
    assert len(calls) <= 2


def test_munmap_keeps_a_schedule_point_per_block_when_exploring():
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, 16 * memory.ZAP_BLOCK_SIZE, "r")  # no table at all
    ret, rec = _slowly(k, lambda: k.munmap(p, a, 16 * memory.ZAP_BLOCK_SIZE))
    assert ret == 0
    assert rec.events.count(("cond_resched", "")) == 16
