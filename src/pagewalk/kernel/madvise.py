"""mm/madvise.c (Linux 2.6.15): sys_madvise under mmap_sem held for write.

MADV_DONTNEED zaps the range (anonymous pages are freed; private file pages
revert to the file); it refuses VM_LOCKED, VM_HUGETLB and VM_RESERVED vmas
with EINVAL (the test from b5810039).  MADV_WILLNEED reads a file range into
the page cache and answers EBADF for anonymous memory.  NORMAL, RANDOM and
SEQUENTIAL set the read-ahead hint flags, splitting the vma as needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .constants import (
    EAGAIN,
    EBADF,
    EINVAL,
    ENOMEM,
    MADV_DONTNEED,
    MADV_NORMAL,
    MADV_RANDOM,
    MADV_SEQUENTIAL,
    MADV_WILLNEED,
    PAGE_MASK_LOW,
    PAGE_SHIFT,
    VM_HUGETLB,
    VM_LOCKED,
    VM_RAND_READ,
    VM_RESERVED,
    VM_SEQ_READ,
)
from .filemap import force_page_cache_readahead
from .locks import down_read, down_write, up_read, up_write
from .memory import zap_page_range
from .mmap import PAGE_ALIGN, find_vma, find_vma_prev, split_vma, vma_merge
from .vma import linear_page_index, vm_area_struct

if TYPE_CHECKING:
    from .mm import task_struct

VM_READHINTMASK = VM_SEQ_READ | VM_RAND_READ


def madvise_behavior(
    vma: vm_area_struct, prev: vm_area_struct | None, start: int, end: int, behavior: int
) -> tuple[int, vm_area_struct | None]:
    mm = vma.vm_mm
    new_flags = vma.vm_flags & ~VM_READHINTMASK
    if behavior == MADV_SEQUENTIAL:
        new_flags |= VM_SEQ_READ
    elif behavior == MADV_RANDOM:
        new_flags |= VM_RAND_READ
    if new_flags == vma.vm_flags:
        return 0, vma
    pgoff = vma.vm_pgoff + ((start - vma.vm_start) >> PAGE_SHIFT)
    merged = vma_merge(mm, prev, start, end, new_flags, vma.anon_vma, vma.vm_file, pgoff)
    if merged is not None:
        vma = merged
    else:
        for at, below in ((start, 1), (end, 0)):
            if at != (vma.vm_start if below else vma.vm_end):
                err = split_vma(mm, vma, at, below)
                if err:
                    return (-EAGAIN if err == -ENOMEM else err), vma
    vma.vm_flags = new_flags
    return 0, vma


def madvise_willneed(
    vma: vm_area_struct, prev: vm_area_struct | None, start: int, end: int
) -> tuple[int, vm_area_struct | None]:
    """mm/madvise.c madvise_willneed(): read the file's pages of the range into
    the page cache.  Anonymous memory is -EBADF, or accepted (nothing to
    prefetch without swap) under ``willneed_anon`` (1998cc048901)."""
    file = vma.vm_file
    if file is None:
        if vma.vm_mm.k.semantics.willneed_anon:
            # 1998cc048901: swap-in readahead of the range; with no swap
            # (no swap entries in this model) nothing is read.
            return 0, vma
        return -EBADF, prev
    first = linear_page_index(vma, start)
    end = min(end, vma.vm_end)
    last = linear_page_index(vma, end)
    force_page_cache_readahead(file, first, last - first, vma.vm_mm.k.current_node())
    return 0, vma


def madvise_dontneed(
    vma: vm_area_struct, prev: vm_area_struct | None, start: int, end: int
) -> tuple[int, vm_area_struct | None]:
    if vma.vm_flags & (VM_LOCKED | VM_HUGETLB | VM_RESERVED):
        return -EINVAL, vma
    zap_page_range(vma, start, end - start)
    return 0, vma


def madvise_vma(
    vma: vm_area_struct, prev: vm_area_struct | None, start: int, end: int, behavior: int
) -> tuple[int, vm_area_struct | None]:
    if behavior in (MADV_NORMAL, MADV_SEQUENTIAL, MADV_RANDOM):
        return madvise_behavior(vma, prev, start, end, behavior)
    if behavior == MADV_WILLNEED:
        return madvise_willneed(vma, prev, start, end)
    if behavior == MADV_DONTNEED:
        return madvise_dontneed(vma, prev, start, end)
    return -EINVAL, prev


def madvise_need_mmap_write(k: object, behavior: int) -> bool:
    """Which lock mode: always write in 2.6.15; read for DONTNEED and
    WILLNEED once the profile has "mm: madvise avoid exclusive mmap_sem"."""
    if k.semantics.madvise_dontneed_mmap_sem_read:
        return behavior not in (MADV_DONTNEED, MADV_WILLNEED)
    return True


def sys_madvise(current: task_struct, start: int, len_in: int, behavior: int) -> int:
    mm = current.mm
    write = madvise_need_mmap_write(mm.k, behavior)
    (down_write if write else down_read)(mm.mmap_sem)
    try:
        return _madvise_locked(mm, start, len_in, behavior)
    finally:
        (up_write if write else up_read)(mm.mmap_sem)


def _madvise_locked(mm: object, start: int, len_in: int, behavior: int) -> int:
    if start & PAGE_MASK_LOW:
        return -EINVAL
    length = PAGE_ALIGN(len_in)
    if len_in and not length:
        return -EINVAL
    end = start + length
    if end < start:
        return -EINVAL
    if end == start:
        return 0
    unmapped_error = 0
    vma, prev = find_vma_prev(mm, start)
    if vma is not None and start > vma.vm_start:
        prev = vma
    while True:
        if vma is None:
            return -ENOMEM
        if start < vma.vm_start:  # a hole: skip it, remember ENOMEM
            unmapped_error = -ENOMEM
            start = vma.vm_start
            if start >= end:
                return unmapped_error
        tmp = min(vma.vm_end, end)
        error, prev = madvise_vma(vma, prev, start, tmp, behavior)
        if error:
            return error
        start = tmp
        if prev is not None and start < prev.vm_end:
            start = prev.vm_end
        if start >= end:
            return unmapped_error
        vma = prev.vm_next if prev is not None else find_vma(mm, start)
