"""Files, the page cache and the nopage handlers (mm/filemap.c, mm/shmem.c,
mm/readahead.c; Linux 2.6.15).

A :class:`File` is inode, address_space and the open ``struct file`` in one:
scenarios open every file once per kernel.  Its bytes live in ``backing``
(the disk); pages read into the page cache shadow it.  Nothing is written
back: a file's current content is its cached pages over its backing, which is
what :meth:`File.content` returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .constants import (
    EINVAL,
    ENOMEM,
    PAGE_SHIFT,
    PAGE_SIZE,
    PTRS_INDEX_MASK,
    VM_FAULT_MAJOR,
    VM_FAULT_MINOR,
    VM_RAND_READ,
    VM_SEQ_READ,
)
from .page import (
    Page,
    PG_locked,
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


#: VM_MIN_READAHEAD (16 KiB) in pages: get_min_readahead().
MIN_RA_PAGES = 4
#: VM_MAX_CACHE_HIT: pages found cached in a row before readahead gives up.
VM_MAX_CACHE_HIT = 256
#: filemap_nopage: stop read-around once misses outnumber hits by this much.
MMAP_LOTSAMISS = 100
RA_FLAG_MISS = 0x01  # a page readahead brought in was gone when wanted
RA_FLAG_INCACHE = 0x02  # the file is in the cache: readahead is off


class file_ra_state:
    """include/linux/fs.h struct file_ra_state (2.6.15): the readahead
    windows of one open file, and filemap_nopage's hit/miss counters."""

    __slots__ = (
        "ahead_size",
        "ahead_start",
        "cache_hit",
        "flags",
        "mmap_hit",
        "mmap_miss",
        "prev_page",
        "ra_pages",
        "size",
        "start",
    )

    def __init__(self) -> None:
        self.start = self.size = self.flags = self.cache_hit = 0
        self.ahead_start = self.ahead_size = 0
        self.mmap_hit = self.mmap_miss = 0
        self.ra_pages = DEFAULT_RA_PAGES
        self.prev_page = -1  # file_ra_state_init: the first read is "sequential" from -1


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
        "f_ra",
        "hugetlb",
        "i_nlink",
        "i_size",
        "initial",
        "ino",
        "k",
        "mapping",
        "path",
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
        self.f_ra = file_ra_state()
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
        return -ENOMEM
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
        return -EINVAL
    if file.hugetlb and file.k.semantics.hugetlbfs_without_readpage:
        return -EINVAL
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

    A page beyond EOF gives ``(None, 0)``: NOPAGE_SIGBUS.  VM_RAND_READ goes
    straight to no_cached_page (one page read, and the fault stays MINOR, as
    in the C).  VM_SEQ_READ asks page_cache_readahead first, and a miss after
    it reads one page (handle_ra_miss).  Otherwise a miss reads ``ra_pages``
    around the page (VM_FAULT_MAJOR) unless misses outnumber hits by
    MMAP_LOTSAMISS, when it reads the one page.  Called under mmap_sem; takes
    no page-table lock.  A ptracer's access past EOF reads a zero-filled page
    into the cache, as 2.6.15 let it, unless the profile has
    ``no_ptracer_past_eof``.
    """
    file = area.vm_file
    mapping = file.mapping
    ra = file.f_ra
    k = area.vm_mm.k
    nid = k.current_node()
    pgoff = linear_page_index(area, address)
    did_readaround = False
    majmin = VM_FAULT_MINOR
    size = (file.i_size + PAGE_SIZE - 1) >> PAGE_SHIFT
    if pgoff >= size:
        # no_ptracer_past_eof: today's filemap_fault gives SIGBUS to all
        if k.semantics.no_ptracer_past_eof or (
            k.current is not None and k.current.mm is area.vm_mm
        ):
            return None, 0  # outside_data_content: NOPAGE_SIGBUS
        # "An external ptracer can access pages that normally aren't
        # accessible": it falls through to no_cached_page.
    elif not area.vm_flags & VM_RAND_READ:
        if area.vm_flags & VM_SEQ_READ:
            page_cache_readahead(file, ra, pgoff, 1, nid)
        while True:  # retry_find
            page = find_get_page(mapping, pgoff)
            if page is not None:
                break
            if area.vm_flags & VM_SEQ_READ:
                handle_ra_miss(ra)
                break  # no_cached_page
            ra.mmap_miss += 1
            if ra.mmap_miss > ra.mmap_hit + MMAP_LOTSAMISS:
                break  # no_cached_page
            if not did_readaround:
                majmin = VM_FAULT_MAJOR
            did_readaround = True
            if ra.ra_pages:
                start = pgoff - ra.ra_pages // 2 if pgoff > ra.ra_pages // 2 else 0
                do_page_cache_readahead(file, start, ra.ra_pages, nid)
        if page is not None:
            return _filemap_nopage_success(page, ra, did_readaround, majmin)
    # no_cached_page
    if page_cache_read(file, pgoff, nid) < 0:
        return NOPAGE_OOM, 0
    page = find_get_page(mapping, pgoff)  # retry_find
    return _filemap_nopage_success(page, ra, did_readaround, majmin)


def _filemap_nopage_success(
    page: Page, ra: file_ra_state, did_readaround: bool, majmin: int
) -> tuple[Page, int]:
    """filemap_nopage's found-a-page tail: a hit unless this fault read around."""
    if not did_readaround:
        ra.mmap_hit += 1
    mark_page_accessed(page)
    return page, majmin


