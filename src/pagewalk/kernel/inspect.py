"""Read-only views of the model's state, for checks, reports and tests.
Nothing here takes locks or changes a bit: it looks the way a debugger
(drgn, crash) looks at a live kernel."""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from itertools import compress
from typing import TYPE_CHECKING

from .constants import PAGE_SHIFT, PAGE_SIZE, PGDIR_SHIFT, PMD_SHIFT, PTRS_INDEX_MASK, PUD_SHIFT
from .page import page_contents
from .pgtable import _PAGE_PSE, PTE_MASK, PTE_PRESENT_MASK
from .vma import linear_page_index, vma_has_nopage

if TYPE_CHECKING:
    from .kernel import Kernel
    from .mm import mm_struct, task_struct


def walk_tables(k: Kernel, mm: mm_struct) -> Iterator[tuple[int, int, int]]:
    """Yield (level, address, table pfn) for every table below the pgd
    (level 3 = pud page, 2 = pmd page, 1 = pte page)."""
    mem_map = k.alloc.mem_map
    pgd = mm.pgd.data
    for i in used_entries(pgd):
        pud_pfn = (pgd[i] & PTE_MASK) >> PAGE_SHIFT
        yield 3, i << PGDIR_SHIFT, pud_pfn
        pud = mem_map[pud_pfn].data
        for j in used_entries(pud):
            pmd_pfn = (pud[j] & PTE_MASK) >> PAGE_SHIFT
            yield 2, (i << PGDIR_SHIFT) | (j << PUD_SHIFT), pmd_pfn
            pmd = mem_map[pmd_pfn].data
            for m in used_entries(pmd):
                e3 = pmd[m]
                if not e3 & _PAGE_PSE:
                    yield (
                        1,
                        (i << PGDIR_SHIFT) | (j << PUD_SHIFT) | (m << PMD_SHIFT),
                        (e3 & PTE_MASK) >> PAGE_SHIFT,
                    )


