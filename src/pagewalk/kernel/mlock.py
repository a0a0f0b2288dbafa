"""mm/mlock.c (Linux 2.6.15): mlock/munlock set or clear VM_LOCKED, splitting
vmas, and mlock faults the range in with make_pages_present -- which since the
seed patch really maps read-only anonymous memory (no FOLL_ANON for
VM_LOCKED).  Every process may lock memory (as root with CAP_IPC_LOCK)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .constants import EAGAIN, EFAULT, EINVAL, ENOMEM, PAGE_MASK_LOW, PAGE_SHIFT, VM_IO, VM_LOCKED
from .locks import down_read, down_write, up_read, up_write
from .memory import make_pages_present
from .mmap import PAGE_ALIGN, find_vma, find_vma_prev, split_vma, vma_merge
from .vma import vm_area_struct

if TYPE_CHECKING:
    from .mm import mm_struct, task_struct


def mlock_fixup(
    current: task_struct,
    vma: vm_area_struct,
    prev: vm_area_struct | None,
    start: int,
    end: int,
    newflags: int,
) -> tuple[int, vm_area_struct | None]:
    """mm/mlock.c mlock_fixup() (2.6.15): set the flags on [start, end),
    splitting or merging vmas, and fault a newly locked range in.  Returns
    (error, new prev).  The ``out:`` label reports ENOMEM as EAGAIN.  With
    ``mlock_posix_errno`` (9978ad583e10, v2.6.28) a failure to fault in is
    translated by __mlock_posix_error_return where it happens, and ``out:``
    translates nothing (a failed split is ENOMEM).  With
    ``mlock_populates_after_fixup`` (fed067da46ad, v2.6.38) it faults
    nothing in: sys_mlock does, once every vma is locked."""
    mm = vma.vm_mm
    ret = 0
    if newflags == vma.vm_flags:
        return 0, vma
    pgoff = vma.vm_pgoff + ((start - vma.vm_start) >> PAGE_SHIFT)
    merged = vma_merge(mm, prev, start, end, newflags, vma.anon_vma, vma.vm_file, pgoff)
    if merged is not None:
        vma = merged
    else:
        if start != vma.vm_start:
            ret = split_vma(mm, vma, start, 1)
        if not ret and end != vma.vm_end:
            ret = split_vma(mm, vma, end, 0)
        if ret:
            return _mlock_fixup_out(mm, ret), vma
    vma.vm_flags = newflags
    pages = (end - start) >> PAGE_SHIFT
    if newflags & VM_LOCKED:
        pages = -pages
        if not newflags & VM_IO and not mm.k.semantics.mlock_populates_after_fixup:
            ret = make_pages_present(start, end, current)
            if ret < 0 and mm.k.semantics.mlock_posix_errno:
                ret = __mlock_posix_error_return(ret)  # translate if needed
    mm.locked_vm -= pages
    return _mlock_fixup_out(mm, ret), vma


def _mlock_fixup_out(mm: mm_struct, ret: int) -> int:
    """mlock_fixup's ``out:``: 2.6.15 reports ENOMEM as EAGAIN; since the
    rework (``mlock_posix_errno``) the error is returned as it is."""
    if ret == -ENOMEM and not mm.k.semantics.mlock_posix_errno:
        return -EAGAIN
    return ret


def __mlock_posix_error_return(retval: int) -> int:
    """mm/mlock.c (9978ad583e10 "mlock: make mlock error return Posixly
    Correct", v2.6.28): a failure to fault in is reported as POSIX asks --
    EFAULT (an address not mapped as needed) as ENOMEM, ENOMEM (no memory)
    as EAGAIN."""
    if retval == -EFAULT:
        return -ENOMEM
    if retval == -ENOMEM:
        return -EAGAIN
    return retval


def do_mlock(current: task_struct, start: int, length: int, on: bool) -> int:
    length = PAGE_ALIGN(length)
    end = start + length
    if end < start:
        return -EINVAL
    if end == start:
        return 0
    vma, prev = find_vma_prev(current.mm, start)
    if vma is None or vma.vm_start > start:
        return -ENOMEM
    if start > vma.vm_start:
        prev = vma
    nstart = start
    while True:
        newflags = vma.vm_flags | VM_LOCKED if on else vma.vm_flags & ~VM_LOCKED
        tmp = min(vma.vm_end, end)
        error, prev = mlock_fixup(current, vma, prev, nstart, tmp, newflags)
        if error:
            return error
        nstart = tmp
        if nstart < prev.vm_end:
            nstart = prev.vm_end
        if nstart >= end:
            return 0
        vma = prev.vm_next
        if vma is None or vma.vm_start != nstart:
            return -ENOMEM


def sys_mlock(current: task_struct, start: int, length: int) -> int:
    """sys_mlock() (2.6.15): lock the range's vmas, faulting each in as it
    is locked.  With ``mlock_populates_after_fixup`` (fed067da46ad) the
    range is faulted in afterwards, mmap_sem dropped and taken for read, and
    only if every vma was locked: an mlock that runs into a hole faults
    nothing in (the vmas before the hole stay VM_LOCKED)."""
    mm = current.mm
    down_write(mm.mmap_sem)
    try:
        length = PAGE_ALIGN(length + (start & PAGE_MASK_LOW))
        start &= ~PAGE_MASK_LOW
        error = do_mlock(current, start, length, True)
    finally:
        up_write(mm.mmap_sem)
    if not error and mm.k.semantics.mlock_populates_after_fixup:
        error = do_mlock_pages(current, start, length)
    return error


def do_mlock_pages(current: task_struct, start: int, length: int) -> int:
    """mm/mlock.c do_mlock_pages() (fed067da46ad, v2.6.38; __mm_populate()
    since bebeb3d68b24, v3.9, as 6.18 has it): fault [start, start +
    length) in vma by vma under mmap_sem held for read, skipping VM_IO vmas
    (VM_PFNMAP is not modelled); the first failure ends it, reported as
    POSIX asks.  make_pages_present stands for populate_vma_page_range()."""
    mm = current.mm
    end = start + length
    ret = 0
    down_read(mm.mmap_sem)
    try:
        vma = None
        nstart = start
        while nstart < end:
            vma = find_vma(mm, nstart) if vma is None else vma.vm_next
            if vma is None or vma.vm_start >= end:
                break
            nend = min(end, vma.vm_end)
            if not vma.vm_flags & VM_IO:
                nstart = max(nstart, vma.vm_start)
                ret = make_pages_present(nstart, nend, current)
                if ret < 0:
                    ret = __mlock_posix_error_return(ret)
                    break
            nstart = nend
    finally:
        up_read(mm.mmap_sem)
    return ret


def sys_munlock(current: task_struct, start: int, length: int) -> int:
    mm = current.mm
    down_write(mm.mmap_sem)
    try:
        length = PAGE_ALIGN(length + (start & PAGE_MASK_LOW))
        start &= ~PAGE_MASK_LOW
        return do_mlock(current, start, length, False)
    finally:
        up_write(mm.mmap_sem)
