"""struct page, mem_map and the page allocator (include/linux/mm.h,
include/linux/page-flags.h, mm/page_alloc.c, mm/swap.c, mm/page-writeback.c;
Linux 2.6.15 with Nick Piggin's b5810039 "core remove PageReserved").

Modelling choices, each visible to users:

* ``_count`` and ``_mapcount`` are stored biased by -1 as in the kernel; use
  :func:`page_count` / :func:`page_mapcount` for the unbiased values.
* Frames are numbered densely in allocation order; ``page.node`` is the NUMA
  node the frame belongs to (the kernel derives it from the frame's zone).
* Contents are allocated lazily and only as far as written: ``data is None``
  means all zeroes (see :func:`page_read`).
* Per-CPU LRU pagevecs are modelled as always drained: ``lru_cache_add_active``
  puts the page on the active list at once and holds no extra reference, so
  counts are always as after ``lru_add_drain()``.
* ``PG_anon`` and ``PG_pgtable`` are model-only bits: the kernel keeps "anon"
  in the low bit of ``page->mapping`` and does not mark page-table pages.
"""

from __future__ import annotations

import copy
from array import array
from typing import Any

from ..errors import ModelFailure
from .constants import PAGE_SIZE

# --- page flags (include/linux/page-flags.h bit numbers) --------------------
PG_locked = 1 << 0
PG_error = 1 << 1
PG_referenced = 1 << 2
PG_uptodate = 1 << 3
PG_dirty = 1 << 4
PG_lru = 1 << 5
PG_active = 1 << 6
PG_reserved = 1 << 10
PG_private = 1 << 11
PG_compound = 1 << 14
PG_swapcache = 1 << 15
# Model-only: PAGE_MAPPING_ANON in page->mapping.  It takes bit 7, PG_slab's,
# which the model never sets: an anonymous page's flags word then stays
# below 257, an int CPython shares instead of allocating 28 B per page.
PG_anon = 1 << 7
PG_pgtable = 1 << 21  # model-only: this page holds a page table
#: PG_anon_exclusive (6c287605fd56, v5.18; the C reuses PG_mappedtodisk's
#: bit): this anonymous page is mapped by one mm only.  Set only by profiles
#: with the ``page_anon_exclusive`` switch.
PG_anon_exclusive = 1 << 22

FLAG_NAMES = (
    (PG_locked, "locked"),
    (PG_referenced, "referenced"),
    (PG_uptodate, "uptodate"),
    (PG_dirty, "dirty"),
    (PG_lru, "lru"),
    (PG_active, "active"),
    (PG_reserved, "reserved"),
    (PG_compound, "compound"),
    (PG_anon, "anon"),
    (PG_pgtable, "pgtable"),
    (PG_anon_exclusive, "anon_exclusive"),
)


class Page:
    """struct page.  ``private`` doubles as ``u.ptl`` for split page-table locks.

    Pages are made only by a :class:`PageAllocator`, as instances of its own
    subclass, whose class attributes hold the allocator's per-frame arrays:
    ``index`` and ``node``, read rarely off the fault path, live there
    (8 B + 1 B a frame) instead of in two slots and a big int each.  The
    kernel likewise keeps the node outside the fields, in page->flags bits.
    """

    __slots__ = ("_count", "_mapcount", "data", "flags", "mapping", "pfn", "private")

    #: the allocator and its per-frame arrays (set on each allocator's subclass)
    _allocator: PageAllocator
    _index: array
    _node: array

    def __init__(self, pfn: int) -> None:
        self.pfn = pfn
        self.flags = 0
        self._count = -1  # free
        self._mapcount = -1
        self.mapping = None
        self.private = None
        self.data = None

    def __deepcopy__(self, memo: dict[int, Any]) -> Page:
        """A page is copied with its whole allocator, into the copy's subclass."""
        copy.deepcopy(self._allocator, memo)  # copies every frame, this one too
        return memo[id(self)]

    @property
    def index(self) -> int:
        """page->index: the page's offset in its mapping, in pages."""
        return self._index[self.pfn]

    @index.setter
    def index(self, value: int) -> None:
        self._index[self.pfn] = value

    @property
    def node(self) -> int:
        """page_to_nid(): the NUMA node the frame belongs to."""
        return self._node[self.pfn]

    def __repr__(self) -> str:
        names = ",".join(n for bit, n in FLAG_NAMES if self.flags & bit)
        return (
            f"<page pfn={self.pfn} count={self._count + 1} mapcount={self._mapcount + 1} [{names}]>"
        )


