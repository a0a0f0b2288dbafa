"""kernel/ptrace.c access_process_vm() (identical from 2.6.11 to 2.6.18):
ptrace PEEK/POKE, and later /proc/PID/mem.

It holds the target's mmap_sem for read over the whole loop and pins one page
at a time with ``get_user_pages(tsk, mm, addr, 1, write, force=1, &page,
&vma)``.  ``force`` means only VM_MAYREAD/VM_MAYWRITE are needed, so a debugger
can write into a read-only private mapping: the write COWs a private anonymous
copy (the pte stays read-only, get_user_pages accepting it through
VM_FAULT_WRITE), and the file is untouched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .constants import PAGE_MASK_LOW, PAGE_SIZE
from .locks import down_read, up_read
from .memory import get_user_pages
from .page import page_read_into, page_write, put_page, set_page_dirty

if TYPE_CHECKING:
    from .mm import task_struct


def access_process_vm(tsk: task_struct, addr: int, buf: bytearray, length: int, write: int) -> int:
    """Copy ``length`` bytes between ``buf`` and ``tsk``'s memory; returns the
    number of bytes transferred (0 if the first page failed).  For a read,
    ``buf`` may start empty: it grows as pages are copied."""
    from .fork import get_task_mm, mmput

    mm = get_task_mm(tsk)  # pinned for the duration
    if mm is None:
        return 0
    k = mm.k
    alloc = k.alloc
    down_read(mm.mmap_sem)
    done = 0
    pages: list = []  # &page
    try:
        while length:
            # The C also asks for &vma, for copy_{to,from}_user_page's cache
            # flushes: no-ops on x86-64, so the model does not.
            ret = get_user_pages(tsk, mm, addr, 1, write, 1, pages, None)
            if ret <= 0:
                break
            page = pages.pop()
            if k.sched is not None:  # copy_{to,from}_user_page, no pte lock
                k.sched.access("copy to page" if write else "copy from page", ((page.pfn, write),))
            offset = addr & PAGE_MASK_LOW
            nbytes = PAGE_SIZE - offset
            if nbytes > length:
                nbytes = length
            if write:
                page_write(page, offset, buf[done : done + nbytes])
                set_page_dirty(page)  # copy_to_user_page + set_page_dirty_lock
            else:
                page_read_into(page, offset, nbytes, buf, done)
            put_page(alloc, page)  # page_cache_release
            length -= nbytes
            done += nbytes
            addr += nbytes
    finally:
        up_read(mm.mmap_sem)
        mmput(mm)
    return done
