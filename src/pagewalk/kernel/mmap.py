"""mm/mmap.c (plus arch/x86_64/kernel/sys_x86_64.c's unmapped-area search),
Linux 2.6.15: the vma list, mmap, munmap, merging, splitting, stack growth
and exit_mmap.

Not modelled: overcommit accounting (VM_ACCOUNT is set, and cleared again on
a shared vma, as the kernel does, but never refuses), rlimits (every process
may mlock and grow its stack freely, as root), file write-denial, mempolicies
other than the default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ModelFailure
from .constants import (
    EACCES,
    EINVAL,
    ENOMEM,
    EOVERFLOW,
    FIRST_USER_ADDRESS,
    HPAGE_MASK_LOW,
    MAP_FIXED,
    MAP_GROWSDOWN,
    MAP_LOCKED,
    MAP_NONBLOCK,
    MAP_NORESERVE,
    MAP_POPULATE,
    MAP_PRIVATE,
    MAP_SHARED,
    MAP_TYPE,
    PAGE_MASK,
    PAGE_MASK_LOW,
    PAGE_SHIFT,
    PAGE_SIZE,
    PMD_SHIFT,
    PMD_SIZE,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    TASK_SIZE,
    TASK_UNMAPPED_BASE,
    ULONG_MAX,
    VM_ACCOUNT,
    VM_EXEC,
    VM_GROWSDOWN,
    VM_GROWSUP,
    VM_LOCKED,
    VM_MAYEXEC,
    VM_MAYREAD,
    VM_MAYSHARE,
    VM_MAYWRITE,
    VM_READ,
    VM_SHARED,
    VM_SPECIAL,
    VM_WRITE,
)
from .memory import make_pages_present, unmap_vmas
from .mm import mm_struct, update_hiwater_rss
from .pgalloc import free_pgtables
from .pgtable import protection_map
from .rmap import anon_vma_prepare
from .tlb import tlb_finish_mmu, tlb_gather_mmu
from .vma import anon_vma, is_vm_hugetlb_page, vm_area_struct, vma_pages

if TYPE_CHECKING:
    from .filemap import File
    from .mm import task_struct


def PAGE_ALIGN(x: int) -> int:
    return (x + PAGE_SIZE - 1) & ~PAGE_MASK_LOW


# --- lookup ------------------------------------------------------------------
def find_vma(mm: mm_struct, addr: int) -> vm_area_struct | None:
    """The first vma with ``addr < vm_end`` (it may start above addr)."""
    vma = mm.mmap_cache
    if vma is not None and vma.vm_end > addr and vma.vm_start <= addr:
        return vma
    vma = mm.rb_find(addr)
    if vma is not None:
        mm.mmap_cache = vma
    return vma


def find_vma_prev(mm: mm_struct, addr: int) -> tuple[vm_area_struct | None, vm_area_struct | None]:
    """(vma, prev): find_vma plus the vma before it."""
    prev = None
    vma = mm.mmap
    while vma is not None and vma.vm_end <= addr:
        prev = vma
        vma = vma.vm_next
    return vma, prev


def find_extend_vma(mm: mm_struct, addr: int) -> vm_area_struct | None:
    """find_vma, growing a VM_GROWSDOWN vma down to ``addr`` if needed
    (x86-64 stacks grow down)."""
    addr &= PAGE_MASK
    vma = find_vma(mm, addr)
    if vma is None:
        return None
    if vma.vm_start <= addr:
        return vma
    if not vma.vm_flags & VM_GROWSDOWN:
        return None
    start = vma.vm_start
    if expand_stack(vma, addr):
        return None
    if vma.vm_flags & VM_LOCKED:
        make_pages_present(addr, start, mm.k.current)
    return vma


def expand_stack(vma: vm_area_struct, address: int) -> int:
    """mm/mmap.c expand_stack() (x86-64, grows down): move vm_start down to
    ``address`` (0, or -ENOMEM).  Callers found ``vma`` with find_vma, so no
    vma lies between; acct_stack_growth's rlimit checks are not modelled, only
    its total_vm/locked_vm accounting."""
    if anon_vma_prepare(vma):
        return -ENOMEM
    address &= PAGE_MASK
    if address < vma.vm_start:
        mm = vma.vm_mm
        grow = (vma.vm_start - address) >> PAGE_SHIFT
        mm.total_vm += grow  # acct_stack_growth
        if vma.vm_flags & VM_LOCKED:
            mm.locked_vm += grow
        vma.vm_start = address
        vma.vm_pgoff = (vma.vm_pgoff - grow) & ULONG_MAX  # unsigned long wraps
    return 0


# --- the list ----------------------------------------------------------------
def vma_link(mm: mm_struct, vma: vm_area_struct, prev: vm_area_struct | None) -> None:
    """__vma_link_list + __vma_link_rb."""
    if prev is not None:
        vma.vm_next = prev.vm_next
        prev.vm_next = vma
    else:
        vma.vm_next = mm.mmap
        mm.mmap = vma
    mm.rb_insert(vma)
    mm.map_count += 1


def __vma_unlink(mm: mm_struct, vma: vm_area_struct, prev: vm_area_struct | None) -> None:
    if prev is not None:
        prev.vm_next = vma.vm_next
    else:
        mm.mmap = vma.vm_next
    mm.rb_erase(vma)
    if mm.mmap_cache is vma:
        mm.mmap_cache = prev


def vma_adjust(
    vma: vm_area_struct, start: int, end: int, pgoff: int, insert: vm_area_struct | None
) -> None:
    """Change a vma's bounds, inserting a split-off part or absorbing /
    trimming its successor; anon_vma moves with the pages it covers."""
    mm = vma.vm_mm
    orig_end = end
    nxt = vma.vm_next
    importer = None
    remove_next = 0
    adjust_next = 0
    if nxt is not None and insert is None:
        if end >= nxt.vm_end:
            # vma expands, overlapping all of next (and perhaps the one after)
            again = end > nxt.vm_end
            remove_next = 1 + again
            end = nxt.vm_end
            importer = vma
            exporter = nxt
        elif end > nxt.vm_start:
            # vma expands, overlapping part of next
            adjust_next = (end - nxt.vm_start) >> PAGE_SHIFT
            importer, exporter = vma, nxt
        elif end < vma.vm_end:
            # vma shrinks, and next expands over what it gives up
            adjust_next = -((vma.vm_end - end) >> PAGE_SHIFT)
            importer, exporter = nxt, vma
        if importer is not None and importer.anon_vma is None and exporter.anon_vma is not None:
            importer.anon_vma = exporter.anon_vma
    vma.vm_start = start
    vma.vm_end = end
    vma.vm_pgoff = pgoff
    if adjust_next:
        nxt.vm_start += adjust_next << PAGE_SHIFT
        nxt.vm_pgoff += adjust_next
    if remove_next:
        __vma_unlink(mm, nxt, vma)
        mm.map_count -= 1
        remove_vma(nxt)
    if insert is not None:
        # split_vma inserting either before or after the vma
        vma_link(mm, insert, find_vma_prev(mm, insert.vm_start)[1])  # __insert_vm_struct
    mm.rb_resort()
    if remove_next == 2:
        # mprotect's case 6: the vma after next goes too ("goto again")
        vma_adjust(vma, start, orig_end, pgoff, None)


def _is_mergeable_vma(vma: vm_area_struct, file: File | None, vm_flags: int) -> bool:
    return vma.vm_flags == vm_flags and vma.vm_file is file


def _anon_vmas_compatible(a1: anon_vma | None, a2: anon_vma | None) -> bool:
    """2.6.15's is_mergeable_anon_vma(): unless both have one and they
    differ.  vma_merge also asks it of prev and next when it would join them
    (6.18's are_anon_vmas_compatible())."""
    return a1 is None or a2 is None or a1 is a2


def is_mergeable_anon_vma(av: anon_vma | None, tgt: vm_area_struct, src_forked: bool) -> bool:
    """mm/mmap.c is_mergeable_anon_vma(): may a range whose anon_vma is ``av``
    merge into the neighbour ``tgt``?  2.6.15: :func:`_anon_vmas_compatible`.
    ``merge_skips_fork_children`` (965f55dea0e3, in 6.18's form,
    mm/vma.c): one side without an anon_vma merges only if the side with one
    did not get it by fork (``src_forked``: the range's own vma's)."""
    if not tgt.vm_mm.k.semantics.merge_skips_fork_children:
        return _anon_vmas_compatible(av, tgt.anon_vma)
    if tgt.anon_vma is None and av is not None:  # tgt will take src's anon_vma
        return not src_forked
    if tgt.anon_vma is not None and av is None:  # src will take tgt's
        return not tgt.anon_vma_forked
    return av is tgt.anon_vma


def _can_vma_merge_before(
    vma: vm_area_struct,
    vm_flags: int,
    av: anon_vma | None,
    file: File | None,
    vm_pgoff: int,
    src_forked: bool = False,
) -> bool:
    return (
        _is_mergeable_vma(vma, file, vm_flags)
        and is_mergeable_anon_vma(av, vma, src_forked)
        and vma.vm_pgoff == vm_pgoff
    )


def _can_vma_merge_after(
    vma: vm_area_struct,
    vm_flags: int,
    av: anon_vma | None,
    file: File | None,
    vm_pgoff: int,
    src_forked: bool = False,
) -> bool:
    return (
        _is_mergeable_vma(vma, file, vm_flags)
        and is_mergeable_anon_vma(av, vma, src_forked)
        and vma.vm_pgoff + vma_pages(vma) == vm_pgoff
    )


def find_mergeable_anon_vma(vma: vm_area_struct) -> anon_vma | None:
    """mm/mmap.c find_mergeable_anon_vma(): the anon_vma of an adjacent vma
    that mprotect could later merge with this one (flags equal but for
    VM_READ|VM_WRITE|VM_EXEC, same file, contiguous offsets), or None."""
    rwx = VM_READ | VM_WRITE | VM_EXEC
    near = vma.vm_next
    if near is not None:
        vm_flags = (vma.vm_flags & ~rwx) | (near.vm_flags & rwx)
        if (
            near.anon_vma is not None
            and vma.vm_end == near.vm_start
            and _can_vma_merge_before(
                near, vm_flags, None, vma.vm_file, vma.vm_pgoff + vma_pages(vma)
            )
        ):
            return near.anon_vma
    # try_prev:
    found, near = find_vma_prev(vma.vm_mm, vma.vm_start)
    if found is not vma:
        raise ModelFailure("mm/mmap.c:find_mergeable_anon_vma: BUG()", repr(vma))
    if near is None:
        return None
    vm_flags = (vma.vm_flags & ~rwx) | (near.vm_flags & rwx)
    if (
        near.anon_vma is not None
        and near.vm_end == vma.vm_start
        and _can_vma_merge_after(near, vm_flags, None, vma.vm_file, vma.vm_pgoff)
    ):
        return near.anon_vma
    return None


def vma_merge(
    mm: mm_struct,
    prev: vm_area_struct | None,
    addr: int,
    end: int,
    vm_flags: int,
    av: anon_vma | None,
    file: File | None,
    pgoff: int,
) -> vm_area_struct | None:
    """Merge [addr, end) with prev and/or next when flags, file, offset and
    anon_vma allow; returns the vma that now covers the range, or None."""
    pglen = (end - addr) >> PAGE_SHIFT
    if vm_flags & VM_SPECIAL:
        return None
    nxt = prev.vm_next if prev is not None else mm.mmap
    area = nxt
    if nxt is not None and nxt.vm_end == end:  # cases 6, 7, 8
        nxt = nxt.vm_next
    # an anon_vma comes only with a range of an existing vma: the one at addr
    forked = av is not None and find_vma(mm, addr).anon_vma_forked
    if (
        prev is not None
        and prev.vm_end == addr
        and _can_vma_merge_after(prev, vm_flags, av, file, pgoff, forked)
    ):
        if (
            nxt is not None
            and end == nxt.vm_start
            and _can_vma_merge_before(nxt, vm_flags, av, file, pgoff + pglen, forked)
            and _anon_vmas_compatible(prev.anon_vma, nxt.anon_vma)
        ):
            vma_adjust(prev, prev.vm_start, nxt.vm_end, prev.vm_pgoff, None)  # cases 1, 6
        else:
            vma_adjust(prev, prev.vm_start, end, prev.vm_pgoff, None)  # cases 2, 5, 7
        return prev
    if (
        nxt is not None
        and end == nxt.vm_start
        and _can_vma_merge_before(nxt, vm_flags, av, file, pgoff + pglen, forked)
    ):
        if prev is not None and addr < prev.vm_end:  # case 4
            vma_adjust(prev, prev.vm_start, addr, prev.vm_pgoff, None)
        else:  # cases 3, 8
            vma_adjust(area, addr, nxt.vm_end, nxt.vm_pgoff - pglen, None)
        return area
    return None


def split_vma(mm: mm_struct, vma: vm_area_struct, addr: int, new_below: int) -> int:
    """Split a vma at addr; the new vma takes the part below (new_below) or above."""
    if is_vm_hugetlb_page(vma) and addr & HPAGE_MASK_LOW:
        return -EINVAL
    if mm.map_count >= mm.k.sysctl_max_map_count:
        return -ENOMEM
    new = vma.copy()
    if new_below:
        new.vm_end = addr
        vma_adjust(vma, addr, vma.vm_end, vma.vm_pgoff + ((addr - new.vm_start) >> PAGE_SHIFT), new)
    else:
        new.vm_start = addr
        new.vm_pgoff += (addr - vma.vm_start) >> PAGE_SHIFT
        vma_adjust(vma, vma.vm_start, addr, vma.vm_pgoff, new)
    return 0


# --- address space layout ----------------------------------------------------
def arch_get_unmapped_area(mm: mm_struct, addr: int, length: int, flags: int) -> int:
    """x86-64 legacy bottom-up search from free_area_cache (TASK_UNMAPPED_BASE)."""
    begin, end = TASK_UNMAPPED_BASE, TASK_SIZE
    if length > end:
        return -ENOMEM
    if addr:
        addr = PAGE_ALIGN(addr)
        vma = find_vma(mm, addr)
        if end - length >= addr and (vma is None or addr + length <= vma.vm_start):
            return addr
    # (the cached_hole_size reset applies to 32-bit tasks only)
    addr = max(mm.free_area_cache, begin)
    start_addr = addr
    while True:  # full_search:
        vma = find_vma(mm, addr)
        while True:
            if end - length < addr:
                if start_addr != begin:
                    start_addr = addr = begin
                    mm.cached_hole_size = 0
                    break
                return -ENOMEM
            if vma is None or addr + length <= vma.vm_start:
                mm.free_area_cache = addr + length
                return addr
            if addr + mm.cached_hole_size < vma.vm_start:
                mm.cached_hole_size = vma.vm_start - addr
            addr = vma.vm_end
            vma = vma.vm_next


def arch_unmap_area(mm: mm_struct, addr: int) -> None:
    """Let the next search start at a hole opened below the cache."""
    if addr >= TASK_UNMAPPED_BASE and addr < mm.free_area_cache:
        mm.free_area_cache = addr
        mm.cached_hole_size = ULONG_MAX


def get_unmapped_area(
    mm: mm_struct, file: File | None, addr: int, length: int, pgoff: int, flags: int
) -> int:
    if not flags & MAP_FIXED:
        if file is not None and file.hugetlb:
            from .hugetlb import hugetlb_get_unmapped_area

            addr = hugetlb_get_unmapped_area(mm, addr, length, flags)
        else:
            addr = arch_get_unmapped_area(mm, addr, length, flags)
        if addr < 0:
            return addr
    if addr > TASK_SIZE - length:
        return -ENOMEM
    if addr & PAGE_MASK_LOW:
        return -EINVAL
    if file is not None and file.hugetlb and (addr | length) & HPAGE_MASK_LOW:
        return -EINVAL  # prepare_hugepage_range
    return addr


def calc_vm_prot_bits(prot: int) -> int:
    return (
        (VM_READ if prot & PROT_READ else 0)
        | (VM_WRITE if prot & PROT_WRITE else 0)
        | (VM_EXEC if prot & PROT_EXEC else 0)
    )


# --- mmap ----------------------------------------------------------------------
def do_mmap_pgoff(
    current: task_struct,
    file: File | None,
    addr: int,
    length: int,
    prot: int,
    flags: int,
    pgoff: int,
) -> int:
    """Create a mapping; returns its address or -errno.  Caller holds mmap_sem
    for write.  MAP_LOCKED mappings are faulted in with make_pages_present;
    MAP_POPULATE populates only shared mappings, as in this era."""
    mm = current.mm
    if file is not None and file.hugetlb:
        pass  # hugetlbfs is mmap-able; checked below
    if not length:
        return -EINVAL
    length = PAGE_ALIGN(length)
    if not length or length > TASK_SIZE:
        return -ENOMEM
    if pgoff + (length >> PAGE_SHIFT) < pgoff:
        return -EOVERFLOW
    if mm.map_count > mm.k.sysctl_max_map_count:  # too many mappings?
        return -ENOMEM
    addr = get_unmapped_area(mm, file, addr, length, pgoff, flags)
    if addr < 0:
        return addr
    vm_flags = (
        calc_vm_prot_bits(prot)
        | (VM_GROWSDOWN if flags & MAP_GROWSDOWN else 0)
        | mm.def_flags
        | VM_MAYREAD
        | VM_MAYWRITE
        | VM_MAYEXEC
    )
    if flags & MAP_LOCKED:
        vm_flags |= VM_LOCKED
    if file is not None:
        from .filemap import FMODE_READ, FMODE_WRITE

        maptype = flags & MAP_TYPE
        if maptype == MAP_SHARED:
            if prot & PROT_WRITE and not file.f_mode & FMODE_WRITE:
                return -EACCES
            vm_flags |= VM_SHARED | VM_MAYSHARE
            if not file.f_mode & FMODE_WRITE:
                vm_flags &= ~(VM_MAYWRITE | VM_SHARED)
        elif maptype != MAP_PRIVATE:
            return -EINVAL
        if not file.f_mode & FMODE_READ:
            return -EACCES
    else:
        maptype = flags & MAP_TYPE
        if maptype == MAP_SHARED:
            vm_flags |= VM_SHARED | VM_MAYSHARE
        elif maptype == MAP_PRIVATE:
            pgoff = addr >> PAGE_SHIFT
        else:
            return -EINVAL

    # munmap_back: clear anything in the way (MAP_FIXED)
    while True:
        vma, prev = find_vma_prev(mm, addr)
        if vma is not None and vma.vm_start < addr + length:
            if do_munmap(mm, addr, length):
                return -ENOMEM
            continue
        break
    accountable = not (file is not None and file.hugetlb)
    if accountable and not flags & MAP_NORESERVE and (vm_flags & VM_SHARED or vm_flags & VM_WRITE):
        vm_flags |= VM_ACCOUNT  # (overcommit itself is not modelled)

    # Can we just expand an old private anonymous mapping?
    if (
        file is None
        and not vm_flags & VM_SHARED
        and vma_merge(mm, prev, addr, addr + length, vm_flags, None, None, pgoff)
    ):
        return _mmap_out(current, addr, length, vm_flags, flags, pgoff)

    vma = vm_area_struct(mm, addr, addr + length, vm_flags, protection_map[vm_flags & 0xF], pgoff)
    if file is not None:
        if vm_flags & (VM_GROWSDOWN | VM_GROWSUP):
            return -EINVAL
        from .filemap import get_file

        vma.vm_file = file
        get_file(file)
        err = _file_mmap(file, vma)
        if err:  # unmap_and_free_vma: undo whatever ->mmap prefaulted
            unmap_region(mm, vma, prev, vma.vm_start, vma.vm_end)
            remove_vma(vma)
            return err
    elif vm_flags & VM_SHARED:
        shmem_zero_setup(vma)
    # VM_ACCOUNT told shmem_zero_setup to check the reservation, which belongs
    # to the shared object, not to the vma: the C clears it here.
    if vm_flags & (VM_SHARED | VM_ACCOUNT) == VM_SHARED | VM_ACCOUNT:
        vma.vm_flags &= ~VM_ACCOUNT
    addr = vma.vm_start
    pgoff = vma.vm_pgoff
    vm_flags = vma.vm_flags
    if file is None or not vma_merge(mm, prev, addr, vma.vm_end, vma.vm_flags, None, file, pgoff):
        vma_link(mm, vma, prev)
    else:
        remove_vma(vma)  # merged into a neighbour: drop the new vma's file ref
    return _mmap_out(current, addr, length, vm_flags, flags, pgoff)


def _file_mmap(file: File, vma: vm_area_struct) -> int:
    """file->f_op->mmap: generic_file_mmap, or hugetlbfs_file_mmap."""
    if file.hugetlb:
        from .hugetlb import hugetlbfs_file_mmap

        return hugetlbfs_file_mmap(file, vma)
    from .filemap import generic_file_vm_ops

    vma.vm_ops = generic_file_vm_ops
    return 0


def shmem_zero_setup(vma: vm_area_struct) -> None:
    """mm/shmem.c: MAP_SHARED|MAP_ANONYMOUS is backed by an unlinked shmem
    object the size of the mapping (so it is not "anonymous" to FOLL_ANON)."""
    from .filemap import File, shmem_vm_ops

    k = vma.vm_mm.k
    file = File(k, "/dev/zero (deleted)", b"", writable=True, i_nlink=0)
    file.i_size = vma.vm_end - vma.vm_start
    file.f_count = 1
    vma.vm_file = file
    vma.vm_ops = shmem_vm_ops


def _mmap_out(
    current: task_struct, addr: int, length: int, vm_flags: int, flags: int, pgoff: int
) -> int:
    """do_mmap_pgoff's ``out:`` label."""
    mm = current.mm
    mm.total_vm += length >> PAGE_SHIFT
    if vm_flags & VM_LOCKED:
        mm.locked_vm += length >> PAGE_SHIFT
        make_pages_present(addr, addr + length, current)
    if flags & MAP_POPULATE and mm.k.semantics.populate_via_gup:
        # 54cb8821de07 (v2.6.23): every mapping is faulted in, errors ignored
        if not flags & MAP_NONBLOCK:
            make_pages_present(addr, addr + length, current)
    elif flags & MAP_POPULATE:
        from .fremap import sys_remap_file_pages
        from .locks import down_write, up_write

        up_write(mm.mmap_sem)
        sys_remap_file_pages(current, addr, length, 0, pgoff, flags & MAP_NONBLOCK)
        down_write(mm.mmap_sem)
    return addr


# --- munmap ----------------------------------------------------------------------
def remove_vma(vma: vm_area_struct) -> vm_area_struct | None:
    """Free a vma that is no longer linked: drop its file reference."""
    from .filemap import fput

    if vma.vm_file is not None:
        fput(vma.vm_file)
    return vma.vm_next


def remove_vma_list(mm: mm_struct, vma: vm_area_struct | None) -> None:
    while vma is not None:
        pages = vma_pages(vma)
        mm.total_vm -= pages
        if vma.vm_flags & VM_LOCKED:
            mm.locked_vm -= pages
        vma = remove_vma(vma)


def unmap_region(
    mm: mm_struct, vma: vm_area_struct, prev: vm_area_struct | None, start: int, end: int
) -> None:
    """Zap the ptes of a detached vma chain, then free the page tables no
    remaining vma (prev below, next above) can be using."""
    nxt = prev.vm_next if prev is not None else mm.mmap
    tlb = tlb_gather_mmu(mm, 0)
    update_hiwater_rss(mm)
    tlb, _ = unmap_vmas(tlb, vma, start, end)
    free_pgtables(
        tlb,
        vma,
        prev.vm_end if prev is not None else FIRST_USER_ADDRESS,
        nxt.vm_start if nxt is not None else 0,
    )
    tlb_finish_mmu(tlb, start, end)


def detach_vmas_to_be_unmapped(
    mm: mm_struct, vma: vm_area_struct, prev: vm_area_struct | None, end: int
) -> None:
    """Unlink the vmas below ``end`` starting at ``vma``; they stay chained by
    vm_next, ending in None."""
    last = None
    cur = vma
    while cur is not None and cur.vm_start < end:
        mm.rb_erase(cur)
        mm.map_count -= 1
        last = cur
        cur = cur.vm_next
    last.vm_next = None
    if prev is not None:
        prev.vm_next = cur
    else:
        mm.mmap = cur
    arch_unmap_area(mm, prev.vm_end if prev is not None else mm.mmap_base)
    mm.mmap_cache = None


def do_munmap(mm: mm_struct, start: int, length: int) -> int:
    """Unmap [start, start+len): split the vmas at the edges, detach, zap."""
    if start & PAGE_MASK_LOW or start > TASK_SIZE or length > TASK_SIZE - start:
        return -EINVAL
    length = PAGE_ALIGN(length)
    if length == 0:
        return -EINVAL
    mpnt, prev = find_vma_prev(mm, start)
    if mpnt is None:
        return 0
    # No hugetlb test here (Hugh Dickins, 2.6.11): split_vma refuses to cut a
    # huge vma off a 2 MiB boundary, and only when a cut is needed.
    end = start + length
    if mpnt.vm_start >= end:
        return 0
    if start > mpnt.vm_start:
        err = split_vma(mm, mpnt, start, 0)
        if err:
            return err
        prev = mpnt
    last = find_vma(mm, end)
    if last is not None and end > last.vm_start:
        err = split_vma(mm, last, end, 1)
        if err:
            return err
    mpnt = prev.vm_next if prev is not None else mm.mmap
    detach_vmas_to_be_unmapped(mm, mpnt, prev, end)
    unmap_region(mm, mpnt, prev, start, end)
    remove_vma_list(mm, mpnt)
    return 0


def exit_mmap(mm: mm_struct) -> None:
    """Tear an address space down: zap everything, free every page table."""
    vma = mm.mmap
    tlb = tlb_gather_mmu(mm, 1)
    tlb, end = unmap_vmas(tlb, vma, 0, ULONG_MAX)
    free_pgtables(tlb, vma, FIRST_USER_ADDRESS, 0)
    tlb_finish_mmu(tlb, 0, end)
    while vma is not None:
        vma = remove_vma(vma)
    mm.mmap = None
    mm.mm_rb = []
    mm.mmap_cache = None
    mm.map_count = 0
    mm.total_vm = mm.locked_vm = 0
    if mm.nr_ptes > (FIRST_USER_ADDRESS + PMD_SIZE - 1) >> PMD_SHIFT:
        raise ModelFailure(
            "mm/mmap.c:exit_mmap: BUG_ON(mm->nr_ptes > ...)", f"{mm.nr_ptes} pte pages left"
        )


__all__ = ["do_mmap_pgoff", "do_munmap", "find_vma"]
