"""mm/mlock.c (Linux 2.6.15): mlock/munlock set or clear VM_LOCKED, splitting
vmas, and mlock faults the range in with make_pages_present -- which since the
seed patch really maps read-only anonymous memory (no FOLL_ANON for
VM_LOCKED).  Every process may lock memory (as root with CAP_IPC_LOCK)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .constants import EAGAIN, EFAULT, EINVAL, ENOMEM, PAGE_MASK_LOW, PAGE_SHIFT, VM_IO, VM_LOCKED
from .locks import down_write, up_write
from .memory import make_pages_present
from .mmap import PAGE_ALIGN, find_vma_prev, split_vma, vma_merge
from .vma import vm_area_struct

if TYPE_CHECKING:
    from .mm import task_struct


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
    translates nothing (a failed split is ENOMEM)."""
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
        if not newflags & VM_IO:
            ret = make_pages_present(start, end, current)
            if ret < 0 and mm.k.semantics.mlock_posix_errno:
                ret = __mlock_posix_error_return(ret)  # translate if needed
    mm.locked_vm -= pages
    return _mlock_fixup_out(mm, ret), vma


def _mlock_fixup_out(mm: object, ret: int) -> int:
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
    mm = current.mm
    down_write(mm.mmap_sem)
    try:
        length = PAGE_ALIGN(length + (start & PAGE_MASK_LOW))
        start &= ~PAGE_MASK_LOW
        return do_mlock(current, start, length, True)
    finally:
        up_write(mm.mmap_sem)


def sys_munlock(current: task_struct, start: int, length: int) -> int:
    mm = current.mm
    down_write(mm.mmap_sem)
    try:
        length = PAGE_ALIGN(length + (start & PAGE_MASK_LOW))
        start &= ~PAGE_MASK_LOW
        return do_mlock(current, start, length, False)
    finally:
        up_write(mm.mmap_sem)
