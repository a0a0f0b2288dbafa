"""The families of the kernel selftest tools/testing/selftests/mm/cow.c that
need neither swap, THP, hugetlb, io_uring's ring nor GUP-fast: anonymous base
pages (family A) and the shared zero page and page cache in private mappings
(family C), run under every profile: each passes or fails where that step of
the GUP/COW history made it pass or fail (shared/reference/gup-cow-bugs.md
§3.2; the table in docs/profiles.md).  Each test runs the family's sequence
once (no interleaving) and asserts its PASS condition."""

from __future__ import annotations

import pytest

from pagewalk import Kernel
from pagewalk.kernel.semantics import PROFILES

PAGE = 4096
SEED_ERA = {"seed^-ptl-pushdown", "seed^", "seed", "seed+madvise-read", "seed+foll-cow"}


def setup(semantics: str) -> tuple[Kernel, int]:
    k = Kernel(semantics)
    k.spawn("p")
    a = k.mmap("p", PAGE, "rw")
    k.write("p", a, b"old!")
    return k, a


def verdict(fails: set[str]) -> list[tuple[str, bool]]:
    return [(name, name not in fails) for name in PROFILES]


@pytest.mark.parametrize(("semantics", "passes"), verdict(set()))
def test_basic_cow_after_fork(semantics: str, passes: bool) -> None:
    """A.1: the child keeps its snapshot while the parent writes."""
    k, a = setup(semantics)
    k.fork("p", "c")
    k.write("p", a, b"new!")
    assert (k.read("c", a, 4).data == b"old!") == passes
    k.check_invariants()


@pytest.mark.parametrize(("semantics", "passes"), verdict(SEED_ERA))
def test_vmsplice_and_unmap_in_child(semantics: str, passes: bool) -> None:
    """A.3, CVE-2020-29374: no leak from parent into child."""
    k, a = setup(semantics)
    k.fork("p", "c")
    _, pipe = k.vmsplice("c", a, 4)
    k.munmap("c", a, PAGE)
    k.write("p", a, b"new!")
    assert (k.pipe_read(pipe, 4) == b"old!") == passes
    k.check_invariants()


@pytest.mark.parametrize(("semantics", "passes"), verdict(SEED_ERA | {"seed+gup-cow-break"}))
def test_vmsplice_before_fork_unmap_in_parent_after_fork(semantics: str, passes: bool) -> None:
    """A.5: the parent's R/O GUP predates the fork, so forcing a COW break at
    GUP time (v5.8) cannot help; the page-count reuse test (v5.9) does."""
    k, a = setup(semantics)
    _, pipe = k.vmsplice("p", a, 4)
    k.fork("p", "c")
    k.munmap("p", a, PAGE)
    k.write("c", a, b"new!")
    assert (k.pipe_read(pipe, 4) == b"old!") == passes
    k.check_invariants()


@pytest.mark.parametrize(("semantics", "passes"), verdict(SEED_ERA))
def test_vmsplice_and_unmap_in_parent_after_fork(semantics: str, passes: bool) -> None:
    """A.6: no leak from child into parent."""
    k, a = setup(semantics)
    k.fork("p", "c")
    _, pipe = k.vmsplice("p", a, 4)
    k.munmap("p", a, PAGE)
    k.write("c", a, b"new!")
    assert (k.pipe_read(pipe, 4) == b"old!") == passes
    k.check_invariants()


@pytest.mark.parametrize(
    ("semantics", "passes"), verdict({"seed+wp-page-count", "seed+fork-copy-pinned"})
)
def test_ro_pin_on_previously_shared_page(semantics: str, passes: bool) -> None:
    """A.11: the child exits before the parent's R/O long-term pin; the
    parent's write must be visible through the pin.  Only the page-count
    reuse rule breaks it, until PageAnonExclusive's unshare."""
    k, a = setup(semantics)
    k.fork("p", "c")
    k.exit("c")
    _, pages = k.pin("p", a, 1, longterm=True)
    k.write("p", a, b"new!")
    assert (k.page("p", a) is pages[0]) == passes
    k.unpin(pages)
    k.check_invariants()