# --- accessors named as in the kernel ---------------------------------------
def count_access(page: Page, write: int) -> None:
    """Declare a read (R), a change (W) or an increment (INC: two of them
    commute) of ``page``'s reference count to the explorer (key
    ``count:PFN``).  Later kernels decide COW reuse and fork
    copies on the count (09854ba94c6a, 70e806e4e645), and GUP users take and
    drop references under another mm's pte lock or none: a pipe's release,
    an unpin, a GUP by another process."""
    k = page._allocator.k
    if k is not None and k.sched is not None:
        k.sched.access("page_count", ((f"count:{page.pfn}", write),))


def page_count(page: Page) -> int:
    """Unbiased count; a compound page's is its head's."""
    if page.flags & PG_compound:
        page = page.private
    return page._count + 1


def page_mapcount(page: Page) -> int:
    return page._mapcount + 1


def PageAnon(page: Page) -> bool:
    return bool(page.flags & PG_anon)


def PageDirty(page: Page) -> bool:
    return bool(page.flags & PG_dirty)


def PageReferenced(page: Page) -> bool:
    return bool(page.flags & PG_referenced)


def PageActive(page: Page) -> bool:
    return bool(page.flags & PG_active)


def TestSetPageLocked(page: Page) -> bool:
    old = page.flags & PG_locked
    page.flags |= PG_locked
    return bool(old)


def unlock_page(page: Page) -> None:
    page.flags &= ~PG_locked


def get_page(page: Page) -> None:
    """include/linux/mm.h get_page(): no PageReserved special case since b5810039;
    a compound (huge) page is counted on its head, found through ``private``."""
    if page.flags & PG_compound:
        page = page.private
    page._count += 1


class RetiredPage(Page):
    """A frame of a retired allocator (:meth:`PageAllocator.retire`): its
    kernel is gone, and reading its index or node raises."""

    __slots__ = ()


#: the Page subclasses of retired allocators, for new allocators to take
_SPARE_PAGE_TYPES: list[type[Page]] = []


def spare_page_type() -> type[Page]:
    """A Page subclass for a new allocator to bind its arrays to: a retired
    allocator's, or a new one."""
    try:
        return _SPARE_PAGE_TYPES.pop()
    except IndexError:
        return type("Page", (Page,), {"__slots__": ()})


