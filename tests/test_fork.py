"""fork (dup_mmap -> copy_page_range -> copy_one_pte) and exit (exit_mmap)."""

from __future__ import annotations

from pagewalk import Kernel
from pagewalk.kernel.constants import PAGE_SIZE, VM_LOCKED
from pagewalk.kernel.page import PageAnon, PG_pgtable, page_count, page_mapcount
from pagewalk.kernel.pgtable import _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_RW


def rss(p) -> tuple[int, int]:
    return p.mm._file_rss, p.mm._anon_rss


def live_pages(k: Kernel) -> list:
    """Frames with a reference, besides the boot-reserved zero and vsyscall pages."""
    return [
        pg
        for pg in k.alloc.mem_map
        if page_count(pg) and pg is not k.zero_page and pg is not k.vsyscall_page
    ]


# --- private writable mappings ----------------------------------------------------
def test_fork_write_protects_both_sides_of_private_writable_mapping(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"parent data")
    page = k.page(p, a)
    assert k.pte(p, a) & _PAGE_RW

    assert k.fork(p, "c") > 0

    assert k.page("c", a) is page
    assert not k.pte(p, a) & _PAGE_RW  # ptep_set_wrprotect on the parent
    assert not k.pte("c", a) & _PAGE_RW
    assert page_mapcount(page) == 2 and page_count(page) == 2
    assert rss(k.task("c")) == (0, 1)


def test_child_pte_is_old_and_keeps_dirty_for_private(k, p):
    """copy_one_pte: pte_mkold for the child; pte_mkclean only for VM_SHARED."""
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"x")
    k.fork(p, "c")
    child = k.pte("c", a)
    assert not child & _PAGE_ACCESSED
    assert child & _PAGE_DIRTY
    assert k.pte(p, a) & _PAGE_ACCESSED


def test_child_sees_parents_data(k, p):
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    k.write(p, a, b"first")
    k.write(p, a + PAGE_SIZE, b"second")
    k.fork(p, "c")
    assert k.read("c", a, 5).data == b"first"
    assert k.read("c", a + PAGE_SIZE, 6).data == b"second"
    assert k.page("c", a) is k.page(p, a)


def test_parent_writes_first_copies_then_child_reuses(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"orig")
    old = k.page(p, a)
    k.fork(p, "c")

    k.write(p, a, b"PARE")
    new = k.page(p, a)
    assert new is not old
    assert page_mapcount(old) == 1
    assert k.read("c", a, 4).data == b"orig"

    k.write("c", a, b"CHLD")  # mapcount 1 now: do_wp_page reuses
    assert k.page("c", a) is old
    assert k.pte("c", a) & _PAGE_RW
    assert k.read(p, a, 4).data == b"PARE"
    assert k.read("c", a, 4).data == b"CHLD"


def test_child_writes_first_copies_then_parent_reuses(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"orig")
    old = k.page(p, a)
    k.fork(p, "c")

    k.write("c", a, b"CHLD")
    assert k.page("c", a) is not old
    assert page_mapcount(old) == 1
    assert k.read(p, a, 4).data == b"orig"

    k.write(p, a, b"PARE")
    assert k.page(p, a) is old
    assert k.pte(p, a) & _PAGE_RW
    assert k.read("c", a, 4).data == b"CHLD"


def test_zero_page_pte_in_vma_with_anon_vma_is_copied(k, p):
    """A vma with an anon_vma is copied whole: its zero-page ptes too."""
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    k.write(p, a, b"w")  # gives the vma an anon_vma
    k.read(p, a + PAGE_SIZE, 1)
    k.fork(p, "c")
    assert k.page("c", a + PAGE_SIZE) is k.zero_page
    assert page_mapcount(k.zero_page) == 2
    assert rss(k.task("c")) == (1, 1)


# --- vmas without anon_vma are not copied ------------------------------------------
def test_fork_does_not_copy_ptes_of_read_only_file_mapping(k, p):
    k.add_file("/lib", b"L" * PAGE_SIZE, mode="r")
    a = k.mmap(p, PAGE_SIZE, "r", ("private",), file="/lib")
    k.read(p, a, 1)
    page = k.page(p, a)

    k.fork(p, "c")

    assert not k.pte("c", a)
    assert page_mapcount(page) == 1
    assert rss(k.task("c")) == (0, 0)
    assert k.read("c", a, 1).data == b"L"  # the child faults it in
    assert k.page("c", a) is page


