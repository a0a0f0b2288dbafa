"""pin/unpin, vmsplice/pipe_read and the GUP/COW family's switches, one
behaviour each, called through the Kernel facade (invariants checked after
each test that builds a kernel through ``world``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pagewalk import Kernel
from pagewalk.kernel.constants import GUP_PIN_COUNTING_BIAS
from pagewalk.kernel.page import PG_anon_exclusive, page_count, page_mapcount
from pagewalk.kernel.pgtable import _PAGE_RW

PAGE = 4096


@pytest.fixture
def kernels() -> Iterator[list[Kernel]]:
    made: list[Kernel] = []
    yield made
    for k in made:
        k.check_invariants()


def world(kernels: list[Kernel], semantics: str, data: bytes = b"data") -> tuple[Kernel, int]:
    """A kernel with process "p" and one written anonymous private page."""
    k = Kernel(semantics)
    kernels.append(k)
    k.spawn("p")
    addr = k.mmap("p", PAGE, "rw")
    k.write("p", addr, data)
    return k, addr


def test_pin_adds_the_pin_bias_where_the_profile_has_foll_pin(kernels) -> None:
    k, a = world(kernels, "6.18")
    n, pages = k.pin("p", a, 1)
    assert (n, page_count(pages[0])) == (1, 1 + GUP_PIN_COUNTING_BIAS)
    k.unpin(pages)


def test_pin_before_foll_pin_is_a_plain_reference(kernels) -> None:
    k, a = world(kernels, "seed")
    _, pages = k.pin("p", a, 1)
    assert page_count(pages[0]) == 2
    k.unpin(pages)


def test_unpin_takes_the_bias_off(kernels) -> None:
    k, a = world(kernels, "6.18")
    _, pages = k.pin("p", a, 1, write=True, longterm=True)
    k.unpin(pages)
    assert page_count(k.page("p", a)) == 1


def test_pin_of_untouched_anonymous_memory_pins_the_zero_page_with_the_bias(kernels) -> None:
    k = Kernel("6.18")
    kernels.append(k)
    k.spawn("p")
    a = k.mmap("p", PAGE, "r")
    before = page_count(k.zero_page)
    _, pages = k.pin("p", a, 1)
    assert pages[0] is k.zero_page
    assert page_count(k.zero_page) == before + GUP_PIN_COUNTING_BIAS
    k.unpin(pages)


def test_vmsplice_pipe_reads_what_the_page_holds_when_read(kernels) -> None:
    k, a = world(kernels, "seed", b"old")
    n, pipe = k.vmsplice("p", a, 3)
    k.write("p", a, b"new")
    assert (n, k.pipe_read(pipe, 3)) == (3, b"new")


def test_pipe_read_drops_the_pipes_references(kernels) -> None:
    k, a = world(kernels, "seed")
    _, pipe = k.vmsplice("p", a, 4)
    assert page_count(k.page("p", a)) == 2
    k.pipe_read(pipe, 4)
    assert page_count(k.page("p", a)) == 1


def test_partial_pipe_read_keeps_the_buffer_until_it_is_read_to_its_end(kernels) -> None:
    k, a = world(kernels, "seed", b"abcd")
    _, pipe = k.vmsplice("p", a, 4)
    assert k.pipe_read(pipe, 2) == b"ab"
    assert page_count(k.page("p", a)) == 2
    assert k.pipe_read(pipe, 10) == b"cd"
    assert page_count(k.page("p", a)) == 1


def test_vmsplice_of_an_unmapped_address_is_efault(kernels) -> None:
    k, a = world(kernels, "seed")
    n, _ = k.vmsplice("p", a + 16 * PAGE, 4)
    assert n == -14


def test_seed_reuses_a_page_mapped_once_despite_a_pipe_reference(kernels) -> None:
    k, a = world(kernels, "seed")
    k.fork("p", "c")
    _, pipe = k.vmsplice("c", a, 4)
    k.munmap("c", a, PAGE)
    k.write("p", a, b"BBBB")
    assert k.pipe_read(pipe, 4) == b"BBBB"  # CVE-2020-29374


def test_page_count_reuse_copies_a_page_a_pipe_references(kernels) -> None:
    k, a = world(kernels, "seed+wp-page-count")
    k.fork("p", "c")
    _, pipe = k.vmsplice("c", a, 4)
    k.munmap("c", a, PAGE)
    k.write("p", a, b"BBBB")
    assert k.pipe_read(pipe, 4) == b"data"


def test_cow_break_on_read_gives_the_pipe_the_childs_own_copy(kernels) -> None:
    k, a = world(kernels, "seed+gup-cow-break")
    k.fork("p", "c")
    _, pipe = k.vmsplice("c", a, 4)
    assert k.page("c", a) is not k.page("p", a)
    k.pipe_read(pipe, 4)


def test_cow_break_on_read_leaves_a_read_only_mapping_read_only(kernels) -> None:
    k = Kernel("seed+gup-cow-break")
    kernels.append(k)
    k.spawn("p")
    a = k.mmap("p", PAGE, "r")
    k.read("p", a, 1)
    n, pages = k.gup("p", a, 1)
    assert n == 1 and pages[0] is not k.zero_page
    assert not k.pte("p", a) & _PAGE_RW
    k.put_pages(pages)


def test_fork_copies_a_pinned_page_for_the_child_and_leaves_the_parent_writable(kernels) -> None:
    k, a = world(kernels, "seed+fork-copy-pinned")
    _, pages = k.pin("p", a, 1, write=True)
    k.fork("p", "c")
    assert k.page("p", a) is pages[0]
    assert k.page("c", a) is not pages[0]
    assert k.pte("p", a) & _PAGE_RW
    assert k.peek("c", a, 4) == b"data"
    k.unpin(pages)


def test_fork_shares_an_unpinned_page(kernels) -> None:
    k, a = world(kernels, "seed+fork-copy-pinned")
    k.fork("p", "c")
    assert k.page("c", a) is k.page("p", a)
    assert page_mapcount(k.page("p", a)) == 2


def test_pin_is_lost_on_fork_before_the_fix(kernels) -> None:
    k, a = world(kernels, "seed+wp-page-count")
    _, pages = k.pin("p", a, 1, write=True)
    k.fork("p", "c")
    k.exit("c")
    k.write("p", a, b"cpu!")
    assert k.page("p", a) is not pages[0]
    k.unpin(pages)


def test_a_new_anonymous_page_is_exclusive(kernels) -> None:
    k, a = world(kernels, "seed+anon-exclusive")
    assert k.page("p", a).flags & PG_anon_exclusive


def test_fork_clears_exclusive_on_a_page_it_shares(kernels) -> None:
    k, a = world(kernels, "seed+anon-exclusive")
    k.fork("p", "c")
    assert not k.page("p", a).flags & PG_anon_exclusive


def test_seed_never_marks_pages_exclusive(kernels) -> None:
    k, a = world(kernels, "seed")
    assert not k.page("p", a).flags & PG_anon_exclusive


def test_ro_pin_of_a_shared_page_unshares_it_read_only(kernels) -> None:
    k, a = world(kernels, "seed+anon-exclusive")
    k.fork("p", "c")
    _, pages = k.pin("p", a, 1)
    assert pages[0] is k.page("p", a)
    assert pages[0] is not k.page("c", a)
    assert pages[0].flags & PG_anon_exclusive
    assert not k.pte("p", a) & _PAGE_RW
    k.unpin(pages)


def test_ro_pin_of_a_shared_page_sees_the_later_write(kernels) -> None:
    k, a = world(kernels, "seed+anon-exclusive")
    k.fork("p", "c")
    _, pages = k.pin("p", a, 1, longterm=True)
    k.write("p", a, b"next")
    assert k.page("p", a) is pages[0]
    k.unpin(pages)


def test_ro_pin_of_an_exclusive_page_takes_no_copy(kernels) -> None:
    k, a = world(kernels, "seed+anon-exclusive")
    page = k.page("p", a)
    _, pages = k.pin("p", a, 1)
    assert pages[0] is page
    k.unpin(pages)


def test_ro_pin_of_a_shared_page_before_unsharing_detaches_on_write(kernels) -> None:
    k, a = world(kernels, "seed+fork-copy-pinned")
    k.fork("p", "c")
    _, pages = k.pin("p", a, 1)
    k.write("p", a, b"next")
    assert k.page("p", a) is not pages[0]
    k.unpin(pages)


@pytest.mark.parametrize("semantics", ["seed+foll-cow", "seed+anon-exclusive", "6.18"])
def test_forced_write_to_a_read_only_private_file_mapping_lands_in_an_anon_copy(
    kernels, semantics: str
) -> None:
    k = Kernel(semantics)
    kernels.append(k)
    k.spawn("p")
    k.add_file("/f", b"file", "r")
    a = k.mmap("p", PAGE, "r", "private", "/f")
    assert k.mem_write("p", a, b"FORC") == 4
    assert k.peek("p", a, 4) == b"FORC"
    assert k.files["/f"].content() == k.files["/f"].initial


# -- the scenario ops and the `pinned` check ----------------------------------------

SCENARIO_HEAD = """
name = "pins"
semantics = "6.18"
[[setup]]
op = "mmap"
length = 8192
as = "buf"
[[setup]]
op = "write"
addr = "buf"
data = "hello"
"""


def run_text(body: str, semantics: str | None = None):
    from pagewalk.scenario.loader import parse_scenario
    from pagewalk.scenario.runner import run_scenario

    return run_scenario(parse_scenario(SCENARIO_HEAD + body, "t.toml"), semantics, True)


def load_error(body: str) -> str:
    from pagewalk.errors import InputError
    from pagewalk.scenario.loader import parse_scenario

    with pytest.raises(InputError) as info:
        parse_scenario(SCENARIO_HEAD + body, "t.toml")
    return str(info.value)


def test_pin_op_result_is_the_number_of_pages_pinned() -> None:
    res = run_text('[[setup]]\nop = "pin"\naddr = "buf"\npages = 2\nwrite = true\nas = "p1"\n')
    assert res.results[-1].value == 2


def test_pinned_check_holds_for_a_pin_of_the_mapped_page() -> None:
    res = run_text(
        '[[setup]]\nop = "pin"\naddr = "buf"\npages = 2\nas = "p1"\n'
        '[[check]]\nkind = "pinned"\npins = "p1"\naddr = "buf+4096"\n'
    )
    assert res.status == "ok"


def test_pinned_check_with_expect_false_fails_for_the_mapped_page() -> None:
    res = run_text(
        '[[setup]]\nop = "pin"\naddr = "buf"\npages = 1\nas = "p1"\n'
        '[[check]]\nkind = "pinned"\npins = "p1"\naddr = "buf"\nexpect = false\n'
    )
    assert res.status == "violation"


def test_pinned_check_fails_after_unpin() -> None:
    res = run_text(
        '[[setup]]\nop = "pin"\naddr = "buf"\npages = 1\nas = "p1"\n'
        '[[setup]]\nop = "unpin"\npins = "p1"\n'
        '[[check]]\nkind = "pinned"\npins = "p1"\naddr = "buf"\n'
    )
    assert res.status == "violation"


def test_pinned_check_accepts_a_gup() -> None:
    res = run_text(
        '[[setup]]\nop = "gup"\naddr = "buf"\npages = 1\nas = "g"\n'
        '[[check]]\nkind = "pinned"\npins = "g"\naddr = "buf"\n'
    )
    assert res.status == "ok"


def test_pipe_read_expect_mismatch_fails_as_an_expect_check() -> None:
    res = run_text(
        '[[setup]]\nop = "vmsplice"\naddr = "buf"\nlength = 5\nas = "pp"\n'
        '[[setup]]\nop = "pipe_read"\npipe = "pp"\nlength = 5\nexpect = "HELLO"\n'
    )
    assert [c.kind for c in res.checks if not c.ok] == ["expect"]


def test_pipe_read_result_is_the_bytes_read() -> None:
    res = run_text(
        '[[setup]]\nop = "vmsplice"\naddr = "buf"\nlength = 5\nas = "pp"\n'
        '[[setup]]\nop = "pipe_read"\npipe = "pp"\nlength = 9\nexpect = "hello"\n'
    )
    assert (res.status, res.results[-1].value) == ("ok", 5)


def test_unpin_of_a_gup_name_is_an_input_error() -> None:
    msg = load_error(
        '[[setup]]\nop = "gup"\naddr = "buf"\npages = 1\nas = "g"\n'
        '[[setup]]\nop = "unpin"\npins = "g"\n'
    )
    assert "pin op" in msg


def test_vmsplice_without_as_is_an_input_error() -> None:
    assert "'as'" in load_error('[[setup]]\nop = "vmsplice"\naddr = "buf"\nlength = 5\n')


def test_pipe_read_of_an_unknown_pipe_is_an_input_error() -> None:
    assert "pipe" in load_error('[[setup]]\nop = "pipe_read"\npipe = "nope"\nlength = 5\n')


def test_pinned_check_of_an_unknown_name_is_an_input_error() -> None:
    assert "pin or gup" in load_error('[[check]]\nkind = "pinned"\npins = "zz"\naddr = "buf"\n')


def test_pin_of_the_vsyscall_page_is_a_pin_too(kernels) -> None:
    from pagewalk.kernel.constants import VSYSCALL_START

    k, _ = world(kernels, "6.18")
    n, pages = k.pin("p", VSYSCALL_START, 1)
    before = page_count(pages[0])
    k.unpin(pages)
    assert (n, before - page_count(pages[0])) == (1, GUP_PIN_COUNTING_BIAS)


def file_page_pinned_then_fork(kernels, semantics: str) -> tuple[Kernel, int, list]:
    k = Kernel(semantics)
    kernels.append(k)
    k.spawn("p")
    k.add_file("/f", b"x" * (2 * PAGE), "r")
    a = k.mmap("p", 2 * PAGE, "rw", "private", "/f")
    k.write("p", a + PAGE, b"anon")  # gives the vma an anon_vma: fork copies its ptes
    k.read("p", a, 1)
    _, pages = k.pin("p", a, 1)
    k.fork("p", "c")
    return k, a, pages


def test_v5_9_fork_copies_a_pinned_page_cache_page_too(kernels) -> None:
    k, a, pages = file_page_pinned_then_fork(kernels, "seed+fork-copy-pinned")
    assert k.page("c", a) is not pages[0]
    k.unpin(pages)


def test_anon_exclusive_fork_shares_a_pinned_page_cache_page(kernels) -> None:
    k, a, pages = file_page_pinned_then_fork(kernels, "seed+anon-exclusive")
    assert k.page("c", a) is pages[0]
    k.unpin(pages)


# -- 84209e87c696 (v6.2): R/O long-term pins unshare page-cache and zero pages -------


def file_world(kernels, semantics: str, flags: str = "private") -> tuple[Kernel, int]:
    """A kernel with process "p" mapping a one-page file read/write, faulted in."""
    k = Kernel(semantics)
    kernels.append(k)
    k.spawn("p")
    k.add_file("/f", b"file")
    a = k.mmap("p", PAGE, "rw", flags, "/f")
    k.read("p", a, 1)
    return k, a


def test_ro_longterm_pin_of_a_page_cache_page_maps_an_exclusive_read_only_copy(kernels) -> None:
    k, a = file_world(kernels, "6.18")
    cache = k.page("p", a)
    _, pages = k.pin("p", a, 1, longterm=True)
    assert pages[0] is k.page("p", a) and pages[0] is not cache
    assert pages[0].flags & PG_anon_exclusive
    assert not k.pte("p", a) & _PAGE_RW
    assert k.peek("p", a, 4) == b"file"
    k.unpin(pages)


def test_ro_longterm_pin_of_a_page_cache_page_pins_it_before_v6_2(kernels) -> None:
    k, a = file_world(kernels, "seed+no-foll-cow")
    cache = k.page("p", a)
    _, pages = k.pin("p", a, 1, longterm=True)
    assert pages[0] is cache
    k.unpin(pages)


def test_short_term_ro_pin_of_a_page_cache_page_does_not_unshare(kernels) -> None:
    k, a = file_world(kernels, "6.18")
    cache = k.page("p", a)
    _, pages = k.pin("p", a, 1)
    assert pages[0] is cache
    k.unpin(pages)


def test_ro_longterm_pin_in_a_shared_mapping_pins_the_page_cache_page(kernels) -> None:
    k, a = file_world(kernels, "6.18", "shared")
    cache = k.page("p", a)
    _, pages = k.pin("p", a, 1, longterm=True)
    assert pages[0] is cache
    k.unpin(pages)


def test_ro_longterm_pin_of_a_mapped_zero_page_maps_an_exclusive_copy(kernels) -> None:
    k = Kernel("6.18")
    kernels.append(k)
    k.spawn("p")
    a = k.mmap("p", PAGE, "rw")
    k.read("p", a, 1)
    _, pages = k.pin("p", a, 1, longterm=True)
    assert pages[0] is k.page("p", a) and pages[0] is not k.zero_page
    assert pages[0].flags & PG_anon_exclusive
    assert not k.pte("p", a) & _PAGE_RW
    k.unpin(pages)


@pytest.mark.parametrize(("semantics", "zero"), [("seed+no-foll-cow", True), ("6.18", False)])
def test_ro_longterm_pin_of_untouched_memory_gets_the_zero_page_only_before_v6_2(
    kernels, semantics: str, zero: bool
) -> None:
    k = Kernel(semantics)
    kernels.append(k)
    k.spawn("p")
    a = k.mmap("p", PAGE, "r")
    _, pages = k.pin("p", a, 1, longterm=True)
    assert (pages[0] is k.zero_page) == zero
    k.unpin(pages)