class PageAllocator:
    """The buddy allocator reduced to what is observable: which node a page
    comes from, when memory runs out, and that freeing a page still mapped or
    reserved is a ``bad_page``.

    Each node holds ``pages_per_node`` frames.  Allocation prefers the given
    node and falls back to the others in order (the default zonelist).
    """

    __slots__ = (
        "Page",
        "allocated_total",
        "free_lists",
        "index",
        "k",
        "mem_map",
        "node",
        "nodes",
        "pages_per_node",
        "used",
    )

    def __init__(self, nodes: int, pages_per_node: int) -> None:
        self.nodes = nodes
        self.pages_per_node = pages_per_node
        self.mem_map: list[Page] = []
        self.index = array("Q")  # page->index of each frame (pgoff_t: unsigned long)
        self.node = array("B")  # the node of each frame (at most 64 nodes)
        self.Page = self._page_type()
        self.free_lists: list[list[Page]] = [[] for _ in range(nodes)]
        self.used = [0] * nodes  # frames ever taken from each node
        self.allocated_total = 0
        #: the Kernel using these frames (set by it): rmap's explorer hook
        self.k: Any = None

    def _page_type(self) -> type[Page]:
        """This allocator's struct page: Page with the per-frame arrays bound
        (a retired allocator's subclass if there is one: making a class
        costs as much as setting up a small scenario)."""
        cls = spare_page_type()
        cls._allocator = self
        cls._index = self.index
        cls._node = self.node
        return cls

    def retire(self) -> None:
        """This allocator's kernel is finished with (the explorer's previous
        execution): its frames become :class:`RetiredPage`, whose index and
        node no longer read, and its Page subclass goes to the next
        allocator."""
        for page in self.mem_map:
            page.__class__ = RetiredPage
        cls, self.Page = self.Page, RetiredPage
        del cls._allocator, cls._index, cls._node
        _SPARE_PAGE_TYPES.append(cls)

    def __deepcopy__(self, memo: dict[int, Any]) -> PageAllocator:
        """Copy every frame into the new allocator's own Page subclass (the
        default copy would leave the frames reading the old arrays)."""
        new = PageAllocator.__new__(PageAllocator)
        memo[id(self)] = new
        new.nodes = self.nodes
        new.pages_per_node = self.pages_per_node
        new.used = list(self.used)
        new.allocated_total = self.allocated_total
        new.k = memo.get(id(self.k), self.k)
        new.index = array("Q", self.index)
        new.node = array("B", self.node)
        new.Page = new._page_type()
        new.mem_map = [new.Page.__new__(new.Page) for _ in self.mem_map]
        for page, clone in zip(self.mem_map, new.mem_map, strict=True):
            memo[id(page)] = clone
        for page, clone in zip(self.mem_map, new.mem_map, strict=True):
            for field in Page.__slots__:
                setattr(clone, field, copy.deepcopy(getattr(page, field), memo))
        new.free_lists = [[memo[id(page)] for page in free] for free in self.free_lists]
        return new

    def alloc_page_node(self, nid: int) -> Page | None:
        """alloc_pages_node(nid, GFP_HIGHUSER, 0): a page with count 1, or None."""
        free = self.free_lists[nid]
        if free:
            page = free.pop()
        elif self.used[nid] < self.pages_per_node:  # _new_frame(nid), in place
            self.used[nid] += 1
            page = self.Page(len(self.mem_map))
            self.mem_map.append(page)
            self.index.append(0)
            self.node.append(nid)
        else:  # fall back along the zonelist
            for i in range(1, self.nodes):
                page = self._take((nid + i) % self.nodes)
                if page is not None:
                    break
            else:
                return None
        page._count = 0
        self.allocated_total += 1
        return page

    def _take(self, node: int) -> Page | None:
        free = self.free_lists[node]
        if free:
            return free.pop()
        if self.used[node] < self.pages_per_node:
            return self._new_frame(node)
        return None

    def _new_frame(self, node: int) -> Page:
        """A frame never used before, numbered next."""
        self.used[node] += 1
        page = self.Page(len(self.mem_map))
        self.mem_map.append(page)
        self.index.append(0)
        self.node.append(node)
        return page

    def free_page(self, page: Page) -> None:
        """free_hot_cold_page() with its bad_page() checks."""
        if page.flags & PG_anon:  # anon pages keep mapping until freed
            page.mapping = None
            page.flags &= ~PG_anon
        if (
            page._mapcount != -1
            or page.mapping is not None
            or page.flags & (PG_reserved | PG_locked | PG_lru | PG_active | PG_swapcache)
        ):
            raise ModelFailure("mm/page_alloc.c:bad_page", repr(page))
        page.flags = 0
        page.data = None
        page.private = None
        pfn = page.pfn  # the allocator's own arrays, not the properties
        self.index[pfn] = 0
        self.free_lists[self.node[pfn]].append(page)

    def alloc_compound_node(self, nid: int, order: int) -> Page | None:
        """alloc_pages_node(nid, ... | __GFP_COMP, order): 2^order frames in a
        row, never used before (the model does not defragment), prepared as a
        compound page: every page is PG_compound with ``private`` = the head.
        Returns the head with count 1, or None."""
        n = 1 << order
        for i in range(self.nodes):
            node = (nid + i) % self.nodes
            if self.used[node] + n > self.pages_per_node:
                continue
            self.used[node] += n
            base = len(self.mem_map)
            pages = [self.Page(base + j) for j in range(n)]
            self.mem_map.extend(pages)
            self.index.extend([0] * n)
            self.node.extend([node] * n)
            head = pages[0]
            for page in pages:
                page.flags = PG_compound
                page.private = head
            head._count = 0
            self.allocated_total += n
            return head
        return None

    def pfn_valid(self, pfn: int) -> bool:
        return 0 <= pfn < len(self.mem_map)