@pytest.mark.parametrize(
    ("semantics", "passes"),
    verdict({"seed+wp-page-count", "seed+fork-copy-pinned"}),
)
def test_ro_pin_on_ro_mapped_exclusive_page(semantics: str, passes: bool) -> None:
    """A.13: a R/O pte on an exclusive page (mprotect R, pin R/O, mprotect RW:
    a private mapping's pte stays read-only); the write must reuse the pinned
    page.  Before v5.9 the page is mapped once and reused (under v5.8 the
    pin's forced COW break reuses it too); v5.9's rule copies because of the
    pin's count, until PageAnonExclusive lets do_wp_page reuse it."""
    k, a = setup(semantics)
    k.mprotect("p", a, PAGE, "r")
    _, pages = k.pin("p", a, 1, longterm=True)
    k.mprotect("p", a, PAGE, "rw")
    k.write("p", a, b"new!")
    assert (k.page("p", a) is pages[0]) == passes
    k.unpin(pages)
    k.check_invariants()


@pytest.mark.parametrize(("semantics", "passes"), verdict(set()))
def test_basic_cow_after_fork_with_mprotect_optimization(semantics: str, passes: bool) -> None:
    """A.2: mprotect(R) then mprotect(RW) in the parent must not make the
    shared page writable (no profile maps it writable directly)."""
    k, a = setup(semantics)
    k.fork("p", "c")
    k.mprotect("p", a, PAGE, "r")
    k.mprotect("p", a, PAGE, "rw")
    k.write("p", a, b"new!")
    assert (k.read("c", a, 4).data == b"old!") == passes
    k.check_invariants()


@pytest.mark.parametrize(
    ("semantics", "passes"), verdict({"seed+wp-page-count", "seed+fork-copy-pinned"})
)
def test_ro_mapping_a_page_registered_as_a_fixed_buffer(semantics: str, passes: bool) -> None:
    """A.7 (io_uring fixed buffer): a R/W long-term pin, the pte made
    read-only by mprotect(R) + mprotect(RW); the write through the mapping
    must land in the pinned page."""
    k, a = setup(semantics)
    _, pages = k.pin("p", a, 1, write=True, longterm=True)
    k.mprotect("p", a, PAGE, "r")
    k.mprotect("p", a, PAGE, "rw")
    k.write("p", a, b"new!")
    assert (k.page("p", a) is pages[0]) == passes
    k.unpin(pages)
    k.check_invariants()


@pytest.mark.parametrize(
    ("semantics", "passes"),
    verdict(SEED_ERA | {"seed+gup-cow-break", "seed+wp-page-count"}),
)
def test_fork_with_a_fixed_buffer(semantics: str, passes: bool) -> None:
    """A.8 (io_uring fixed buffer): R/W long-term pin, fork, the child alive;
    the parent's write must land in the pinned page (early COW, 70e806e4e645)."""
    k, a = setup(semantics)
    _, pages = k.pin("p", a, 1, write=True, longterm=True)
    k.fork("p", "c")
    k.write("p", a, b"new!")
    assert (k.page("p", a) is pages[0]) == passes
    assert k.read("c", a, 4).data == b"old!"
    k.unpin(pages)
    k.check_invariants()


@pytest.mark.parametrize(("semantics", "passes"), verdict(SEED_ERA))
def test_vmsplice_and_unmap_in_child_with_mprotect_optimization(
    semantics: str, passes: bool
) -> None:
    """A.4: as A.3, the parent doing mprotect(R) + mprotect(RW) before its
    write: no leak from parent into child where A.3 has none."""
    k, a = setup(semantics)
    k.fork("p", "c")
    _, pipe = k.vmsplice("c", a, 4)
    k.munmap("c", a, PAGE)
    k.mprotect("p", a, PAGE, "r")
    k.mprotect("p", a, PAGE, "rw")
    k.write("p", a, b"new!")
    assert (k.pipe_read(pipe, 4) == b"old!") == passes
    k.check_invariants()


@pytest.mark.parametrize(
    ("semantics", "passes"),
    verdict(SEED_ERA | {"seed+wp-page-count", "seed+fork-copy-pinned"}),
)
def test_ro_pin_on_ro_mapped_shared_page(semantics: str, passes: bool) -> None:
    """A.9: the child alive, the parent's R/O long-term pin of the shared
    page; its write must be visible through the pin.  The seed's write
    copies a page mapped twice; v5.8's pin breaks COW itself; v5.9's pin
    takes the shared page and the write copies it; v5.18's pin unshares."""
    k, a = setup(semantics)
    k.fork("p", "c")
    _, pages = k.pin("p", a, 1, longterm=True)
    k.write("p", a, b"new!")
    assert (k.page("p", a) is pages[0]) == passes
    assert k.read("c", a, 4).data == b"old!"
    k.unpin(pages)
    k.check_invariants()