# --- mm/readahead.c (2.6.15) ----------------------------------------------------------
def get_init_ra_size(size: int, max_: int) -> int:
    """The first window: the square of a tiny request, else max/4 up to a
    quarter of max, else max (1-8 pages -> 32 KiB for a 128 KiB max)."""
    newsize = 1 << (size - 1).bit_length()  # roundup_pow_of_two
    if newsize <= max_ // 64:
        return newsize * newsize
    if newsize <= max_ // 4:
        return max_ // 4
    return max_


def get_next_ra_size(ra: file_ra_state) -> int:
    """The next ahead window: shrink by 2 after a miss, else x4 while small, x2."""
    max_, cur = ra.ra_pages, ra.size
    if ra.flags & RA_FLAG_MISS:
        ra.flags &= ~RA_FLAG_MISS
        newsize = max(cur - 2, MIN_RA_PAGES)
    elif cur < max_ // 16:
        newsize = 4 * cur
    else:
        newsize = 2 * cur
    return min(newsize, max_)


def ra_off(ra: file_ra_state) -> None:
    ra.start = ra.flags = ra.size = ra.ahead_start = ra.ahead_size = 0


def check_ra_success(ra: file_ra_state, nr_to_read: int, actual: int) -> bool:
    """Turn readahead off once VM_MAX_CACHE_HIT pages in a row were cached."""
    if actual == 0:
        ra.cache_hit += nr_to_read
        if ra.cache_hit >= VM_MAX_CACHE_HIT:
            ra_off(ra)
            ra.flags |= RA_FLAG_INCACHE
            return False
    else:
        ra.cache_hit = 0
    return True


def blockable_page_cache_readahead(
    file: File, offset: int, nr_to_read: int, ra: file_ra_state, nid: int
) -> bool:
    """Read a window (no request queue, so never congested)."""
    actual = do_page_cache_readahead(file, offset, nr_to_read, nid)
    return check_ra_success(ra, nr_to_read, actual)


def make_ahead_window(file: File, ra: file_ra_state, force: bool, nid: int) -> bool:
    ra.ahead_size = get_next_ra_size(ra)
    ra.ahead_start = ra.start + ra.size
    ret = blockable_page_cache_readahead(file, ra.ahead_start, ra.ahead_size, ra, nid)
    if not ret and not force:
        ra.ahead_start = ra.ahead_size = 0
    return ret


