"""arch/x86_64/mm/fault.c do_page_fault(), user-mode faults only (Linux 2.6.15).

The CPU reports a fault with an error code: PF_PROT (the pte was present,
so this is a protection fault), PF_WRITE and PF_USER.  A write needs
VM_WRITE; a read fault on a present pte is always a SIGSEGV; a read of a
non-present pte needs VM_READ or VM_EXEC.  Stack growth below a
VM_GROWSDOWN vma is allowed at any distance (the kernel's %rsp heuristic
needs registers the model does not have).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ModelFailure
from .constants import (
    VM_EXEC,
    VM_FAULT_MAJOR,
    VM_FAULT_MINOR,
    VM_FAULT_OOM,
    VM_FAULT_SIGBUS,
    VM_GROWSDOWN,
    VM_READ,
    VM_WRITE,
)
from .locks import down_read, up_read
from .memory import handle_mm_fault
from .mmap import expand_stack, find_vma

if TYPE_CHECKING:
    from .mm import task_struct

PF_PROT = 1
PF_WRITE = 2
PF_USER = 4

SIGSEGV = "SIGSEGV"
SIGBUS = "SIGBUS"


def do_page_fault(tsk: task_struct, address: int, error_code: int) -> str | None:
    """Handle one user fault: None when the access should be retried, else
    the signal the task gets (SIGSEGV or SIGBUS)."""
    mm = tsk.mm
    if mm.k.sched is not None:  # virtual time: the trap's entry and exit
        mm.k.sched.charge("fault", mm)
    down_read(mm.mmap_sem)
    try:  # every return below goes through the C's up_read(&mm->mmap_sem)
        vma = find_vma(mm, address)
        if vma is None:
            return SIGSEGV  # bad_area
        if vma.vm_start > address and (
            not vma.vm_flags & VM_GROWSDOWN or expand_stack(vma, address)
        ):
            return SIGSEGV
        # good_area:
        write = 0
        kind = error_code & (PF_PROT | PF_WRITE)
        if kind & PF_WRITE:
            if not vma.vm_flags & VM_WRITE:
                return SIGSEGV
            write = 1
        elif kind == PF_PROT or not vma.vm_flags & (VM_READ | VM_EXEC):  # read, present
            return SIGSEGV
        ret = handle_mm_fault(mm, vma, address, write)
        if ret == VM_FAULT_MINOR:
            tsk.min_flt += 1
        elif ret == VM_FAULT_MAJOR:
            tsk.maj_flt += 1
        elif ret == VM_FAULT_SIGBUS:
            return SIGBUS
        elif ret == VM_FAULT_OOM:
            raise ModelFailure(
                "arch/x86_64/mm/fault.c:do_page_fault: out_of_memory",
                f"{tsk} faulting at {address:#x}: the OOM killer would run",
            )
        else:
            raise ModelFailure("arch/x86_64/mm/fault.c:do_page_fault: BUG()", f"result {ret}")
        return None
    finally:
        up_read(mm.mmap_sem)