def zero_page_world(semantics: str) -> tuple[Kernel, int, int]:
    """cow.c's run_with_zeropage: a R/W and a R/O private anonymous page,
    both read so that both map the shared zero page."""
    k = Kernel(semantics)
    k.spawn("p")
    mem = k.mmap("p", PAGE, "rw")
    smem = k.mmap("p", PAGE, "r")
    k.read("p", mem, 1)
    k.read("p", smem, 1)
    return k, mem, smem


def page_cache_world(semantics: str) -> tuple[Kernel, int, int]:
    """cow.c's run_with_memfd / run_with_tmpfile (one page-cache file here: the
    model has no shmem): a R/W MAP_PRIVATE and a R/O MAP_SHARED mapping of a
    zero-filled one-page file, both read so that both map its page."""
    k = Kernel(semantics)
    k.spawn("p")
    k.add_file("/f", bytes(PAGE))
    mem = k.mmap("p", PAGE, "rw", "private", "/f")
    smem = k.mmap("p", PAGE, "r", "shared", "/f")
    k.read("p", mem, 1)
    k.read("p", smem, 1)
    return k, mem, smem


@pytest.mark.parametrize(("semantics", "passes"), verdict(set()))
def test_basic_cow_on_the_shared_zero_page(semantics: str, passes: bool) -> None:
    """C.1 (shared zeropage): the write to one private mapping must not show
    through the other ("Other mapping not modified")."""
    k, mem, smem = zero_page_world(semantics)
    k.write("p", mem, b"\xff" * 4)
    assert (k.read("p", smem, 4).data == bytes(4)) == passes
    k.check_invariants()


@pytest.mark.parametrize(("semantics", "passes"), verdict(set()))
def test_basic_cow_on_a_page_cache_page(semantics: str, passes: bool) -> None:
    """C.1 (memfd, tmpfile): the write to the private mapping must not show
    through the shared one, nor reach the file."""
    k, mem, smem = page_cache_world(semantics)
    k.write("p", mem, b"\xff" * 4)
    assert (k.read("p", smem, 4).data == bytes(4)) == passes
    assert k.files["/f"].content() == k.files["/f"].initial
    k.check_invariants()


#: C.2's verdicts: only v5.8's forced COW break at GUP time (the pin takes a
#: private anonymous copy, 17839856fd58) and v6.2's unsharing (84209e87c696,
#: in 6.18) keep the pin coherent; every other profile pins the zero page or
#: the page-cache page itself, and the write COWs it away.
NON_ANON_RO_PIN_FAILS = set(PROFILES) - {"seed+gup-cow-break", "6.18"}


@pytest.mark.parametrize(("semantics", "passes"), verdict(NON_ANON_RO_PIN_FAILS))
def test_ro_longterm_pin_on_the_shared_zero_page(semantics: str, passes: bool) -> None:
    """C.2 (shared zeropage): a R/O long-term pin, then a write through the
    page table; the pin must see it ("Longterm R/O pin is reliable")."""
    k, mem, _ = zero_page_world(semantics)
    _, pages = k.pin("p", mem, 1, longterm=True)
    k.write("p", mem, b"\xff" * 4)
    assert (k.page("p", mem) is pages[0]) == passes
    k.unpin(pages)
    k.check_invariants()


@pytest.mark.parametrize(("semantics", "passes"), verdict(NON_ANON_RO_PIN_FAILS))
def test_ro_longterm_pin_on_a_page_cache_page(semantics: str, passes: bool) -> None:
    """C.2 (memfd, tmpfile): as for the zero page, on the private mapping of
    the file; the file itself stays unchanged either way."""
    k, mem, _ = page_cache_world(semantics)
    _, pages = k.pin("p", mem, 1, longterm=True)
    k.write("p", mem, b"\xff" * 4)
    assert (k.page("p", mem) is pages[0]) == passes
    assert k.files["/f"].content() == k.files["/f"].initial
    k.unpin(pages)
    k.check_invariants()
