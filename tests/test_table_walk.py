"""inspect.table_walk: the walk of an mm's tables that the invariants and the
explorer's page_table_lock guard read, memoised by the tables' contents.
A stale memo would hide a table from both, so every test compares it with
the plain generator walk (``walk_tables``) after the tables change."""

from __future__ import annotations

from pagewalk import Kernel
from pagewalk.kernel.constants import PAGE_SIZE
from pagewalk.kernel.inspect import table_walk, walk_tables
from pagewalk.kernel.mm import PageTablesGuard

#: 2 GiB: far enough apart to need a new pmd and pud page
BIG = 2 << 30


def walked(k: Kernel, mm) -> tuple[list[int], list[int]]:
    """(upper, pte) frames as the generator walk finds them."""
    upper = [pfn for level, _, pfn in walk_tables(k, mm) if level > 1]
    ptes = [pfn for level, _, pfn in walk_tables(k, mm) if level == 1]
    return upper, ptes


def memo(k: Kernel, mm) -> tuple[list[int], list[int]]:
    _raws, upper, ptes, _huge = table_walk(k.alloc.mem_map, mm)
    return list(upper), list(ptes)


def test_a_new_pte_table_is_seen_after_a_walk_was_memoised():
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, 4 * BIG, "rw")
    k.write(p, a, b"x")
    before = memo(k, p.mm)
    k.write(p, a + BIG, b"y")
    assert memo(k, p.mm) == walked(k, p.mm)
    assert len(memo(k, p.mm)[1]) == len(before[1]) + 1


def test_freed_tables_leave_the_walk():
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, 4 * BIG, "rw")
    for n in range(4):
        k.write(p, a + n * BIG, b"x")
    full = memo(k, p.mm)
    k.munmap(p, a + 2 * BIG, 2 * BIG)
    assert memo(k, p.mm) == walked(k, p.mm)
    assert len(memo(k, p.mm)[1]) < len(full[1])


def test_another_kernel_with_the_same_pgd_frame_gets_its_own_walk():
    # same allocation order, so the same pgd frame: the memo must go by
    # what the tables hold, not by where they are
    one, two = Kernel(), Kernel()
    p1, p2 = one.spawn("p"), two.spawn("p")
    assert p1.mm.pgd.pfn == p2.mm.pgd.pfn
    a1 = one.mmap(p1, 4 * BIG, "rw")
    a2 = two.mmap(p2, 4 * BIG, "rw")
    one.write(p1, a1, b"x")
    two.write(p2, a2 + 3 * BIG, b"x")
    two.write(p2, a2, b"x")
    assert memo(one, p1.mm) == walked(one, p1.mm)
    assert memo(two, p2.mm) == walked(two, p2.mm)
    assert memo(one, p1.mm) == walked(one, p1.mm)


def test_the_guard_sees_a_pte_change_in_a_table_it_walked_before():
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    k.write(p, a, b"x")
    guard = PageTablesGuard(p.mm)
    before = guard.tobytes()
    assert guard.tobytes() == before
    k.write(p, a + PAGE_SIZE, b"y")
    assert guard.tobytes() != before
