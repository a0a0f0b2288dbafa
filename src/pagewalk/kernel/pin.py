"""Page pins and vmsplice'd pipes: the GUP users of the GUP/COW bug family.

* ``pin_user_pages`` / ``unpin_user_page`` (mm/gup.c, eddb1c228f79 v5.6 and
  fc1d8e7cca2d v5.7; the ``foll_pin`` switch): FOLL_PIN references, each
  worth GUP_PIN_COUNTING_BIAS on the page count.  Before FOLL_PIN a driver
  (RDMA's ib_umem_get, for one) called ``get_user_pages`` and released with
  ``put_page``: the same function here runs that under profiles without the
  switch.
* ``vmsplice_to_pipe`` / ``pipe_read`` (fs/splice.c, fs/pipe.c): vmsplice(2)
  of user memory takes page references with a read-only GUP (2.6.17's
  ``get_user_pages(..., write 0, force 0, pages)``; later kernels' FOLL_GET
  gup-fast, which 17839856fd58 made break COW) and the pipe keeps them until
  read(2) copies the bytes out and releases the buffers.  vmsplice is later
  than the seed (v2.6.17): under the seed's profiles the model gives it the
  first vmsplice's GUP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .constants import FOLL_LONGTERM, FOLL_PIN, GUP_PIN_COUNTING_BIAS, PAGE_MASK_LOW, PAGE_SIZE
from .locks import down_read, up_read
from .memory import get_user_pages
from .page import Page, count_access, page_read_into, put_page

if TYPE_CHECKING:
    from .mm import task_struct


def pin_user_pages(
    tsk: task_struct, start: int, nr_pages: int, write: bool, longterm: bool, pages: list[Page]
) -> int:
    """pin_user_pages(start, nr_pages, FOLL_WRITE? | FOLL_LONGTERM?, pages)
    under mmap_sem for read: pages pinned, or -errno.  FOLL_LONGTERM only
    migrates pages out of movable zones, which the model has not: it is
    passed, and changes nothing here.  Without ``foll_pin`` this is the
    driver's ``get_user_pages(tsk, mm, start, nr, write, 0, pages, NULL)``."""
    mm = tsk.mm
    gup_flags = 0
    if mm.k.semantics.foll_pin:
        gup_flags = FOLL_PIN | (FOLL_LONGTERM if longterm else 0)
    down_read(mm.mmap_sem)
    try:
        return get_user_pages(tsk, mm, start, nr_pages, int(write), 0, pages, None, gup_flags)
    finally:
        up_read(mm.mmap_sem)


def pin_weight(k: object) -> int:
    """What one reference from pin_user_pages adds to a page's count."""
    return GUP_PIN_COUNTING_BIAS if k.semantics.foll_pin else 1


def unpin_user_page(k: object, page: Page) -> None:
    """unpin_user_page(): take the pin's GUP_PIN_COUNTING_BIAS off the count
    (page_ref_sub_and_test, freeing at zero) -- or, before FOLL_PIN, the
    driver's put_page."""
    count_access(page, 1)  # the count changes with no lock held
    if k.semantics.foll_pin:
        page._count -= GUP_PIN_COUNTING_BIAS - 1
    put_page(k.alloc, page)


class pipe_inode_info:
    """A pipe's buffers: (page, offset, len) each holding a page reference."""

    __slots__ = ("bufs",)

    def __init__(self) -> None:
        self.bufs: list[list] = []


def vmsplice_to_pipe(tsk: task_struct, pipe: pipe_inode_info, base: int, length: int) -> int:
    """vmsplice(2) of [base, base+length) into ``pipe``: one read-only GUP
    per page (get_iovec_page_array), one buffer per page; returns the bytes
    spliced, or -errno when the first page cannot be had."""
    mm = tsk.mm
    done = 0
    down_read(mm.mmap_sem)
    try:
        while done < length:
            addr = base + done
            off = addr & PAGE_MASK_LOW
            n = min(PAGE_SIZE - off, length - done)
            pages: list[Page] = []
            ret = get_user_pages(tsk, mm, addr - off, 1, 0, 0, pages, None)
            if ret <= 0:
                return done or ret
            pipe.bufs.append([pages[0], off, n])
            mm.k.pins[pages[0].pfn] += 1
            done += n
    finally:
        up_read(mm.mmap_sem)
    return done


def pipe_read(k: object, pipe: pipe_inode_info, length: int) -> bytes:
    """read(2) of the pipe: copy the bytes the buffers' pages hold now, and
    release each buffer read to its end (anon_pipe_buf_release: put_page)."""
    out = bytearray()
    bufs = pipe.bufs
    while bufs and len(out) < length:
        buf = bufs[0]
        page, off, n = buf
        take = min(n, length - len(out))
        if k.sched is not None:  # copy_page_to_iter: the page is read unlocked
            k.sched.access("pipe read page", ((page.pfn, 0),))
        page_read_into(page, off, take, out, len(out))
        buf[1] += take
        buf[2] -= take
        if buf[2] == 0:
            bufs.pop(0)
            pipe_buf_release(k, page)
    return bytes(out)


def pipe_buf_release(k: object, page: Page) -> None:
    """anon_pipe_buf_release / page_cache_pipe_buf_release: put_page."""
    count_access(page, 1)  # the count drops with no lock held
    drop_user_ref(k.pins, page.pfn, 1)
    put_page(k.alloc, page)


def drop_user_ref(pins: dict[int, int], pfn: int, n: int) -> None:
    """Forget ``n`` count units that users held on ``pfn`` (Kernel.pins)."""
    left = pins[pfn] - n
    if left:
        pins[pfn] = left
    else:
        pins.pop(pfn)


__all__ = ["pin_user_pages", "pipe_inode_info", "pipe_read", "unpin_user_page", "vmsplice_to_pipe"]