def page_cache_readahead(
    file: File, ra: file_ra_state, offset: int, req_size: int, nid: int
) -> int:
    """mm/readahead.c page_cache_readahead(): the current and ahead windows.
    A first read at the start of the file (or the page after the last one
    seen) opens a window of get_init_ra_size(); any other page turns
    readahead off and reads just the request."""
    if offset == ra.prev_page:
        req_size -= 1
        if req_size:
            offset += 1
    sequential = offset == ra.prev_page + 1
    ra.prev_page = offset
    max_ = ra.ra_pages
    newsize = min(req_size, max_)
    if newsize == 0 or ra.flags & RA_FLAG_INCACHE:
        return ra.prev_page + 1
    ra.prev_page += newsize - 1
    if sequential and ra.size == 0:
        ra.size = get_init_ra_size(newsize, max_)
        ra.start = offset
        if blockable_page_cache_readahead(file, offset, ra.size, ra, nid) and req_size >= max_:
            make_ahead_window(file, ra, True, nid)
        return ra.prev_page + 1
    if not sequential:
        ra_off(ra)
        blockable_page_cache_readahead(file, offset, newsize, ra, nid)
        return ra.prev_page + 1
    if ra.ahead_start == 0 and not make_ahead_window(file, ra, False, nid):
        return ra.prev_page + 1
    if ra.prev_page >= ra.ahead_start:
        ra.start, ra.size = ra.ahead_start, ra.ahead_size
        make_ahead_window(file, ra, False, nid)
    return ra.prev_page + 1


def handle_ra_miss(ra: file_ra_state) -> None:
    """A page readahead should have brought in is missing: shrink next time."""
    ra.flags |= RA_FLAG_MISS
    ra.flags &= ~RA_FLAG_INCACHE
    ra.cache_hit = 0


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
        return -EINVAL
    nid = vma.vm_mm.k.current_node()
    while length:
        if page_cache_read(file, pgoff, nid) < 0:
            return -ENOMEM
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


def filemap_map_pages(
    vma: vm_area_struct, page_table: Any, address: int, start_pgoff: int, end_pgoff: int
) -> bool:
    """mm/filemap.c filemap_map_pages() (8c6e50b0290c, v3.15; the ->map_pages
    of files and, since d7c1755179b8, of shmem): map every page of the cache
    in [start_pgoff, end_pgoff] -- clamped to EOF -- that is uptodate, not
    locked and whose pte is none, read-only as the fault is a read
    (vm_page_prot), each with a reference, a file rmap and file rss.  The
    caller holds the pte lock of ``page_table``.  True if the page at
    ``address`` was mapped (VM_FAULT_NOPAGE)."""
    from .rmap import page_add_file_rmap

    mapping = vma.vm_file.mapping
    end_pgoff = min(end_pgoff, ((vma.vm_file.i_size + PAGE_SIZE - 1) >> PAGE_SHIFT) - 1)
    mm = vma.vm_mm
    done = False
    for pgoff in range(start_pgoff, end_pgoff + 1):
        page = mapping.page_tree.get(pgoff)
        if page is None or not page.flags & PG_uptodate or page.flags & PG_locked:
            continue
        addr = vma.vm_start + ((pgoff - vma.vm_pgoff) << PAGE_SHIFT)
        i = (addr >> PAGE_SHIFT) & PTRS_INDEX_MASK
        if page_table[i]:  # !pte_none
            continue
        get_page(page)
        page_table[i] = (page.pfn << PAGE_SHIFT) | vma.vm_page_prot  # set_pte_range
        page_add_file_rmap(page)
        mm._file_rss += 1
        done = done or addr == address
    return done


generic_file_vm_ops = vm_operations_struct(
    "generic_file_vm_ops", filemap_nopage, filemap_populate, filemap_map_pages
)
shmem_vm_ops = vm_operations_struct(
    "shmem_vm_ops", shmem_nopage, filemap_populate, filemap_map_pages
)

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