_TABLE_BYTES = 8 * 512
_ZERO_TABLE = bytes(_TABLE_BYTES)
#: a table is scanned in chunks of 64 entries: a chunk of zeroes is skipped
#: by one memcmp instead of 64 Python-level tests
_CHUNK = 512
_ZERO_CHUNK = bytes(_CHUNK)
_CHUNKS = tuple((c, range(c // 8, (c + _CHUNK) // 8)) for c in range(0, _TABLE_BYTES, _CHUNK))


def used_entries(table: array) -> list[int]:
    """The indices of a table's non-zero entries, in order.  Tables are
    mostly empty, and mostly full where they are not: whole zero chunks
    are skipped in C."""
    raw = table.tobytes()
    if raw == _ZERO_TABLE:
        return []
    out: list[int] = []
    for start, slots in _CHUNKS:
        if not raw.startswith(_ZERO_CHUNK, start):  # a memcmp in place, no slice
            out += compress(slots, table[slots.start : slots.stop])
    return out


#: the last walk from each pgd frame: (the bytes of the pgd and of every
#: upper table in walk order, upper, pte_tables, huge)
_WALKS: dict[int, tuple[list[bytes], list[int], list[int], list[int]]] = {}
_WALKS_MAX = 64


def table_walk(mem_map: list, mm: mm_struct) -> tuple[list[bytes], list[int], list[int], list[int]]:
    """One walk of an mm's tables in address order (``walk_tables``' order,
    as lists, for the hot callers): the bytes of the pgd and of each upper
    table, the pud and pmd pages' frames, the pte pages' frames, and the
    head frames huge pmds map.  The lists are the memo's: read them, do not
    change them.

    Memoised by contents, not invalidated: which tables a walk visits
    depends on nothing but the bytes of the tables above them, so when the
    pgd and every upper table the last walk from this pgd visited hold the
    same bytes as then (in walk order, each equal table vouching for the
    frames of the next), the walk is the same -- in any kernel, any
    execution.  Checking that costs a copy and a memcmp per upper table, the
    walk a scan of each (the explorer judges every ``page_table_lock``
    section by it)."""
    pgd = mm.pgd
    raw = pgd.data.tobytes()
    memo = _WALKS.get(pgd.pfn)
    if memo is not None and memo[0][0] == raw:
        raws = memo[0]
        for n, pfn in enumerate(memo[1], 1):
            if mem_map[pfn].data.tobytes() != raws[n]:
                break
        else:
            return memo
    walk = _walk(mem_map, pgd.data, raw)
    if len(_WALKS) >= _WALKS_MAX:
        _WALKS.clear()
    _WALKS[pgd.pfn] = walk
    return walk


def _walk(
    mem_map: list, pgd: array, raw: bytes
) -> tuple[list[bytes], list[int], list[int], list[int]]:
    raws = [raw]
    upper: list[int] = []
    pte_tables: list[int] = []
    huge: list[int] = []
    for i in used_entries(pgd):
        pud_pfn = (pgd[i] & PTE_MASK) >> PAGE_SHIFT
        upper.append(pud_pfn)
        pud = mem_map[pud_pfn].data
        raws.append(pud.tobytes())
        for j in used_entries(pud):
            pmd_pfn = (pud[j] & PTE_MASK) >> PAGE_SHIFT
            upper.append(pmd_pfn)
            pmd = mem_map[pmd_pfn].data
            raws.append(pmd.tobytes())
            for m in used_entries(pmd):
                entry = pmd[m]
                if entry & _PAGE_PSE:
                    huge.append((entry & PTE_MASK) >> PAGE_SHIFT)
                else:
                    pte_tables.append((entry & PTE_MASK) >> PAGE_SHIFT)
    return raws, upper, pte_tables, huge


def walk_ptes(k: Kernel, mm: mm_struct) -> Iterator[tuple[int, int]]:
    """Yield (address, pte) for every non-empty pte of an mm."""
    mem_map = k.alloc.mem_map
    for level, base, pfn in walk_tables(k, mm):
        if level != 1:
            continue
        table = mem_map[pfn].data
        for n in used_entries(table):
            yield base | (n << PAGE_SHIFT), table[n]


def pmd_entry_at(mm: mm_struct, address: int) -> int:
    """The pmd entry covering address (a pte table or a huge page), read
    without locking; 0 where an upper level or the pmd entry is empty."""
    mem_map = mm.k.alloc.mem_map
    entry = mm.pgd.data[(address >> PGDIR_SHIFT) & PTRS_INDEX_MASK]
    if not entry:
        return 0
    entry = mem_map[(entry & PTE_MASK) >> PAGE_SHIFT].data[(address >> PUD_SHIFT) & PTRS_INDEX_MASK]
    if not entry:
        return 0
    return mem_map[(entry & PTE_MASK) >> PAGE_SHIFT].data[(address >> PMD_SHIFT) & PTRS_INDEX_MASK]


def pte_at(mm: mm_struct, address: int) -> int:
    """The raw pte mapping address, read without locking; 0 where no pte page
    covers it (an empty upper entry, or a huge pmd)."""
    entry = pmd_entry_at(mm, address)
    if not entry or entry & _PAGE_PSE:
        return 0
    return mm.k.alloc.mem_map[(entry & PTE_MASK) >> PAGE_SHIFT].data[
        (address >> PAGE_SHIFT) & PTRS_INDEX_MASK
    ]


def lookup_pte(mm: mm_struct, address: int) -> tuple[object, object]:
    """(the lock protecting address's pte, the page it maps or None), read
    without locking: for schedule-point footprints."""
    from .pgalloc import pte_lockptr

    entry = pmd_entry_at(mm, address)
    if not entry or entry & _PAGE_PSE:
        return mm.page_table_lock, None
    mem_map = mm.k.alloc.mem_map
    pte = mem_map[(entry & PTE_MASK) >> PAGE_SHIFT].data[(address >> PAGE_SHIFT) & PTRS_INDEX_MASK]
    page = mem_map[(pte & PTE_MASK) >> PAGE_SHIFT] if pte & PTE_PRESENT_MASK else None
    return pte_lockptr(mm, entry), page


def count_page_tables(k: Kernel, mm: mm_struct) -> int:
    return sum(1 for _ in walk_tables(k, mm))


def peek(k: Kernel, tsk: task_struct, addr: int, length: int) -> bytes | None:
    """Bytes a load would return, computed without faulting: the mapped page
    if present, else what a fault would bring (zeroes for anonymous memory,
    the file's current bytes for a file mapping)."""
    from .mmap import find_vma

    mm = tsk.mm
    out = bytearray()
    while length > 0:
        vma = find_vma(mm, addr)
        if vma is None or vma.vm_start > addr:
            return None
        off = addr & (PAGE_SIZE - 1)
        n = min(PAGE_SIZE - off, length)
        page = k.page(tsk, addr)
        if page is not None:
            data = page_contents(page)
        elif vma_has_nopage(vma):
            pgoff = linear_page_index(vma, addr)
            cached = vma.vm_file.mapping.page_tree.get(pgoff)
            if cached is not None:
                data = page_contents(cached)
            else:
                start = pgoff * PAGE_SIZE
                data = bytes(vma.vm_file.backing[start : start + PAGE_SIZE]).ljust(PAGE_SIZE, b"\0")
        else:
            data = None
        out += bytes(n) if data is None else data[off : off + n]
        addr += n
        length -= n
    return bytes(out)
