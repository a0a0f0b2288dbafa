"""kernel/fork.c and kernel/exit.c, the memory parts (Linux 2.6.15):
dup_mmap copies the vma list and, through copy_page_range, the ptes of vmas
that have anonymous pages; exit tears the address space down."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .constants import VM_DONTCOPY, VM_LOCKED
from .locks import down_write, up_write
from .memory import copy_page_range
from .mm import mm_struct, task_struct
from .mmap import exit_mmap, vma_link
from .page import put_page
from .vma import vma_pages

if TYPE_CHECKING:
    from .kernel import Kernel


def dup_mmap(mm: mm_struct, oldmm: mm_struct) -> int:
    """Copy oldmm's vmas into the new mm under both mmap_sems.  The child's
    vmas lose VM_LOCKED (locks are not inherited) and share the anon_vma."""
    down_write(oldmm.mmap_sem)
    down_write(mm.mmap_sem)  # 2.6.15 19/21: "dup_mmap down new mmap_sem"
    try:
        mm.locked_vm = 0
        mm.free_area_cache = oldmm.mmap_base
        mm.total_vm = oldmm.total_vm
        prev = None
        mpnt = oldmm.mmap
        while mpnt is not None:
            if mpnt.vm_flags & VM_DONTCOPY:
                mm.total_vm -= vma_pages(mpnt)
                mpnt = mpnt.vm_next
                continue
            tmp = mpnt.copy()
            tmp.vm_flags &= ~VM_LOCKED
            tmp.vm_mm = mm
            tmp.vm_next = None
            vma_link(mm, tmp, prev)
            prev = tmp
            retval = copy_page_range(mm, oldmm, mpnt)
            if retval:
                return retval
            mpnt = mpnt.vm_next
        return 0
    finally:
        up_write(mm.mmap_sem)
        up_write(oldmm.mmap_sem)


def copy_mm(k: Kernel, parent: task_struct, child: task_struct) -> int:
    """copy_mm() without CLONE_VM: a new mm_struct filled by dup_mmap."""
    mm = mm_struct(k, child.comm)
    child.mm = mm
    retval = dup_mmap(mm, parent.mm)
    if retval:
        mmput(mm)
        child.mm = None
    return retval


def get_task_mm(tsk: task_struct) -> mm_struct | None:
    """kernel/fork.c get_task_mm(): the task's mm with an ``mm_users``
    reference, or None for a task that has exited."""
    mm = tsk.mm
    if mm is not None:
        mm.mm_users += 1
    return mm


def mmput(mm: mm_struct) -> None:
    """Drop a user of the mm; the last one tears it down (exit_mmap, then
    mmdrop's pgd_free)."""
    mm.mm_users -= 1
    if mm.mm_users:
        return
    exit_mmap(mm)
    pgd = mm.pgd
    pgd.data = None
    put_page(mm.k.alloc, pgd)
    mm.pgd = None
    mm.dead = True


def exit_mm(tsk: task_struct) -> None:
    mm = tsk.mm
    if mm is None:
        return
    tsk.mm = None
    mmput(mm)
