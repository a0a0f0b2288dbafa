"""x86-64 page-table entries and walkers (include/asm-x86_64/pgtable.h,
include/asm-generic/pgtable.h, the pgtable parts of mm/memory.c; Linux 2.6.15).

Representation
--------------
An entry at any level is an ``int`` with the x86-64 bits below and the
physical frame in bits 12..45.  A page-table page is a ``struct page`` (see
``page.py``) whose ``data`` is an ``array('Q')`` of 512 entries: the table
lives in the page's memory, as on the hardware.  Upper-level entries point to
the next table by frame number, so a walk is ``mem_map[entry >> PAGE_SHIFT].data``.

C passes ``pte_t *`` pointers around.  Here a "pointer" is the table plus the
index the address selects: functions take the table (``page_table``, ``pmd``)
and recompute ``pte_index(address)``, exactly as ``pte_offset_map`` does.
"""

from __future__ import annotations

from array import array

from .constants import PAGE_SHIFT, PGDIR_SHIFT, PMD_SHIFT, PTRS_INDEX_MASK, PUD_SHIFT, ULONG_MAX

# --- entry bits (include/asm-x86_64/pgtable.h) ------------------------------
_PAGE_PRESENT = 0x001
_PAGE_RW = 0x002
_PAGE_USER = 0x004
_PAGE_PWT = 0x008
_PAGE_PCD = 0x010
_PAGE_ACCESSED = 0x020
_PAGE_DIRTY = 0x040
_PAGE_PSE = 0x080  # 2MB page (pmd level)
_PAGE_GLOBAL = 0x100
_PAGE_FILE = 0x040  # nonlinear file pte, only when not present
_PAGE_PROTNONE = 0x080  # PROT_NONE pte, only when not present
_PAGE_NX = 1 << 63
#: pte_present()'s mask (0x81): present, or PROT_NONE.  Only for a pte: at the
#: pmd level the same 0x080 bit is _PAGE_PSE.
PTE_PRESENT_MASK = _PAGE_PRESENT | _PAGE_PROTNONE

#: __PHYSICAL_MASK_SHIFT is 46 on x86-64 in 2.6.15.
PTE_MASK = ((1 << 46) - 1) & ~0xFFF
_PAGE_CHG_MASK = PTE_MASK | _PAGE_ACCESSED | _PAGE_DIRTY
_PAGE_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY
_KERNPG_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY

PAGE_NONE = _PAGE_PROTNONE | _PAGE_ACCESSED
PAGE_SHARED = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX
PAGE_SHARED_EXEC = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED
PAGE_COPY = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX
PAGE_COPY_EXEC = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED
PAGE_READONLY = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX
PAGE_READONLY_EXEC = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED

#: mm/mmap.c protection_map[vm_flags & 0xf] with x86-64's __P/__S values:
#: private writable mappings get PAGE_COPY (read-only), so the first write
#: to them always goes through do_wp_page.
protection_map = (
    PAGE_NONE,
    PAGE_READONLY,
    PAGE_COPY,
    PAGE_COPY,  # __P000..__P011
    PAGE_READONLY_EXEC,
    PAGE_READONLY_EXEC,
    PAGE_COPY_EXEC,
    PAGE_COPY_EXEC,
    PAGE_NONE,
    PAGE_READONLY,
    PAGE_SHARED,
    PAGE_SHARED,  # __S000..__S011
    PAGE_READONLY_EXEC,
    PAGE_READONLY_EXEC,
    PAGE_SHARED_EXEC,
    PAGE_SHARED_EXEC,
)


# --- indices ----------------------------------------------------------------
def pgd_index(address: int) -> int:
    return (address >> PGDIR_SHIFT) & PTRS_INDEX_MASK


def pud_index(address: int) -> int:
    return (address >> PUD_SHIFT) & PTRS_INDEX_MASK


def pmd_index(address: int) -> int:
    return (address >> PMD_SHIFT) & PTRS_INDEX_MASK


def pte_index(address: int) -> int:
    return (address >> PAGE_SHIFT) & PTRS_INDEX_MASK


def _addr_end(addr: int, end: int, size: int) -> int:
    """p?d_addr_end(): the next table boundary, or end; unsigned as in C."""
    boundary = (addr + size) & ~(size - 1) & ULONG_MAX
    return boundary if ((boundary - 1) & ULONG_MAX) < ((end - 1) & ULONG_MAX) else end


def pgd_addr_end(addr: int, end: int) -> int:
    return _addr_end(addr, end, 1 << PGDIR_SHIFT)


def pud_addr_end(addr: int, end: int) -> int:
    return _addr_end(addr, end, 1 << PUD_SHIFT)


def pmd_addr_end(addr: int, end: int) -> int:
    return _addr_end(addr, end, 1 << PMD_SHIFT)


# --- entry predicates -------------------------------------------------------
def pte_present(pte: int) -> bool:
    return bool(pte & PTE_PRESENT_MASK)


def pte_dirty(pte: int) -> bool:
    return bool(pte & _PAGE_DIRTY)


def pte_pfn(pte: int) -> int:
    return (pte & PTE_MASK) >> PAGE_SHIFT


def pte_modify(pte: int, newprot: int) -> int:
    """Keep frame, accessed and dirty; take the rest from newprot."""
    return (pte & _PAGE_CHG_MASK) | newprot


def pgd_none(entry: int) -> bool:
    return not entry


def pgd_present(entry: int) -> bool:
    return bool(entry & _PAGE_PRESENT)


def pmd_bad(entry: int) -> bool:
    """x86-64 pmd_bad(): the flags, _PAGE_USER aside, are not exactly
    _KERNPG_TABLE -- so a huge pmd (its _PAGE_PSE) is bad."""
    return (entry & ~PTE_MASK & ~_PAGE_USER) != _KERNPG_TABLE


def pgd_bad(entry: int) -> bool:
    """x86-64 pgd_bad()/pud_bad() (include/asm-x86_64/pgtable.h, 2.6.11 to
    2.6.19): a flag outside _PAGE_PRESENT|RW|USER|ACCESSED|DIRTY is set.
    Not pmd_bad's test: a missing flag is not bad here (Jan Beulich's
    "x86-64: adjust pmd_bad()", 2.6.20, made the three alike)."""
    return bool(entry & _UPPER_BAD_FLAGS)


#: The flags pgd_bad()/pud_bad() reject, as an unsigned mask.
_UPPER_BAD_FLAGS = ~(PTE_MASK | _KERNPG_TABLE | _PAGE_USER) & ((1 << 64) - 1)

pud_none = pmd_none = pgd_none
pud_present = pmd_present = pgd_present
pud_bad = pgd_bad


def pmd_huge(entry: int) -> bool:
    """arch/i386|x86_64 hugetlbpage.c: a pmd mapping a 2MB page has PSE set."""
    return bool(entry & _PAGE_PSE)


def new_table() -> array:
    """The 512 zeroed entries of a freshly allocated page-table page."""
    return array("Q", _ZERO_TABLE)


_ZERO_TABLE = bytes(8 * 512)
