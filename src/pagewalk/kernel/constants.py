"""Constants from include/linux/mm.h, mman.h, errno.h and asm-x86_64 (Linux 2.6.15).

Values are the kernel's, so that flags printed by pagewalk can be compared
with a kernel developer's memory of them.
"""

from __future__ import annotations

# --- x86-64 geometry (include/asm-x86_64/pgtable.h, page.h) -----------------
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_MASK_LOW = PAGE_SIZE - 1  # C's ~PAGE_MASK: the offset bits
PMD_SHIFT = 21
PUD_SHIFT = 30
PGDIR_SHIFT = 39
PMD_SIZE = 1 << PMD_SHIFT
PUD_SIZE = 1 << PUD_SHIFT
PGDIR_SIZE = 1 << PGDIR_SHIFT
PTRS_PER_PTE = PTRS_PER_PMD = PTRS_PER_PUD = PTRS_PER_PGD = 512
#: (PTRS_PER_PTE - 1): an address's index into a table at any level, after its shift.
PTRS_INDEX_MASK = PTRS_PER_PTE - 1
HPAGE_SHIFT = PMD_SHIFT
HPAGE_SIZE = 1 << HPAGE_SHIFT
#: C's ~HPAGE_MASK: the offset bits inside a huge page.
HPAGE_MASK_LOW = HPAGE_SIZE - 1

