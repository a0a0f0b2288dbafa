"""kernel/fork.c and kernel/exit.c, the memory parts (Linux 2.6.15):
dup_mmap copies the vma list and, through copy_page_range, the ptes of vmas
that have anonymous pages; exit tears the address space down."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .constants import VM_DONTCOPY, VM_LOCKED
from .locks import down_read, down_write, spin_lock, spin_unlock, up_read, up_write
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
            tmp.anon_vma_forked = tmp.anon_vma is not None  # anon_vma_fork()'s chain
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


def task_lock(tsk: task_struct) -> None:
    """include/linux/sched.h task_lock(): ``spin_lock(&p->alloc_lock)``."""
    spin_lock(tsk.alloc_lock)


def task_unlock(tsk: task_struct) -> None:
    spin_unlock(tsk.alloc_lock)


def get_task_mm(tsk: task_struct) -> mm_struct | None:
    """kernel/fork.c get_task_mm() (2.6.15): the task's mm with an
    ``mm_users`` reference, or None for a task that has exited.  task_lock
    orders it against exit_mm's ``tsk->mm = NULL``."""
    task_lock(tsk)
    mm = tsk.mm
    if mm is not None:
        mm.mm_users += 1
    task_unlock(tsk)
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
    """kernel/exit.c exit_mm() (2.6.15): mmap_sem for read serialises with a
    pending core dump (none is modelled: ``core_waiters`` is always 0) and with
    a writer still working in the mm; task_lock with get_task_mm.  The last
    ``mmput`` tears the address space down."""
    mm = tsk.mm
    if mm is None:
        return
    down_read(mm.mmap_sem)
    task_lock(tsk)
    tsk.mm = None
    up_read(mm.mmap_sem)
    task_unlock(tsk)
    mmput(mm)


def zap_other_threads(leader: task_struct) -> None:
    """kernel/signal.c zap_other_threads(), under do_group_exit's siglock:
    SIGNAL_GROUP_EXIT on the group and SIGKILL to every other thread.  A
    scenario thread sees it at its next operation (``fatal_signal_pending``)."""
    sched = leader.alloc_lock.k.sched
    if sched is not None:
        sched.access("zap_other_threads", ((_signal_key(leader), 1),))
    leader.group_exit = True


def fatal_signal_pending(tsk: task_struct) -> bool:
    """Has the task's thread group been told to exit (a SIGKILL pending)?
    The C reads TIF_SIGPENDING without a lock: an access the explorer orders
    against zap_other_threads."""
    leader = tsk.group_leader
    sched = leader.alloc_lock.k.sched
    if sched is not None:
        sched.access("signal_pending", ((_signal_key(leader), 0),))
    return leader.group_exit


def _signal_key(leader: task_struct) -> str:
    return f"{leader!r}.signal"


def do_group_exit(tsk: task_struct) -> None:
    """kernel/exit.c do_group_exit() (exit_group(2), what exit(3) calls):
    the other threads are told to die, then this task's do_exit drops its mm.
    The group leader, when it is not the caller, is idle in user space in the
    model (it runs no scenario thread) and dies at once: its exit_mm runs
    here.  Each scenario thread runs its own exit_mm when it sees the
    signal; the last mmput tears the address space down."""
    leader = tsk.group_leader
    if not leader.group_exit:
        zap_other_threads(leader)
    exit_mm(tsk)
    if leader is not tsk:
        exit_mm(leader)
