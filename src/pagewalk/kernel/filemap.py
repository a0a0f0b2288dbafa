"""Files, the page cache and the nopage handlers (mm/filemap.c, mm/shmem.c,
mm/readahead.c; Linux 2.6.15).

A :class:`File` is inode, address_space and the open ``struct file`` in one:
scenarios open every file once per kernel.  Its bytes live in ``backing``
(the disk); pages read into the page cache shadow it.  Nothing is written
back: a file's current content is its cached pages over its backing, which is
what :meth:`File.content` returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .constants import PAGE_SHIFT, PAGE_SIZE, VM_FAULT_MAJOR, VM_FAULT_MINOR, VM_RAND_READ
from .page import (
    Page,
    PG_lru,
    PG_uptodate,
    get_page,
    lru_cache_add,
    mark_page_accessed,
    page_contents,
    page_read,
)
from .vma import linear_page_index, vm_area_struct, vm_operations_struct

if TYPE_CHECKING:
    from .kernel import Kernel

FMODE_READ = 1
FMODE_WRITE = 2
#: VM_MAX_READAHEAD (128 KiB) in pages: the default file->f_ra.ra_pages.
DEFAULT_RA_PAGES = 32


class address_space:
    """The page cache of one file: ``page_tree`` maps index -> page."""

    __slots__ = ("host", "page_tree", "truncate_count")

    def __init__(self, host: File) -> None:
        self.host = host
        self.page_tree: dict[int, Page] = {}
        self.truncate_count = 0


class File:
    """inode + address_space + an open struct file."""

    __slots__ = (
        "backing",
        "f_count",
        "f_mode",
        "hugetlb",
        "i_nlink",
        "i_size",
        "initial",
        "ino",
        "k",
        "mapping",
        "path",
        "ra_pages",
    )

    def __init__(
        self,
        k: Kernel,
        path: str,
        content: bytes,
        writable: bool = True,
        hugetlb: bool = False,
        i_nlink: int = 1,
    ) -> None:
        self.k = k
        self.path = path
        self.ino = k.next_ino()
        self.initial = bytes(content)
        self.backing = bytearray(content)
        self.i_size = len(content)
        self.f_mode = FMODE_READ | (FMODE_WRITE if writable else 0)
        self.hugetlb = hugetlb
        self.i_nlink = i_nlink
        self.mapping = address_space(self)
        self.ra_pages = DEFAULT_RA_PAGES
        self.f_count = 0  # vmas referring to the open file

    def __repr__(self) -> str:
        return f"<file {self.path} ino={self.ino}>"

    def content(self) -> bytes:
        """The bytes a read(2) would see now: cached pages over the backing."""
        if self.hugetlb:
            return self._huge_content()
        out = bytearray(self.backing)
        for index, page in self.mapping.page_tree.items():
            start = index << PAGE_SHIFT
            if start >= self.i_size:
                continue
            n = min(PAGE_SIZE, self.i_size - start)
            out[start : start + n] = page_read(page, 0, n)
        return bytes(out)

    def _huge_content(self) -> bytes:
        """hugetlbfs: the page cache holds 2 MiB compound pages by huge index."""
        out = bytearray(self.i_size)
        mem_map = self.k.alloc.mem_map
        for index, head in self.mapping.page_tree.items():
            for j in range(512):
                start = (index * 512 + j) << PAGE_SHIFT
                if start >= self.i_size or head.pfn + j >= len(mem_map):
                    break  # a 4 KiB page WILLNEED left at a small index
                page = mem_map[head.pfn + j]
                if page.data is not None:
                    out[start : start + PAGE_SIZE] = page_contents(page)[: self.i_size - start]
        return bytes(out)


def get_file(file: File) -> None:
    file.f_count += 1


def fput(file: File) -> None:
    """Drop a vma's reference.  An unlinked file (the shmem object behind a
    shared anonymous mapping) dies with its last reference, and its pages
    with it (shmem_delete_inode -> truncate_inode_pages)."""
    file.f_count -= 1
    if file.f_count == 0 and file.i_nlink == 0:
        truncate_inode_pages(file.mapping)


def truncate_inode_pages(mapping: address_space) -> None:
    """Drop every page of the cache (none may still be mapped)."""
    from .page import put_page

    alloc = mapping.host.k.alloc
    for page in list(mapping.page_tree.values()):
        del mapping.page_tree[page.index]
        page.mapping = None  # remove_from_page_cache
        page.flags &= ~PG_lru
        put_page(alloc, page)


def find_get_page(mapping: address_space, offset: int) -> Page | None:
    """mm/filemap.c find_get_page(): the cached page with a reference, or None."""
    page = mapping.page_tree.get(offset)
    if page is not None:
        get_page(page)
    return page


def add_to_page_cache(page: Page, mapping: address_space, offset: int) -> None:
    """mm/filemap.c add_to_page_cache(): the cache holds one reference."""
    get_page(page)
    page.mapping = mapping
    page.index = offset
    mapping.page_tree[offset] = page


def add_to_page_cache_lru(page: Page, mapping: address_space, offset: int) -> None:
    """add_to_page_cache() + lru_cache_add()."""
    add_to_page_cache(page, mapping, offset)
    lru_cache_add(page)


def _read_page(file: File, page: Page, index: int) -> None:
    """->readpage(): fill from the backing store (short at EOF, zero beyond).

    hugetlbfs's is hugetlbfs_readpage(): unlock_page and -EINVAL, so the
    page stays in the cache as it was allocated, not uptodate."""
    if file.hugetlb:
        return
    start = index << PAGE_SHIFT
    chunk = file.backing[start : start + PAGE_SIZE]
    if any(chunk):
        page.data = bytearray(chunk)  # short at EOF: the rest reads as zeroes
    page.flags |= PG_uptodate


def page_cache_read(file: File, offset: int, nid: int) -> int:
    """mm/filemap.c page_cache_read(): read one page into the cache. 0 or -ENOMEM."""
    mapping = file.mapping
    if offset in mapping.page_tree:
        return 0
    page = file.k.alloc.alloc_page_node(nid)
    if page is None:
        return -12
    _read_page(file, page, offset)
    add_to_page_cache_lru(page, mapping, offset)
    page._count -= 1  # page_cache_release(): only the cache keeps it
    return 0


def force_page_cache_readahead(file: File, offset: int, nr_to_read: int, nid: int) -> int:
    """mm/readahead.c: -EINVAL for an address space without ->readpage
    (shmem in this era), else read the range.

    hugetlbfs has a ->readpage (one that fails), so the C goes on: every
    missing 4 KiB index below i_size gets a 4 KiB page in the hugetlbfs page
    cache, where hugetlb_prefault later takes one as a huge page.  The
    ``hugetlbfs_without_readpage`` switch is the kernel that dropped it."""
    if file.i_nlink == 0:
        return -22
    if file.hugetlb and file.k.semantics.hugetlbfs_without_readpage:
        return -22
    return do_page_cache_readahead(file, offset, nr_to_read, nid)


def do_page_cache_readahead(file: File, offset: int, nr_to_read: int, nid: int) -> int:
    """mm/readahead.c do_page_cache_readahead(): read the missing pages of a
    window, stopping at EOF.  Returns the number of pages read."""
    end_index = (file.i_size - 1) >> PAGE_SHIFT if file.i_size else -1
    done = 0
    for index in range(offset, offset + nr_to_read):
        if index > end_index:
            break
        if index not in file.mapping.page_tree and page_cache_read(file, index, nid) == 0:
            done += 1
    return done


def filemap_nopage(area: vm_area_struct, address: int) -> tuple[Page | None, int]:
    """mm/filemap.c filemap_nopage(), returning (page with a reference, type).

    A page beyond EOF gives ``(None, 0)``: NOPAGE_SIGBUS.  A miss reads the page
    around the fault into the cache first (readaround of ``ra_pages`` centred on
    the page, none for VM_RAND_READ) and counts as VM_FAULT_MAJOR.
    """
    file = area.vm_file
    mapping = file.mapping
    k = area.vm_mm.k
    pgoff = linear_page_index(area, address)
    size = (file.i_size + PAGE_SIZE - 1) >> PAGE_SHIFT
    outside = pgoff >= size
    if outside and k.current is not None and k.current.mm is area.vm_mm:
        return None, 0  # outside_data_content: NOPAGE_SIGBUS
    # "An external ptracer can access pages that normally aren't accessible":
    # it falls through to no_cached_page and reads a zero-filled page.
    majmin = VM_FAULT_MINOR
    page = find_get_page(mapping, pgoff)
    if page is None:
        majmin = VM_FAULT_MAJOR
        nid = k.current_node()
        ra_pages = file.ra_pages
        if not outside and not area.vm_flags & VM_RAND_READ and ra_pages:
            start = pgoff - ra_pages // 2 if pgoff > ra_pages // 2 else 0
            do_page_cache_readahead(file, start, ra_pages, nid)
        if page_cache_read(file, pgoff, nid) < 0:
            return NOPAGE_OOM, 0
        page = find_get_page(mapping, pgoff)
    mark_page_accessed(page)
    return page, majmin


def shmem_nopage(area: vm_area_struct, address: int) -> tuple[Page | None, int]:
    """mm/shmem.c shmem_nopage() for MAP_SHARED|MAP_ANONYMOUS (shmem_zero_setup):
    a hole gets a fresh zeroed page in the object's cache; always MINOR here
    since nothing is ever swapped."""
    file = area.vm_file
    mapping = file.mapping
    pgoff = linear_page_index(area, address)
    if pgoff >= (file.i_size + PAGE_SIZE - 1) >> PAGE_SHIFT:
        return None, 0
    page = find_get_page(mapping, pgoff)
    if page is None:
        page = area.vm_mm.k.alloc.alloc_page_node(area.vm_mm.k.current_node())
        if page is None:
            return NOPAGE_OOM, 0
        page.flags |= PG_uptodate
        add_to_page_cache_lru(page, mapping, pgoff)  # cache ref + ours
    mark_page_accessed(page)
    return page, VM_FAULT_MINOR


class _NopageOOM:
    """NOPAGE_OOM, ``(struct page *)-1``."""

    def __repr__(self) -> str:
        return "NOPAGE_OOM"


NOPAGE_OOM = _NopageOOM()


def filemap_populate(
    vma: vm_area_struct, addr: int, length: int, prot: int, pgoff: int, nonblock: int
) -> int:
    """mm/filemap.c filemap_populate(): install the file's pages over a range
    (MAP_POPULATE on a shared file mapping). 0, -EINVAL past EOF, -ENOMEM."""
    from .fremap import install_page

    file = vma.vm_file
    size = (file.i_size + PAGE_SIZE - 1) >> PAGE_SHIFT
    if pgoff + (length >> PAGE_SHIFT) > size:
        return -22
    nid = vma.vm_mm.k.current_node()
    while length:
        if page_cache_read(file, pgoff, nid) < 0:
            return -12
        page = find_get_page(file.mapping, pgoff)
        err = install_page(vma.vm_mm, vma, addr, page, prot)
        if err:
            from .page import put_page

            put_page(vma.vm_mm.k.alloc, page)
            return err
        length -= PAGE_SIZE
        addr += PAGE_SIZE
        pgoff += 1
    return 0


generic_file_vm_ops = vm_operations_struct("generic_file_vm_ops", filemap_nopage, filemap_populate)
shmem_vm_ops = vm_operations_struct("shmem_vm_ops", shmem_nopage, filemap_populate)

__all__ = [
    "File",
    "PG_lru",
    "address_space",
    "filemap_nopage",
    "find_get_page",
    "generic_file_vm_ops",
    "shmem_nopage",
    "shmem_vm_ops",
]