ULONG_MAX = (1 << 64) - 1
#: C's PAGE_MASK as an unsigned long (Python's & with a negative int is slower)
PAGE_MASK = ULONG_MAX & ~PAGE_MASK_LOW
#: x86-64 2.6.15: the top user page is left unmapped (sysret erratum).
TASK_SIZE = 0x800000000000 - PAGE_SIZE
#: PAGE_ALIGN(TASK_SIZE/3): where the legacy bottom-up mmap layout starts.
TASK_UNMAPPED_BASE = ((TASK_SIZE // 3) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
FIRST_USER_ADDRESS = 0
#: x86-64 vsyscall page (the gate area); in_gate_area() tests this range.
VSYSCALL_START = 0xFFFFFFFFFF600000
VSYSCALL_END = 0xFFFFFFFFFFE00000  # -2MB; only the first page is mapped

# --- vm_area_struct.vm_flags (include/linux/mm.h at deceb6cd) ---------------
VM_READ = 0x00000001
VM_WRITE = 0x00000002
VM_EXEC = 0x00000004
VM_SHARED = 0x00000008
VM_MAYREAD = 0x00000010
VM_MAYWRITE = 0x00000020
VM_MAYEXEC = 0x00000040
VM_MAYSHARE = 0x00000080
VM_GROWSDOWN = 0x00000100
VM_GROWSUP = 0x00000200
VM_SHM = 0x00000400
VM_DENYWRITE = 0x00000800
VM_EXECUTABLE = 0x00001000
VM_LOCKED = 0x00002000
VM_IO = 0x00004000
VM_SEQ_READ = 0x00008000
VM_RAND_READ = 0x00010000
VM_DONTCOPY = 0x00020000
VM_DONTEXPAND = 0x00040000
VM_RESERVED = 0x00080000
VM_ACCOUNT = 0x00100000
VM_HUGETLB = 0x00400000
VM_NONLINEAR = 0x00800000
#: mm/mmap.c: vmas with these flags are never merged.
VM_SPECIAL = VM_IO | VM_DONTCOPY | VM_DONTEXPAND | VM_RESERVED

#: include/linux/sched.h (2.6.15): the default /proc/sys/vm/max_map_count.
#: (65530, USHRT_MAX - MAPCOUNT_ELF_CORE_MARGIN, is a later kernel's.)
DEFAULT_MAX_MAP_COUNT = 65536

# --- follow_page flags (new in deceb6cd) ------------------------------------
FOLL_WRITE = 0x01
FOLL_TOUCH = 0x02
FOLL_GET = 0x04
FOLL_ANON = 0x08
#: Later kernels' flags, used from the "seed+foll-cow" profile on
#: (19be0eaffa3a, the Dirty COW fix): get_user_pages passes force down, and a
#: completed COW is remembered as FOLL_COW instead of dropping FOLL_WRITE.
FOLL_FORCE = 0x10
#: FOLL_DUMP (8e4b9a607189, v2.6.32; 0x08 in the C, where it took FOLL_ANON's
#: value -- both exist here): the core dump's "fail where there is no page".
FOLL_DUMP = 0x20
FOLL_COW = 0x4000
#: FOLL_PIN (eddb1c228f79, v5.6) and FOLL_LONGTERM: pin_user_pages' flags,
#: used by profiles with the ``foll_pin`` switch.
FOLL_LONGTERM = 0x10000
FOLL_PIN = 0x40000
#: include/linux/mm.h (fc1d8e7cca2d, v5.7): what one FOLL_PIN adds to the
#: page count, so that page_maybe_dma_pinned() can tell a pin from a get.
GUP_PIN_COUNTING_BIAS = 1024
#: A later kernel's fault flag (c. v5.18, the PageAnonExclusive series): an
#: unshare fault, taken by a R/O pin of a possibly shared anonymous page.
#: The model passes it as handle_mm_fault's ``write_access`` argument.
FAULT_FLAG_UNSHARE = 0x400

# --- fault results -----------------------------------------------------------
VM_FAULT_OOM = 0x00
VM_FAULT_SIGBUS = 0x01
VM_FAULT_MINOR = 0x02
VM_FAULT_MAJOR = 0x03
VM_FAULT_WRITE = 0x10

# --- mmap/mprotect/madvise ABI (include/asm-x86_64/mman.h, asm-generic) -----
PROT_NONE = 0x0
PROT_READ = 0x1
PROT_WRITE = 0x2
PROT_EXEC = 0x4
PROT_SEM = 0x8
PROT_GROWSDOWN = 0x01000000
PROT_GROWSUP = 0x02000000

MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_TYPE = 0x0F
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20
MAP_GROWSDOWN = 0x0100
MAP_DENYWRITE = 0x0800
MAP_EXECUTABLE = 0x1000
MAP_LOCKED = 0x2000
MAP_NORESERVE = 0x4000
MAP_POPULATE = 0x8000
MAP_NONBLOCK = 0x10000

MADV_NORMAL = 0
MADV_RANDOM = 1
MADV_SEQUENTIAL = 2
MADV_WILLNEED = 3
MADV_DONTNEED = 4

# --- errno (include/asm-generic/errno-base.h, errno.h) ----------------------
EPERM = 1
ENOENT = 2
EINTR = 4
EIO = 5
ENXIO = 6
EBADF = 9
EAGAIN = 11
ENOMEM = 12
EACCES = 13
EFAULT = 14
EBUSY = 16
EEXIST = 17
ENODEV = 19
EINVAL = 22
ENOSPC = 28
ERANGE = 34
ENOSYS = 38
EOVERFLOW = 75

ERRNO_NAMES = {
    v: k
    for k, v in dict(
        EPERM=EPERM,
        ENOENT=ENOENT,
        EINTR=EINTR,
        EIO=EIO,
        ENXIO=ENXIO,
        EBADF=EBADF,
        EAGAIN=EAGAIN,
        ENOMEM=ENOMEM,
        EACCES=EACCES,
        EFAULT=EFAULT,
        EBUSY=EBUSY,
        EEXIST=EEXIST,
        ENODEV=ENODEV,
        EINVAL=EINVAL,
        ENOSPC=ENOSPC,
        ERANGE=ERANGE,
        ENOSYS=ENOSYS,
        EOVERFLOW=EOVERFLOW,
    ).items()
}


def errno_name(err: int) -> str:
    """``-14`` or ``14`` -> ``"EFAULT"``."""
    return ERRNO_NAMES.get(abs(err), f"E{abs(err)}")