def test_fork_does_not_copy_zero_page_ptes_of_anon_mapping_only_read(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.read(p, a, 1)
    assert k.vma(p, a).anon_vma is None

    k.fork(p, "c")

    assert not k.pte("c", a)
    assert k.page_tables("c") == 0
    assert page_mapcount(k.zero_page) == 1
    assert not k.pte(p, a) & _PAGE_RW  # zero page: never writable
    assert k.read("c", a, 1).data == b"\0"


# --- shared mappings ---------------------------------------------------------------
def test_shared_anon_mapping_stays_shared_and_writable(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw", ("shared",))
    k.write(p, a, b"before")
    page = k.page(p, a)

    k.fork(p, "c")

    assert k.pte(p, a) & _PAGE_RW  # no write-protect for VM_SHARED
    assert k.read("c", a, 6).data == b"before"
    k.write("c", a, b"child!")
    assert k.page("c", a) is page
    assert k.pte("c", a) & _PAGE_RW
    assert k.read(p, a, 6).data == b"child!"
    k.write(p, a, b"parent")
    assert k.read("c", a, 6).data == b"parent"
    assert page_mapcount(page) == 2


def test_shared_file_mapping_stays_shared_after_fork(k, p):
    f = k.add_file("/f", b"." * PAGE_SIZE, mode="rw")
    a = k.mmap(p, PAGE_SIZE, "rw", ("shared",), file="/f")
    k.write(p, a, b"P")
    k.fork(p, "c")

    k.write("c", a, b"C")

    assert k.page("c", a) is k.page(p, a) is f.mapping.page_tree[0]
    assert k.read(p, a, 1).data == b"C"
    assert f.content()[:1] == b"C"


# --- exit ------------------------------------------------------------------------------
def test_child_of_exited_parent_keeps_its_pages(k, p):
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    k.write(p, a, b"inherited")
    k.write(p, a + PAGE_SIZE, b"second")
    page = k.page(p, a)
    k.fork(p, "c")

    k.exit(p)

    assert page_mapcount(page) == 1 and page_count(page) == 1
    assert k.read("c", a, 9).data == b"inherited"
    assert not k.pte("c", a) & _PAGE_RW
    k.write("c", a, b"X")  # sole mapper: reuse, no copy
    assert k.page("c", a) is page
    assert k.read("c", a + PAGE_SIZE, 6).data == b"second"


def test_exit_frees_every_page_and_page_table(k, p):
    a = k.mmap(p, 4 * PAGE_SIZE, "rw")
    for i in range(4):
        k.write(p, a + i * PAGE_SIZE, b"x")
    k.read(p, k.mmap(p, PAGE_SIZE, "r"), 1)
    assert live_pages(k)

    k.exit(p)

    assert live_pages(k) == []
    assert page_count(k.zero_page) == 1 and page_mapcount(k.zero_page) == 0
    assert p.mm is None
    assert k.nr_page_table_pages == 0


def test_exit_of_both_processes_frees_shared_cow_pages(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"x")
    k.fork(p, "c")
    k.write("c", a, b"y")

    k.exit(p)
    k.exit("c")

    assert live_pages(k) == []


def test_exit_keeps_page_cache_pages(k, p):
    f = k.add_file("/f", b"z" * PAGE_SIZE, mode="r")
    a = k.mmap(p, PAGE_SIZE, "r", ("private",), file="/f")
    k.read(p, a, 1)

    k.exit(p)

    cached = f.mapping.page_tree[0]
    assert page_count(cached) == 1 and page_mapcount(cached) == 0
    assert live_pages(k) == [cached]


def test_child_does_not_inherit_mlock(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw", ("private", "locked"))
    assert k.vma(p, a).vm_flags & VM_LOCKED
    k.fork(p, "c")
    assert not k.vma("c", a).vm_flags & VM_LOCKED
    assert PageAnon(k.page("c", a))


def test_page_pinned_before_fork_goes_to_the_child_when_parent_writes(k, p):
    """2.6.15 do_wp_page decides by mapcount alone (can_share_swap_page): the
    parent, mapping the pinned page twice after fork, gets the copy, and the
    pin now refers to the child's page."""
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"dma")
    _, pages = k.gup(p, a, 1, write=True)
    pinned = pages[0]
    k.fork(p, "c")

    k.write(p, a, b"new")

    assert k.page(p, a) is not pinned
    assert k.page("c", a) is pinned
    assert page_count(pinned) == 2  # child's pte + the pin
    k.put_pages(pages)


def test_exit_of_both_processes_frees_shared_anonymous_pages(k, p):
    a = k.mmap(p, 2 * PAGE_SIZE, "rw", ("shared",))
    k.write(p, a, b"s")
    k.fork(p, "c")
    k.write("c", a + PAGE_SIZE, b"t")

    k.exit(p)
    data = [pg for pg in live_pages(k) if not pg.flags & PG_pgtable]
    assert len(data) == 2  # the shmem object lives on in the child
    k.exit("c")

    assert live_pages(k) == []


def test_fork_copies_every_pte_of_a_private_file_vma_with_anon_pages(k, p):
    """Once a private file vma has an anon_vma, copy_page_range copies all of
    its ptes: the COWed anonymous page and the untouched page-cache page."""
    f = k.add_file("/f", b"0" * PAGE_SIZE + b"1" * PAGE_SIZE, mode="r")
    a = k.mmap(p, 2 * PAGE_SIZE, "rw", ("private",), file="/f")
    k.write(p, a, b"W")
    k.read(p, a + PAGE_SIZE, 1)
    cached = f.mapping.page_tree[1]

    k.fork(p, "c")

    assert k.page("c", a) is k.page(p, a)
    assert k.page("c", a + PAGE_SIZE) is cached
    assert page_mapcount(cached) == 2
    assert rss(k.task("c")) == (1, 1)