def put_page(alloc: PageAllocator, page: Page) -> None:
    """put_page() -> __page_cache_release() when the count drops to zero; a
    compound page calls the destructor kept in ``page[1].mapping``."""
    if page.flags & PG_compound:
        head = page.private
        if head._count < 0:
            raise ModelFailure(
                "include/linux/mm.h:put_page: BUG_ON(page_count(page) == 0)", repr(head)
            )
        head._count -= 1
        if head._count < 0:
            alloc.mem_map[head.pfn + 1].mapping(head)
        return
    if page._count < 0:
        raise ModelFailure(
            "include/linux/mm.h:put_page_testzero: BUG_ON(page_count(page) == 0)", repr(page)
        )
    page._count -= 1
    if page._count < 0:
        # __page_cache_release: take it off the LRU, then free it.
        page.flags &= ~(PG_lru | PG_active)
        alloc.free_page(page)


def mark_page_accessed(page: Page) -> None:
    """mm/swap.c mark_page_accessed(): inactive,unreferenced -> inactive,referenced
    -> active,unreferenced -> active,referenced."""
    flags = page.flags
    if not flags & PG_active and flags & PG_referenced and flags & PG_lru:
        page.flags = (flags | PG_active) & ~PG_referenced  # activate_page()
    elif not flags & PG_referenced:
        page.flags = flags | PG_referenced


def set_page_dirty(page: Page) -> int:
    """mm/page-writeback.c set_page_dirty(): our address spaces all use
    __set_page_dirty_nobuffers, and anon pages outside the swap cache just
    get PG_dirty.  Returns 1 if the page was newly dirtied."""
    if page.flags & PG_dirty:
        return 0
    page.flags |= PG_dirty
    return 1


def lru_cache_add_active(page: Page) -> None:
    """mm/swap.c lru_cache_add_active() with the pagevec drained at once."""
    page.flags |= PG_lru | PG_active


def lru_cache_add(page: Page) -> None:
    """mm/swap.c lru_cache_add(): onto the inactive list (page cache pages)."""
    page.flags |= PG_lru


# --- contents ----------------------------------------------------------------
# ``page.data`` is None (all zeroes) or a bytearray of the page's leading
# bytes, up to the last one ever stored; every byte after it is zero.  So a
# 1-byte store into a fresh page keeps one byte instead of clearing and
# keeping 4 KiB (the kernel's clear_page), and a COW copies what was written.
# Read and write contents only through the helpers below.

_ZEROES = bytes(PAGE_SIZE)
_ZERO_VIEW = memoryview(_ZEROES)


def page_read(page: Page, offset: int, n: int) -> bytes | bytearray:
    """kmap() + copy out: ``n`` bytes of the page from ``offset``."""
    data = page.data
    if data is None:
        return _ZEROES[:n]
    chunk = data[offset : offset + n]
    if len(chunk) < n:
        chunk += _ZEROES[: n - len(chunk)]
    return chunk


def page_read_into(page: Page, offset: int, n: int, buf: bytearray | memoryview, at: int) -> None:
    """kmap() + copy out into ``buf[at:at + n]``, copying nothing twice when
    the read starts the page (a bytearray ``buf`` ending at ``at`` grows)."""
    data = page.data
    have = 0
    if data is not None and offset < len(data):
        if offset or len(data) > n:
            data = data[offset : offset + n]
        have = len(data)
    if have < n:  # zeroes first: a growing buf then reaches at + n at once
        buf[at : at + n] = _ZEROES if n == PAGE_SIZE else _ZERO_VIEW[:n]
    if have:
        buf[at : at + have] = data


def page_write(page: Page, offset: int, buf: bytes | bytearray | memoryview) -> None:
    """kmap() + copy in: store ``buf`` at ``offset``."""
    data = page.data
    if data is None:
        if not offset:
            page.data = bytearray(buf)
            return
        data = page.data = bytearray(offset)
    elif len(data) < offset:
        data += _ZEROES[: offset - len(data)]
    data[offset : offset + len(buf)] = buf


def page_contents(page: Page) -> bytes:
    """All PAGE_SIZE bytes of the page."""
    data = page.data
    if data is None:
        return _ZEROES
    return bytes(data) + _ZEROES[len(data) :]


def copy_user_highpage(to: Page, frm: Page) -> None:
    to.data = None if frm.data is None else bytearray(frm.data)


def clear_user_highpage(page: Page) -> None:
    page.data = None
