"""mmap, munmap, mprotect, madvise and mlock/munlock (mm/mmap.c, mm/mprotect.c,
mm/madvise.c, mm/mlock.c of Linux 2.6.15; x86-64 arch_get_unmapped_area)."""

from __future__ import annotations

import pytest

from pagewalk.kernel.constants import (
    PAGE_SIZE,
    PMD_SIZE,
    TASK_UNMAPPED_BASE,
    VM_ACCOUNT,
    VM_LOCKED,
    VM_MAYWRITE,
    VM_RAND_READ,
    VM_READ,
    VM_SEQ_READ,
    VM_SHARED,
    VM_WRITE,
)
from pagewalk.kernel.page import PageAnon, page_count, page_mapcount
from pagewalk.kernel.pgtable import _PAGE_DIRTY, _PAGE_RW

EBADF, ENOMEM, EACCES, EINVAL = -9, -12, -13, -22


def vmas(p) -> list[tuple[int, int]]:
    return [(v.vm_start, v.vm_end) for v in p.mm.vmas()]


def touch(k, p, addr: int, npages: int) -> None:
    for i in range(npages):
        assert k.write(p, addr + i * PAGE_SIZE, bytes([65 + i])).signal is None


# =============================================================================
# mmap
# =============================================================================
def test_mmap_length_zero_is_einval(k, p):
    assert k.mmap(p, 0, "rw") == EINVAL
    assert p.mm.mmap is None


def test_mmap_unaligned_offset_is_einval(k, p):
    k.add_file("/f", b"x" * 2 * PAGE_SIZE, mode="r")
    assert k.mmap(p, PAGE_SIZE, "r", ("private",), file="/f", offset=100) == EINVAL
    assert p.mm.mmap is None


def test_mmap_shared_writable_of_read_only_file_is_eacces(k, p):
    k.add_file("/ro", b"x" * PAGE_SIZE, mode="r")
    assert k.mmap(p, PAGE_SIZE, "rw", ("shared",), file="/ro") == EACCES
    assert p.mm.mmap is None


def test_mmap_shared_read_only_of_read_only_file_drops_maywrite(k, p):
    k.add_file("/ro", b"x" * PAGE_SIZE, mode="r")
    a = k.mmap(p, PAGE_SIZE, "r", ("shared",), file="/ro")
    assert a > 0
    flags = k.vma(p, a).vm_flags
    assert not flags & (VM_MAYWRITE | VM_SHARED)


def test_mmap_private_writable_of_read_only_file_is_allowed(k, p):
    k.add_file("/ro", b"x" * PAGE_SIZE, mode="r")
    a = k.mmap(p, PAGE_SIZE, "rw", ("private",), file="/ro")
    assert a > 0
    assert k.write(p, a, b"y").signal is None


@pytest.mark.parametrize("file", [None, "/f"], ids=["anon", "file"])
def test_mmap_neither_private_nor_shared_is_einval(k, p, file):
    k.add_file("/f", b"x" * PAGE_SIZE, mode="rw")
    assert k.mmap(p, PAGE_SIZE, "rw", (), file=file) == EINVAL
    assert p.mm.mmap is None


