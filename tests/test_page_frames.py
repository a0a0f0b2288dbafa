"""struct page fields kept in the allocator's per-frame arrays (index, node)."""

import copy

from pagewalk import Kernel
from pagewalk.kernel.constants import PAGE_SIZE
from pagewalk.kernel.page import PG_anon, put_page


def test_anonymous_page_index_is_its_linear_page_index():
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, 4 * PAGE_SIZE, "rw")
    k.write(p, a + 2 * PAGE_SIZE, b"x")
    assert k.page(p, a + 2 * PAGE_SIZE).index == (a >> 12) + 2


def test_freed_frame_comes_back_with_index_zero():
    k = Kernel()
    page = k.alloc.alloc_page_node(0)
    page.index = 12345
    put_page(k.alloc, page)
    again = k.alloc.alloc_page_node(0)
    assert again is page and again.index == 0


def test_each_kernel_keeps_its_own_frame_arrays():
    one, two = Kernel(), Kernel()
    a, b = one.alloc.alloc_page_node(0), two.alloc.alloc_page_node(0)
    assert a.pfn == b.pfn
    a.index = 7
    assert b.index == 0


def test_page_falls_back_to_the_next_node_when_its_own_is_full():
    k = Kernel(nodes=2, pages_per_node=1)
    pages = [k.alloc.alloc_page_node(0) for _ in range(2)]
    # Node 0 has room for one page next to the two boot pages, then node 1 serves.
    assert [page.node for page in pages] == [0, 1]


def test_anonymous_page_flags_word_is_a_shared_small_int():
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    k.write(p, a, b"x")
    k.write(p, a + PAGE_SIZE, b"y")
    one, two = k.page(p, a), k.page(p, a + PAGE_SIZE)
    assert one.flags & PG_anon and one.flags == two.flags and one.flags is two.flags


def test_forced_cow_in_a_wrapped_stack_stores_the_unsigned_page_index():
    # expand_stack wraps vm_pgoff below 0 on a shared anonymous growsdown vma;
    # pgoff_t arithmetic wraps with it (regression: OverflowError).
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, 2 * PAGE_SIZE, "r", flags=["shared", "growsdown"])
    k.read(p, a, 1)
    k.read(p, a - PAGE_SIZE, 1)
    assert k.mem_write(p, a, b"X") == 1
    assert k.page(p, a).index < 1 << 64


def test_deep_copy_of_a_kernel_has_its_own_frames():
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"orig")
    twin = copy.deepcopy(k)
    twin.write("p", a, b"copy")
    twin.page("p", a).index = 5
    assert k.read(p, a, 4).data == b"orig" and twin.read("p", a, 4).data == b"copy"
    assert k.page(p, a).index == a >> 12
    assert type(twin.page("p", a)) is twin.alloc.Page


def test_deep_copy_of_a_kernel_keeps_its_invariants():
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, 4 * PAGE_SIZE, "rw")
    k.write(p, a, b"x")
    k.fork(p, "c")
    twin = copy.deepcopy(k)
    twin.write("c", a, b"y")
    twin.check_invariants()
    k.check_invariants()
