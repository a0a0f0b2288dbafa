"""kernel/futex.c get_futex_key() as deceb6cd17e6 leaves it (Linux 2.6.15-rc1).

A futex is keyed by (mm, address) in a private mapping and by (inode, page
offset) in a shared one; bit 0 of ``offset`` marks an inode key.  Only a
nonlinear vma needs the page itself, found by a fast ``follow_page`` lookup
or, failing that, ``get_user_pages``.  That path was deleted in 2.6.15-rc3
("mm: unbloat get_futex_key"); pagewalk models no nonlinear vmas, so it is
kept for reading but never runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .constants import (
    EACCES,
    EFAULT,
    EINVAL,
    EPERM,
    FOLL_GET,
    FOLL_TOUCH,
    PAGE_SIZE,
    VM_IO,
    VM_MAYSHARE,
    VM_NONLINEAR,
    VM_READ,
)
from .locks import down_read, spin_lock, spin_unlock, up_read
from .memory import follow_page, get_user_pages
from .mmap import find_extend_vma
from .page import Page, put_page
from .vma import linear_page_index

if TYPE_CHECKING:
    from .mm import task_struct


@dataclass(frozen=True)
class futex_key:
    offset: int
    mm: str | None = None  # private: the mm's owner
    uaddr: int | None = None
    inode: int | None = None  # shared: the inode number
    path: str | None = None
    pgoff: int | None = None

    def __str__(self) -> str:
        if self.inode is None:
            return f"private mm={self.mm} uaddr={self.uaddr:#x} offset={self.offset}"
        return f"shared inode={self.inode} ({self.path}) pgoff={self.pgoff} offset={self.offset}"


def get_futex_key(current: task_struct, uaddr: int) -> futex_key | int:
    """The key for a futex at uaddr, or -EINVAL / -EFAULT / -EPERM / -EACCES.
    The caller holds mmap_sem for read."""
    mm = current.mm
    offset = uaddr % PAGE_SIZE
    if offset % 4:
        return -EINVAL  # not naturally aligned
    uaddr -= offset
    vma = find_extend_vma(mm, uaddr)
    if vma is None:
        return -EFAULT
    if (vma.vm_flags & (VM_IO | VM_READ)) != VM_READ:
        return -EPERM if vma.vm_flags & VM_IO else -EACCES
    if not vma.vm_flags & VM_MAYSHARE:
        return futex_key(offset, mm=mm.name, uaddr=uaddr)
    file = vma.vm_file
    offset += 1  # bit 0 of offset indicates an inode-based key
    if not vma.vm_flags & VM_NONLINEAR:
        pgoff = linear_page_index(vma, uaddr)
        return futex_key(offset, inode=file.ino, path=file.path, pgoff=pgoff)
    page = _futex_fast_path(current, uaddr)
    if page is not None:
        return _shared_key(offset, file, page, mm.k.alloc)
    pages: list[Page] = []
    err = get_user_pages(current, mm, uaddr, 1, 0, 0, pages, None)
    if err >= 0:
        return _shared_key(offset, file, pages[0], mm.k.alloc)
    return err


def _futex_fast_path(current: task_struct, uaddr: int) -> Page | None:
    """The quick lookup: after deceb6cd, follow_page(FOLL_TOUCH|FOLL_GET) with
    its own pte lock; before, follow_page(mm, uaddr, 0) under page_table_lock
    (no reference taken; the caller put_page()s nothing it did not get)."""
    mm = current.mm
    if mm.k.semantics.futex_fast_path_inner_ptlock:
        return follow_page(mm, uaddr, FOLL_TOUCH | FOLL_GET)
    from . import prepatch

    spin_lock(mm.page_table_lock)
    page = prepatch.follow_page(mm, uaddr, 0)
    if page is not None:
        page._count += 1  # balance _shared_key's put_page: no ref was taken
    spin_unlock(mm.page_table_lock)
    return page


def _shared_key(offset: int, file: object, page: Page, alloc: object) -> futex_key:
    key = futex_key(offset, inode=file.ino, path=file.path, pgoff=page.index)
    put_page(alloc, page)
    return key


def sys_futex_key(current: task_struct, uaddr: int) -> futex_key | int:
    """What a futex system call does before hashing: get_futex_key under
    mmap_sem held for read."""
    mm = current.mm
    down_read(mm.mmap_sem)
    try:
        return get_futex_key(current, uaddr)
    finally:
        up_read(mm.mmap_sem)
