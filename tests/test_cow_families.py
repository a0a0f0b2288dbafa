"""The simplest families of the kernel selftest tools/testing/selftests/mm/
cow.c (anonymous base pages), run under every profile: each passes or fails
where that step of the GUP/COW history made it pass or fail
(shared/reference/gup-cow-bugs.md §3.2, family A).  Each test runs the
family's sequence once (no interleaving) and asserts its PASS condition."""

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