def test_first_mmap_is_at_task_unmapped_base(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    assert a == TASK_UNMAPPED_BASE == 0x2AAAAAAAB000


def test_next_mmap_goes_right_above(k, p):
    a = k.mmap(p, 3 * PAGE_SIZE, "r")
    b = k.mmap(p, PAGE_SIZE, "rw")
    assert b == a + 3 * PAGE_SIZE
    assert vmas(p) == [(a, b), (b, b + PAGE_SIZE)]


def test_adjacent_anonymous_private_mappings_merge(k, p):
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    b = k.mmap(p, PAGE_SIZE, "rw")
    assert b == a + 2 * PAGE_SIZE
    assert vmas(p) == [(a, a + 3 * PAGE_SIZE)]
    assert p.mm.map_count == 1


@pytest.mark.parametrize(
    ("prot", "flags"), [("r", ("private",)), ("rw", ("shared",))], ids=["other_prot", "shared"]
)
def test_incompatible_adjacent_mappings_do_not_merge(k, p, prot, flags):
    a = k.mmap(p, PAGE_SIZE, "rw")
    b = k.mmap(p, PAGE_SIZE, prot, flags)
    assert b == a + PAGE_SIZE
    assert p.mm.map_count == 2


def test_hint_address_is_used_when_free(k, p):
    hint = TASK_UNMAPPED_BASE + 100 * PAGE_SIZE
    assert k.mmap(p, PAGE_SIZE, "rw", addr=hint) == hint


def test_map_fixed_replaces_an_old_mapping(k, p):
    a = k.mmap(p, 3 * PAGE_SIZE, "rw")
    touch(k, p, a, 3)
    old = k.page(p, a + PAGE_SIZE)
    k.add_file("/f", b"F" * PAGE_SIZE, mode="r")

    b = k.mmap(p, PAGE_SIZE, "r", ("private", "fixed"), file="/f", addr=a + PAGE_SIZE)

    assert b == a + PAGE_SIZE
    assert vmas(p) == [(a, b), (b, b + PAGE_SIZE), (b + PAGE_SIZE, a + 3 * PAGE_SIZE)]
    assert k.vma(p, b).vm_file is k.files["/f"]
    assert page_count(old) == 0  # the anonymous page was zapped and freed
    assert not k.pte(p, b)
    assert k.read(p, b, 1).data == b"F"
    assert k.read(p, a, 1).data == b"A"
    assert k.read(p, a + 2 * PAGE_SIZE, 1).data == b"C"


def test_map_fixed_at_unaligned_address_is_einval(k, p):
    assert k.mmap(p, PAGE_SIZE, "rw", ("private", "fixed"), addr=TASK_UNMAPPED_BASE + 1) == EINVAL


def test_map_locked_populates_the_mapping(k, p):
    a = k.mmap(p, 3 * PAGE_SIZE, "rw", ("private", "locked"))
    assert all(PageAnon(k.page(p, a + i * PAGE_SIZE)) for i in range(3))
    assert p.mm._anon_rss == 3
    assert p.mm.locked_vm == 3


# =============================================================================
# munmap
# =============================================================================
def test_munmap_of_a_middle_part_splits_the_vma(k, p):
    a = k.mmap(p, 3 * PAGE_SIZE, "rw")
    touch(k, p, a, 3)
    middle = k.page(p, a + PAGE_SIZE)

    assert k.munmap(p, a + PAGE_SIZE, PAGE_SIZE) == 0

    assert vmas(p) == [(a, a + PAGE_SIZE), (a + 2 * PAGE_SIZE, a + 3 * PAGE_SIZE)]
    assert k.vma(p, a + 2 * PAGE_SIZE).vm_pgoff == ((a + 2 * PAGE_SIZE) >> 12)
    assert page_count(middle) == 0
    assert k.read(p, a + PAGE_SIZE, 1).signal == "SIGSEGV"
    assert k.read(p, a, 1).data == b"A"
    assert k.read(p, a + 2 * PAGE_SIZE, 1).data == b"C"
    assert p.mm._anon_rss == 2


def test_munmap_of_a_middle_part_of_a_file_mapping_keeps_offsets(k, p):
    k.add_file("/f", b"0" * PAGE_SIZE + b"1" * PAGE_SIZE + b"2" * PAGE_SIZE, mode="r")
    a = k.mmap(p, 3 * PAGE_SIZE, "r", ("private",), file="/f")

    assert k.munmap(p, a + PAGE_SIZE, PAGE_SIZE) == 0

    assert k.vma(p, a + 2 * PAGE_SIZE).vm_pgoff == 2
    assert k.read(p, a + 2 * PAGE_SIZE, 1).data == b"2"


@pytest.mark.parametrize(
    ("offset", "length"), [(1, PAGE_SIZE), (0, 0)], ids=["unaligned_start", "zero_length"]
)
def test_munmap_bad_arguments_are_einval(k, p, offset, length):
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    assert k.munmap(p, a + offset, length) == EINVAL
    assert vmas(p) == [(a, a + 2 * PAGE_SIZE)]


def test_munmap_of_unmapped_range_succeeds(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    assert k.munmap(p, a + 16 * PAGE_SIZE, PAGE_SIZE) == 0
    assert vmas(p) == [(a, a + PAGE_SIZE)]


def test_munmap_length_is_rounded_up(k, p):
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    assert k.munmap(p, a, 1) == 0
    assert vmas(p) == [(a + PAGE_SIZE, a + 2 * PAGE_SIZE)]


def test_munmap_frees_page_tables_nothing_else_uses(k, p):
    a = k.mmap(p, 4 * PAGE_SIZE, "rw")
    touch(k, p, a, 4)
    assert k.page_tables(p) == 3  # pud, pmd, pte

    assert k.munmap(p, a, 4 * PAGE_SIZE) == 0

    assert k.page_tables(p) == 0
    assert p.mm.nr_ptes == 0
    assert (p.mm._file_rss, p.mm._anon_rss) == (0, 0)


def test_munmap_keeps_the_pte_page_a_neighbour_uses(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    b = k.mmap(p, PAGE_SIZE, "r")  # adjacent, not merged
    assert b == a + PAGE_SIZE
    k.write(p, a, b"A")
    k.read(p, b, 1)

    assert k.munmap(p, a, PAGE_SIZE) == 0

    assert k.page_tables(p) == 3
    assert k.pte(p, a) == 0
    assert k.page(p, b) is k.zero_page


def test_munmap_frees_own_pte_page_but_keeps_neighbours_pmd(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    far = (a + 2 * PMD_SIZE) & ~(PMD_SIZE - 1)  # another pte page, same pmd page
    b = k.mmap(p, PAGE_SIZE, "rw", addr=far)
    assert b == far
    k.write(p, a, b"A")
    k.write(p, b, b"B")
    assert k.page_tables(p) == 4

    assert k.munmap(p, b, PAGE_SIZE) == 0

    assert k.page_tables(p) == 3
    assert p.mm.nr_ptes == 1
    assert k.read(p, a, 1).data == b"A"


# =============================================================================
# mprotect
# =============================================================================
def test_mprotect_unaligned_start_is_einval(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    assert k.mprotect(p, a + 1, PAGE_SIZE, "r") == EINVAL


def test_mprotect_of_unmapped_range_is_enomem(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    assert k.mprotect(p, a + 8 * PAGE_SIZE, PAGE_SIZE, "r") == ENOMEM


def test_mprotect_across_a_hole_is_enomem_after_changing_the_first_part(k, p):
    a = k.mmap(p, 3 * PAGE_SIZE, "rw")
    assert k.munmap(p, a + PAGE_SIZE, PAGE_SIZE) == 0

    assert k.mprotect(p, a, 3 * PAGE_SIZE, "r") == ENOMEM

    assert not k.vma(p, a).vm_flags & VM_WRITE
    assert k.vma(p, a + 2 * PAGE_SIZE).vm_flags & VM_WRITE


def test_mprotect_write_on_read_only_shared_file_mapping_is_eacces(k, p):
    """newflags & ~(newflags >> 4): VM_WRITE without VM_MAYWRITE."""
    k.add_file("/ro", b"x" * PAGE_SIZE, mode="r")
    a = k.mmap(p, PAGE_SIZE, "r", ("shared",), file="/ro")
    assert k.mprotect(p, a, PAGE_SIZE, "rw") == EACCES
    assert not k.vma(p, a).vm_flags & VM_WRITE


def test_mprotect_keeps_ptes_with_the_new_protection(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"keep")
    page = k.page(p, a)
    assert k.pte(p, a) & _PAGE_RW

    assert k.mprotect(p, a, PAGE_SIZE, "r") == 0

    pte = k.pte(p, a)
    assert k.page(p, a) is page
    assert not pte & _PAGE_RW
    assert pte & _PAGE_DIRTY  # pte_modify keeps accessed and dirty
    assert k.read(p, a, 4).data == b"keep"
    assert k.write(p, a, b"x").signal == "SIGSEGV"


def test_mprotect_down_then_up_private_needs_cow_fault_to_write(k, p):
    """protection_map for private writable is PAGE_COPY: the pte stays
    read-only and the next write goes through do_wp_page (reuse)."""
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"one")
    page = k.page(p, a)
    assert k.mprotect(p, a, PAGE_SIZE, "r") == 0

    assert k.mprotect(p, a, PAGE_SIZE, "rw") == 0

    assert not k.pte(p, a) & _PAGE_RW
    flt = p.min_flt
    assert k.write(p, a, b"two").signal is None
    assert p.min_flt == flt + 1
    assert k.page(p, a) is page
    assert k.pte(p, a) & _PAGE_RW


def test_mprotect_down_then_up_shared_makes_ptes_writable(k, p):
    k.add_file("/f", b"x" * PAGE_SIZE, mode="rw")
    a = k.mmap(p, PAGE_SIZE, "rw", ("shared",), file="/f")
    k.write(p, a, b"s")
    assert k.mprotect(p, a, PAGE_SIZE, "r") == 0
    assert not k.pte(p, a) & _PAGE_RW

    assert k.mprotect(p, a, PAGE_SIZE, "rw") == 0

    assert k.pte(p, a) & _PAGE_RW  # PAGE_SHARED
    flt = p.min_flt
    k.write(p, a, b"t")
    assert p.min_flt == flt


def test_mprotect_of_middle_page_splits_into_three_vmas(k, p):
    a = k.mmap(p, 3 * PAGE_SIZE, "rw")
    assert k.mprotect(p, a + PAGE_SIZE, PAGE_SIZE, "r") == 0
    assert vmas(p) == [
        (a, a + PAGE_SIZE),
        (a + PAGE_SIZE, a + 2 * PAGE_SIZE),
        (a + 2 * PAGE_SIZE, a + 3 * PAGE_SIZE),
    ]
    assert not k.vma(p, a + PAGE_SIZE).vm_flags & VM_WRITE


def test_mprotect_back_merges_the_vmas_again(k, p):
    a = k.mmap(p, 3 * PAGE_SIZE, "rw")
    assert k.mprotect(p, a + PAGE_SIZE, PAGE_SIZE, "r") == 0
    assert k.mprotect(p, a + PAGE_SIZE, PAGE_SIZE, "rw") == 0
    assert vmas(p) == [(a, a + 3 * PAGE_SIZE)]


def test_mprotect_prot_none_keeps_the_page(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"n")
    page = k.page(p, a)
    assert k.mprotect(p, a, PAGE_SIZE, "") == 0
    assert k.page(p, a) is page  # PROTNONE pte still maps it
    assert k.read(p, a, 1).signal == "SIGSEGV"
    assert k.mprotect(p, a, PAGE_SIZE, "r") == 0
    assert k.read(p, a, 1).data == b"n"


# =============================================================================
# madvise
# =============================================================================
def test_madvise_unaligned_start_is_einval(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    assert k.madvise(p, a + 1, PAGE_SIZE, "dontneed") == EINVAL


def test_madvise_zero_length_is_a_no_op(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"z")
    assert k.madvise(p, a, 0, "dontneed") == 0
    assert PageAnon(k.page(p, a))


def test_dontneed_on_mlocked_vma_is_einval(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"L")
    assert k.mlock(p, a, PAGE_SIZE) == 0
    page = k.page(p, a)

    assert k.madvise(p, a, PAGE_SIZE, "dontneed") == EINVAL

    assert k.page(p, a) is page


def test_dontneed_over_a_hole_is_enomem_but_zaps_the_mapped_part(k, p):
    a = k.mmap(p, 3 * PAGE_SIZE, "rw")
    touch(k, p, a, 3)
    assert k.munmap(p, a + PAGE_SIZE, PAGE_SIZE) == 0

    assert k.madvise(p, a, 3 * PAGE_SIZE, "dontneed") == ENOMEM

    assert not k.pte(p, a)
    assert not k.pte(p, a + 2 * PAGE_SIZE)
    assert p.mm._anon_rss == 0


def test_dontneed_range_ending_in_unmapped_space_is_enomem_after_zapping(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"x")
    assert k.madvise(p, a, 4 * PAGE_SIZE, "dontneed") == ENOMEM
    assert not k.pte(p, a)


def test_dontneed_frees_anon_pages_and_next_read_gives_zero_page(k, p):
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    touch(k, p, a, 2)
    pages = [k.page(p, a), k.page(p, a + PAGE_SIZE)]

    assert k.madvise(p, a, 2 * PAGE_SIZE, "dontneed") == 0

    assert all(page_count(pg) == 0 for pg in pages)
    assert p.mm._anon_rss == 0
    assert k.page_tables(p) == 3  # zap_page_range frees no tables
    assert k.read(p, a, 1).data == b"\0"
    assert k.page(p, a) is k.zero_page


def test_dontneed_on_private_file_page_reverts_to_file_content(k, p):
    f = k.add_file("/f", b"file text" + bytes(PAGE_SIZE - 9), mode="r")
    a = k.mmap(p, PAGE_SIZE, "rw", ("private",), file="/f")
    k.write(p, a, b"SCRIBBLE!")
    cow = k.page(p, a)
    assert PageAnon(cow)

    assert k.madvise(p, a, PAGE_SIZE, "dontneed") == 0

    assert page_count(cow) == 0
    assert k.read(p, a, 9).data == b"file text"
    assert k.page(p, a) is f.mapping.page_tree[0]


def test_dontneed_on_shared_file_keeps_the_written_data(k, p):
    f = k.add_file("/f", b"." * PAGE_SIZE, mode="rw")
    a = k.mmap(p, PAGE_SIZE, "rw", ("shared",), file="/f")
    k.write(p, a, b"saved")
    page = k.page(p, a)

    assert k.madvise(p, a, PAGE_SIZE, "dontneed") == 0

    assert page_mapcount(page) == 0 and page_count(page) == 1  # the cache's
    assert f.content()[:5] == b"saved"
    assert k.read(p, a, 5).data == b"saved"


def test_willneed_on_anonymous_memory_is_ebadf(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    assert k.madvise(p, a, PAGE_SIZE, "willneed") == EBADF


def test_willneed_reads_file_pages_so_the_next_fault_is_minor(k, p):
    f = k.add_file("/f", b"w" * 4 * PAGE_SIZE, mode="r")
    a = k.mmap(p, 4 * PAGE_SIZE, "r", ("private",), file="/f")

    assert k.madvise(p, a, 4 * PAGE_SIZE, "willneed") == 0

    assert sorted(f.mapping.page_tree) == [0, 1, 2, 3]
    assert k.page_tables(p) == 0  # nothing mapped
    k.read(p, a + 3 * PAGE_SIZE, 1)
    assert (p.maj_flt, p.min_flt) == (0, 1)


@pytest.mark.parametrize(
    ("advice", "flag"), [("random", VM_RAND_READ), ("sequential", VM_SEQ_READ)]
)
def test_read_hint_advice_splits_the_vma(k, p, advice, flag):
    a = k.mmap(p, 3 * PAGE_SIZE, "rw")

    assert k.madvise(p, a + PAGE_SIZE, PAGE_SIZE, advice) == 0

    assert p.mm.map_count == 3
    assert k.vma(p, a + PAGE_SIZE).vm_flags & flag
    assert not k.vma(p, a).vm_flags & flag
    assert not k.vma(p, a + 2 * PAGE_SIZE).vm_flags & flag


def test_normal_advice_after_random_merges_back(k, p):
    a = k.mmap(p, 3 * PAGE_SIZE, "rw")
    assert k.madvise(p, a + PAGE_SIZE, PAGE_SIZE, "random") == 0

    assert k.madvise(p, a + PAGE_SIZE, PAGE_SIZE, "normal") == 0

    assert vmas(p) == [(a, a + 3 * PAGE_SIZE)]
    assert not k.vma(p, a).vm_flags & (VM_RAND_READ | VM_SEQ_READ)


def test_normal_advice_on_normal_vma_changes_nothing(k, p):
    a = k.mmap(p, 3 * PAGE_SIZE, "rw")
    assert k.madvise(p, a + PAGE_SIZE, PAGE_SIZE, "normal") == 0
    assert p.mm.map_count == 1


# =============================================================================
# mlock / munlock
# =============================================================================
def test_mlock_read_only_anon_maps_zero_page_in_every_pte(k, p):
    """No FOLL_ANON for VM_LOCKED (deceb6cd): make_pages_present really faults."""
    a = k.mmap(p, 4 * PAGE_SIZE, "r")

    assert k.mlock(p, a, 4 * PAGE_SIZE) == 0

    assert all(k.page(p, a + i * PAGE_SIZE) is k.zero_page for i in range(4))
    assert page_mapcount(k.zero_page) == 4
    assert p.mm._file_rss == 4
    assert k.page_tables(p) == 3
    assert k.vma(p, a).vm_flags & VM_LOCKED
    assert p.mm.locked_vm == 4


def test_mlock_writable_private_anon_allocates_anon_pages(k, p):
    a = k.mmap(p, 3 * PAGE_SIZE, "rw")

    assert k.mlock(p, a, 3 * PAGE_SIZE) == 0

    pages = [k.page(p, a + i * PAGE_SIZE) for i in range(3)]
    assert all(pg is not k.zero_page and PageAnon(pg) for pg in pages)
    assert all(k.pte(p, a + i * PAGE_SIZE) & _PAGE_RW for i in range(3))
    assert p.mm._anon_rss == 3


def test_mlock_writable_private_file_breaks_cow_of_every_page(k, p):
    """make_pages_present write-faults a VM_WRITE vma: every page is copied."""
    f = k.add_file("/f", b"q" * 2 * PAGE_SIZE, mode="r")
    a = k.mmap(p, 2 * PAGE_SIZE, "rw", ("private",), file="/f")

    assert k.mlock(p, a, 2 * PAGE_SIZE) == 0

    assert all(PageAnon(k.page(p, a + i * PAGE_SIZE)) for i in range(2))
    assert k.read(p, a, 1).data == b"q"
    assert f.content() == b"q" * 2 * PAGE_SIZE


def test_munlock_keeps_the_pages(k, p):
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    assert k.mlock(p, a, 2 * PAGE_SIZE) == 0
    pages = [k.page(p, a), k.page(p, a + PAGE_SIZE)]

    assert k.munlock(p, a, 2 * PAGE_SIZE) == 0

    assert [k.page(p, a), k.page(p, a + PAGE_SIZE)] == pages
    assert not k.vma(p, a).vm_flags & VM_LOCKED
    assert p.mm.locked_vm == 0


def test_mlock_on_a_hole_is_enomem(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    assert k.mlock(p, a + 4 * PAGE_SIZE, PAGE_SIZE) == ENOMEM
    assert not k.pte(p, a)


def test_mlock_of_part_of_a_vma_splits_it(k, p):
    a = k.mmap(p, 3 * PAGE_SIZE, "rw")

    assert k.mlock(p, a + PAGE_SIZE, PAGE_SIZE) == 0

    assert p.mm.map_count == 3
    assert k.vma(p, a + PAGE_SIZE).vm_flags & VM_LOCKED
    assert not k.pte(p, a)
    assert PageAnon(k.page(p, a + PAGE_SIZE))


def test_munlock_merges_the_vmas_back(k, p):
    a = k.mmap(p, 3 * PAGE_SIZE, "rw")
    assert k.mlock(p, a + PAGE_SIZE, PAGE_SIZE) == 0
    assert k.munlock(p, a + PAGE_SIZE, PAGE_SIZE) == 0
    assert vmas(p) == [(a, a + 3 * PAGE_SIZE)]


def test_mlock_unaligned_start_is_rounded_down(k, p):
    a = k.mmap(p, 2 * PAGE_SIZE, "r")
    assert k.mlock(p, a + 10, PAGE_SIZE) == 0  # covers [a, a + 2 pages)
    assert k.page(p, a + PAGE_SIZE) is k.zero_page
    assert k.vma(p, a).vm_flags & VM_READ and p.mm.locked_vm == 2


# =============================================================================
# more address-space bookkeeping
# =============================================================================
def test_mmap_reuses_a_hole_left_by_munmap(k, p):
    """arch_unmap_area lowers free_area_cache to the new hole."""
    a = k.mmap(p, 3 * PAGE_SIZE, "r")
    assert k.munmap(p, a + PAGE_SIZE, PAGE_SIZE) == 0
    assert k.mmap(p, PAGE_SIZE, "rw") == a + PAGE_SIZE


def test_mmap_longer_than_the_address_space_is_enomem(k, p):
    assert k.mmap(p, 1 << 48, "rw") == ENOMEM


def test_munmap_spanning_two_vmas_trims_both(k, p):
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    b = k.mmap(p, 2 * PAGE_SIZE, "r")
    assert b == a + 2 * PAGE_SIZE

    assert k.munmap(p, a + PAGE_SIZE, 2 * PAGE_SIZE) == 0

    assert vmas(p) == [(a, a + PAGE_SIZE), (b + PAGE_SIZE, b + 2 * PAGE_SIZE)]


def test_munmap_of_shared_anonymous_mapping_frees_its_pages(k, p):
    """The shmem object dies with its last vma (fput -> truncate)."""
    a = k.mmap(p, 2 * PAGE_SIZE, "rw", ("shared",))
    touch(k, p, a, 2)
    pages = [k.page(p, a), k.page(p, a + PAGE_SIZE)]

    assert k.munmap(p, a, 2 * PAGE_SIZE) == 0

    assert all(page_count(pg) == 0 for pg in pages)


def test_munmap_moves_pte_dirty_bit_to_the_page_cache_page(k, p):
    """zap_pte_range: set_page_dirty for a dirty pte of a file page."""
    from pagewalk.kernel.page import PageDirty

    f = k.add_file("/f", b"." * PAGE_SIZE, mode="rw")
    a = k.mmap(p, PAGE_SIZE, "rw", ("shared",), file="/f")
    k.write(p, a, b"d")
    page = f.mapping.page_tree[0]
    assert not PageDirty(page)

    assert k.munmap(p, a, PAGE_SIZE) == 0

    assert PageDirty(page)
    assert page_count(page) == 1 and page_mapcount(page) == 0


def test_munmap_of_young_file_pte_marks_the_page_accessed(k, p):
    """zap_pte_range: mark_page_accessed for a young pte (second mark after
    filemap_nopage's: the page is activated)."""
    from pagewalk.kernel.page import PageActive

    f = k.add_file("/f", b"." * PAGE_SIZE, mode="r")
    a = k.mmap(p, PAGE_SIZE, "r", ("private",), file="/f")
    k.read(p, a, 1)
    page = f.mapping.page_tree[0]
    assert not PageActive(page)

    assert k.munmap(p, a, PAGE_SIZE) == 0

    assert PageActive(page)


def test_zap_does_not_dirty_anonymous_pages(k, p):
    """zap_pte_range leaves anonymous pages clean (prep series 04/21,
    "zap_pte_range dont dirty anon")."""
    from pagewalk.kernel.page import PageDirty

    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"a")
    _, pages = k.gup(p, a, 1)
    assert k.pte(p, a) & _PAGE_DIRTY

    assert k.munmap(p, a, PAGE_SIZE) == 0

    assert not PageDirty(pages[0])
    k.put_pages(pages)


def test_adjacent_mappings_of_the_same_file_at_contiguous_offsets_merge(k, p):
    """do_mmap_pgoff tries vma_merge for file mappings after ->mmap."""
    k.add_file("/f", b"0" * PAGE_SIZE + b"1" * PAGE_SIZE, mode="r")
    a = k.mmap(p, PAGE_SIZE, "r", ("private",), file="/f", offset=0)
    b = k.mmap(p, PAGE_SIZE, "r", ("private",), file="/f", offset=PAGE_SIZE)
    assert b == a + PAGE_SIZE
    assert vmas(p) == [(a, a + 2 * PAGE_SIZE)]
    assert k.read(p, b, 1).data == b"1"


def test_map_fixed_anonymous_hole_in_anonymous_mapping_merges_back(k, p):
    a = k.mmap(p, 3 * PAGE_SIZE, "rw")
    touch(k, p, a, 3)
    old = k.page(p, a + PAGE_SIZE)

    b = k.mmap(p, PAGE_SIZE, "rw", ("private", "fixed"), addr=a + PAGE_SIZE)

    assert b == a + PAGE_SIZE
    assert vmas(p) == [(a, a + 3 * PAGE_SIZE)]
    assert page_count(old) == 0
    assert k.read(p, b, 1).data == b"\0"
    assert k.read(p, a + 2 * PAGE_SIZE, 1).data == b"C"


def test_mprotect_merging_into_neighbour_moves_the_anon_vma(k, p):
    """vma_adjust: when prev expands over part of next, prev imports next's
    anon_vma -- so the moved anonymous pages are still found (fork copies
    the ptes of a vma only if it has an anon_vma)."""
    a = k.mmap(p, PAGE_SIZE, "rw")
    assert k.mprotect(p, a, PAGE_SIZE, "r") == 0  # untouched, no anon_vma
    b = k.mmap(p, 2 * PAGE_SIZE, "rw")
    assert b == a + PAGE_SIZE and p.mm.map_count == 2
    touch(k, p, b, 2)

    assert k.mprotect(p, b, PAGE_SIZE, "r") == 0

    assert vmas(p) == [(a, b + PAGE_SIZE), (b + PAGE_SIZE, b + 2 * PAGE_SIZE)]
    assert k.vma(p, a).anon_vma is not None
    k.fork(p, "c")
    assert k.page("c", b) is k.page(p, b)
    assert k.read("c", b, 1).data == b"A"


def test_munmap_of_locked_mapping_drops_locked_vm(k, p):
    a = k.mmap(p, 3 * PAGE_SIZE, "rw", ("private", "locked"))
    assert p.mm.locked_vm == 3
    assert k.munmap(p, a, PAGE_SIZE) == 0
    assert p.mm.locked_vm == 2


def test_mlock_of_prot_none_area_reports_make_pages_present_efault(k, p):
    """mlock_fixup returns make_pages_present's result: get_user_pages without
    force fails the VM_READ test with -EFAULT.  VM_LOCKED is set all the same."""
    a = k.mmap(p, PAGE_SIZE, "")

    assert k.mlock(p, a, PAGE_SIZE) == -14

    assert k.vma(p, a).vm_flags & VM_LOCKED
    assert k.page_tables(p) == 0


def test_mlock_of_file_mapping_past_eof_returns_minus_one(k, p):
    """make_pages_present: ``ret == len ? 0 : -1`` -- a partial result (SIGBUS
    past EOF) comes back from mlock as -1 (-EPERM)."""
    k.add_file("/f", b"e" * PAGE_SIZE, mode="r")
    a = k.mmap(p, 2 * PAGE_SIZE, "r", ("private",), file="/f")

    assert k.mlock(p, a, 2 * PAGE_SIZE) == -1

    assert k.page(p, a) is not None
    assert not k.pte(p, a + PAGE_SIZE)


def test_dontneed_over_two_vmas_zaps_first_then_refuses_locked_one(k, p):
    a = k.mmap(p, PAGE_SIZE, "rw")
    b = k.mmap(p, PAGE_SIZE, "rw", ("private", "locked"))
    assert b == a + PAGE_SIZE and p.mm.map_count == 2
    k.write(p, a, b"a")

    assert k.madvise(p, a, 2 * PAGE_SIZE, "dontneed") == EINVAL

    assert not k.pte(p, a)
    assert PageAnon(k.page(p, b))


def test_random_advice_disables_read_around(k, p):
    """filemap_nopage: VM_RandomReadHint -> no_cached_page, one page at a time.
    The fault stays minor: 2.6.15 sets VM_FAULT_MAJOR only on the read-around
    path ("if (!did_readaround) { majmin = VM_FAULT_MAJOR; ..."), which a
    random vma never takes."""
    f = k.add_file("/f", b"r" * 3 * PAGE_SIZE, mode="r")
    a = k.mmap(p, 3 * PAGE_SIZE, "r", ("private",), file="/f")
    assert k.madvise(p, a, 3 * PAGE_SIZE, "random") == 0

    k.read(p, a, 1)
    assert sorted(f.mapping.page_tree) == [0]
    k.read(p, a + PAGE_SIZE, 1)

    assert (p.maj_flt, p.min_flt) == (0, 2)


def test_mlock_of_already_locked_range_does_not_fault_again(k, p):
    """mlock_fixup: newflags == vm_flags -> nothing to do, no make_pages_present."""
    a = k.mmap(p, PAGE_SIZE, "", ("private", "locked"))
    assert k.mprotect(p, a, PAGE_SIZE, "r") == 0

    assert k.mlock(p, a, PAGE_SIZE) == 0

    assert k.page_tables(p) == 0
    assert p.min_flt == 0


# =============================================================================
# regressions: behaviour the model once got wrong
# =============================================================================


def test_mprotect_growsdown_and_growsup_together_is_einval(k, p):
    from pagewalk.kernel.constants import PROT_GROWSDOWN, PROT_GROWSUP, PROT_READ

    a = k.mmap(p, 2 * PAGE_SIZE, "rw")

    assert k.mprotect(p, a, PAGE_SIZE, PROT_READ | PROT_GROWSDOWN | PROT_GROWSUP) == EINVAL
    assert vmas(p) == [(a, a + 2 * PAGE_SIZE)]


def test_mprotect_growsdown_on_vma_that_does_not_grow_down_is_einval(k, p):
    from pagewalk.kernel.constants import PROT_GROWSDOWN, PROT_READ

    a = k.mmap(p, 2 * PAGE_SIZE, "rw")

    assert k.mprotect(p, a + PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_GROWSDOWN) == EINVAL
    assert k.vma(p, a).vm_flags & VM_WRITE


def test_mprotect_growsdown_applies_from_the_start_of_the_stack_vma(k, p):
    from pagewalk.kernel.constants import PROT_GROWSDOWN, PROT_READ

    s = k.mmap(p, 4 * PAGE_SIZE, "rw", ("private", "growsdown"), addr=0x7FFF00000000)
    assert s == 0x7FFF00000000

    assert k.mprotect(p, s + 2 * PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_GROWSDOWN) == 0

    assert vmas(p) == [(s, s + 3 * PAGE_SIZE), (s + 3 * PAGE_SIZE, s + 4 * PAGE_SIZE)]
    assert not k.vma(p, s).vm_flags & VM_WRITE


def test_willneed_on_shared_anonymous_memory_allocates_nothing(k, p):
    a = k.mmap(p, 4 * PAGE_SIZE, "rw", ("shared",))

    assert k.madvise(p, a, 4 * PAGE_SIZE, "willneed") == 0

    assert k.vma(p, a).vm_file.mapping.page_tree == {}


def test_sequential_advice_reads_a_first_window_of_eight_pages_and_the_fault_is_minor(k, p):
    """filemap_nopage calls page_cache_readahead for a VM_SEQ_READ vma: a first
    read at offset 0 opens get_init_ra_size(1, 32) = 8 pages, then finds the
    page cached (a minor fault), instead of the 32-page read-around."""
    f = k.add_file("/f", b"s" * 64 * PAGE_SIZE, mode="r")
    a = k.mmap(p, 64 * PAGE_SIZE, "r", ("private",), file="/f")
    assert k.madvise(p, a, 64 * PAGE_SIZE, "sequential") == 0

    k.read(p, a, 1)

    assert sorted(f.mapping.page_tree) == list(range(8))
    assert (p.maj_flt, p.min_flt) == (0, 1)


def test_sequential_reads_open_an_ahead_window_after_the_first(k, p):
    f = k.add_file("/f", b"s" * 64 * PAGE_SIZE, mode="r")
    a = k.mmap(p, 64 * PAGE_SIZE, "r", ("private",), file="/f")
    assert k.madvise(p, a, 64 * PAGE_SIZE, "sequential") == 0

    k.read(p, a, 1)
    k.read(p, a + PAGE_SIZE, 1)  # sequential, no ahead window yet: 8 + 16

    assert sorted(f.mapping.page_tree) == list(range(24))


def test_read_around_stops_after_a_hundred_net_misses(k, p):
    """filemap_nopage: "if (ra->mmap_miss > ra->mmap_hit + MMAP_LOTSAMISS)
    goto no_cached_page": the 101st miss in a row reads its page alone."""
    f = k.add_file("/f", b"m" * 816 * PAGE_SIZE, mode="r")
    f.f_ra.ra_pages = 4  # windows [8i - 2, 8i + 2) ([0, 4) first) never overlap
    a = k.mmap(p, 816 * PAGE_SIZE, "r", ("private",), file="/f")
    for i in range(100):
        k.read(p, a + 8 * i * PAGE_SIZE, 1)
    assert len(f.mapping.page_tree) == 100 * 4 and p.maj_flt == 100

    k.read(p, a + 800 * PAGE_SIZE, 1)

    assert 801 not in f.mapping.page_tree and 800 in f.mapping.page_tree
    assert (p.maj_flt, p.min_flt) == (100, 1)


def test_shared_mappings_lose_vm_account_private_writable_ones_keep_it(k, p):
    """do_mmap_pgoff clears VM_ACCOUNT on a shared vma: the reservation is the
    shared object's, not the vma's."""
    k.add_file("/f", b"f" * PAGE_SIZE)
    shared_anon = k.mmap(p, PAGE_SIZE, "rw", ("shared",))
    shared_file = k.mmap(p, PAGE_SIZE, "rw", ("shared",), file="/f")
    private = k.mmap(p, PAGE_SIZE, "rw", ("private",), file="/f")
    assert not k.vma(p, shared_anon).vm_flags & VM_ACCOUNT
    assert not k.vma(p, shared_file).vm_flags & VM_ACCOUNT
    assert k.vma(p, private).vm_flags & VM_ACCOUNT


def _unmergeable_mappings(k, p, n: int) -> list[int]:
    return [k.mmap(p, PAGE_SIZE, "r" if i % 2 else "rw") for i in range(n)]


def test_mmap_past_max_map_count_is_enomem(k, p):
    """do_mmap_pgoff: "if (mm->map_count > sysctl_max_map_count) return -ENOMEM"."""
    k.sysctl_max_map_count = 3
    _unmergeable_mappings(k, p, 4)
    assert p.mm.map_count == 4
    assert k.mmap(p, PAGE_SIZE, "rw") == ENOMEM


def test_split_at_max_map_count_is_enomem(k, p):
    """split_vma: "if (mm->map_count >= sysctl_max_map_count) return -ENOMEM"."""
    k.sysctl_max_map_count = 2
    a = k.mmap(p, 3 * PAGE_SIZE, "rw")
    k.mmap(p, PAGE_SIZE, "r")
    assert k.munmap(p, a + PAGE_SIZE, PAGE_SIZE) == ENOMEM
    assert k.mprotect(p, a, PAGE_SIZE, "r") == ENOMEM
    assert vmas(p)[0] == (a, a + 3 * PAGE_SIZE)
