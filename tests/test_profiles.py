"""The seed patch, row by row (reference section 9): each test runs the
profile before it ("2.6.14") and the patch ("2.6.15") and asserts the
difference, or the sameness where the patch changed nothing observable."""

from __future__ import annotations

import pytest

from lockrecorder import LockRecorder
from pagewalk import Kernel
from pagewalk.errors import ModelFailure
from pagewalk.kernel import prepatch
from pagewalk.kernel.constants import FOLL_ANON, FOLL_GET, FOLL_TOUCH
from pagewalk.kernel.locks import spin_lock
from pagewalk.kernel.memory import follow_page
from pagewalk.kernel.page import PG_anon, PG_referenced, page_count

PAGE = 4096


def setup(profile: str, split: bool = True):
    k = Kernel(profile, split_ptlock=split)
    p = k.spawn("p")
    return k, p


def populated(k, p, prot="rw"):
    addr = k.mmap(p, 4 * PAGE, "rw")
    k.write(p, addr, b"data")
    if prot != "rw":
        k.mprotect(p, addr, 4 * PAGE, prot)
    return addr


def test_follow_page_with_foll_anon_returns_zero_page_where_old_lookup_returns_none() -> None:
    k, p = setup("2.6.15")
    addr = k.mmap(p, PAGE, "r")
    with k.running(p):
        assert follow_page(p.mm, addr, FOLL_ANON) is k.zero_page
        assert prepatch.follow_page(p.mm, addr, 0) is None


def test_new_follow_page_takes_the_pte_lock_itself() -> None:
    """Before: the caller held page_table_lock.  After: follow_page takes
    the pte lock, which without split ptlock *is* page_table_lock."""
    k, p = setup("2.6.15", split=False)
    addr = populated(k, p)
    with k.running(p):
        spin_lock(p.mm.page_table_lock)
        assert prepatch.follow_page(p.mm, addr, 0) is not None
        with pytest.raises(ModelFailure, match="page_table_lock"):
            follow_page(p.mm, addr, 0)


def test_foll_get_takes_a_reference_the_old_lookup_did_not() -> None:
    k, p = setup("2.6.15")
    addr = populated(k, p)
    page = k.page(p, addr)
    with k.running(p):
        before = page_count(page)
        prepatch.follow_page(p.mm, addr, 0)
        assert page_count(page) == before
        follow_page(p.mm, addr, FOLL_GET)
        assert page_count(page) == before + 1
        k.alloc.mem_map[page.pfn]._count -= 1  # give it back


def test_old_lookup_always_marks_accessed_new_one_only_with_foll_touch() -> None:
    k, p = setup("2.6.15")
    addr = populated(k, p)
    page = k.page(p, addr)
    with k.running(p):
        page.flags &= ~PG_referenced
        follow_page(p.mm, addr, 0)
        assert not page.flags & PG_referenced
        follow_page(p.mm, addr, FOLL_TOUCH)
        assert page.flags & PG_referenced
        page.flags &= ~PG_referenced
        prepatch.follow_page(p.mm, addr, 0)
        assert page.flags & PG_referenced


@pytest.mark.parametrize(
    ("profile", "takes_page_table_lock"), [("2.6.14", True), ("2.6.15", False)]
)
def test_get_user_pages_holds_page_table_lock_only_before_the_patch(
    profile: str, takes_page_table_lock: bool
) -> None:
    k, p = setup(profile)
    addr = populated(k, p)
    rec = LockRecorder(k)
    k.sched = rec
    ret, pages = k.gup(p, addr, 1)
    k.sched = None
    assert ret == 1
    assert ("p.page_table_lock" in rec.locks_taken()) is takes_page_table_lock
    k.put_pages(pages)


@pytest.mark.parametrize("profile", ["2.6.14", "2.6.15"])
def test_get_user_pages_pins_every_page_in_both_profiles(profile: str) -> None:
    k, p = setup(profile)
    addr = populated(k, p)
    page = k.page(p, addr)
    ret, pages = k.gup(p, addr, 1)
    assert (ret, pages, page_count(page)) == (1, [page], 2)
    k.put_pages(pages)
    assert page_count(page) == 1


@pytest.mark.parametrize(("profile", "present"), [("2.6.14", False), ("2.6.15", True)])
def test_mlock_of_readonly_anonymous_memory_maps_it_only_after_the_patch(
    profile: str, present: bool
) -> None:
    k, p = setup(profile)
    addr = k.mmap(p, 4 * PAGE, "r")
    assert k.mlock(p, addr, 4 * PAGE) == 0
    assert (k.page(p, addr) is k.zero_page) is present
    assert (k.page_tables(p) == 3) is present


@pytest.mark.parametrize("profile", ["2.6.14", "2.6.15"])
def test_reading_untouched_anonymous_memory_allocates_no_tables_in_either(profile: str) -> None:
    k, p = setup(profile)
    addr = k.mmap(p, 1 << 30, "r")
    n, data = k.mem_read(p, addr + (1 << 29), 8)
    assert (n, data, k.page_tables(p)) == (8, bytes(8), 0)


@pytest.mark.parametrize("profile", ["2.6.14", "2.6.15"])
def test_forced_write_into_readonly_private_mapping_cows_in_both(profile: str) -> None:
    k, p = setup(profile)
    k.add_file("/f", b"file bytes", mode="r")
    addr = k.mmap(p, PAGE, "r", file="/f")
    assert k.mem_write(p, addr, b"FILE") == 4
    assert k.read(p, addr, 10).data == b"FILE bytes"
    assert k.files["/f"].content() == b"file bytes"
    assert k.page(p, addr).flags & PG_anon  # a private copy


@pytest.mark.parametrize("profile", ["2.6.14", "2.6.15"])
def test_futex_keys_are_the_same_in_both(profile: str) -> None:
    k, p = setup(profile)
    k.add_file("/f", bytes(PAGE))
    shared = k.mmap(p, PAGE, "rw", ["shared"], file="/f")
    private = k.mmap(p, PAGE, "rw")
    assert k.futex_key(p, shared + 4).startswith("shared inode=1 (/f) pgoff=0 offset=5")
    assert k.futex_key(p, private + 8) == f"private mm=p uaddr={private:#x} offset=8"


def test_split_ptlock_exists_only_from_2_6_15() -> None:
    assert Kernel("2.6.15", split_ptlock=True).split_ptlock
    assert not Kernel("2.6.14", split_ptlock=True).split_ptlock
