"""struct page fields kept in the allocator's per-frame arrays (index, node)."""

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
