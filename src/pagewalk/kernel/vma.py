"""vm_area_struct, vm_operations_struct and anon_vma (include/linux/mm.h,
include/linux/rmap.h; Linux 2.6.15).

The vma list is kept twice, as in the kernel: ``mm.mmap`` / ``vma.vm_next`` is
the sorted linked list the C walks, and ``mm.mm_rb`` (a list sorted by
``vm_end``, searched with bisect) stands in for the red-black tree that
``find_vma`` searches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .constants import (
    PAGE_SHIFT,
    ULONG_MAX,
    VM_EXEC,
    VM_GROWSDOWN,
    VM_HUGETLB,
    VM_IO,
    VM_LOCKED,
    VM_MAYREAD,
    VM_MAYSHARE,
    VM_MAYWRITE,
    VM_RAND_READ,
    VM_READ,
    VM_RESERVED,
    VM_SEQ_READ,
    VM_SHARED,
    VM_WRITE,
)

if TYPE_CHECKING:
    from .filemap import File
    from .mm import mm_struct


class anon_vma:
    """The anon_vma that fork shares between parent and child vmas (mm/rmap.c)."""

    __slots__ = ()


class vm_operations_struct:
    """The methods a mapping supplies; only ``nopage`` and ``populate`` matter
    here, and ``map_pages`` (8c6e50b0290c, v3.15) where a profile has
    ``fault_around``."""

    __slots__ = ("map_pages", "name", "nopage", "populate")

    def __init__(
        self, name: str, nopage: Any = None, populate: Any = None, map_pages: Any = None
    ) -> None:
        self.name = name
        self.nopage = nopage
        self.populate = populate
        self.map_pages = map_pages


class vm_area_struct:
    """``anon_vma_forked`` is model-only: the anon_vma came with a fork from
    the parent's vma (later kernels' vma_had_uncowed_parents(): an
    anon_vma_chain of more than one entry, which split_vma copies).  2.6.15
    shares the parent's anon_vma instead of chaining, so only this flag
    remembers it."""

    __slots__ = (
        "anon_vma",
        "anon_vma_forked",
        "vm_end",
        "vm_file",
        "vm_flags",
        "vm_mm",
        "vm_next",
        "vm_ops",
        "vm_page_prot",
        "vm_pgoff",
        "vm_start",
    )

    def __init__(
        self,
        mm: mm_struct,
        start: int,
        end: int,
        flags: int,
        prot: int,
        pgoff: int = 0,
        file: File | None = None,
        ops: vm_operations_struct | None = None,
    ) -> None:
        self.vm_mm = mm
        self.vm_start = start
        self.vm_end = end
        self.vm_flags = flags
        self.vm_page_prot = prot
        self.vm_pgoff = pgoff
        self.vm_file = file
        self.vm_ops = ops
        self.anon_vma: anon_vma | None = None
        self.anon_vma_forked = False
        self.vm_next: vm_area_struct | None = None

    def copy(self) -> vm_area_struct:
        """``*new = *vma``: a field-by-field copy (split_vma, dup_mmap), taking a
        file reference as both callers do with get_file()."""
        if self.vm_file is not None:
            self.vm_file.f_count += 1
        new = vm_area_struct(
            self.vm_mm,
            self.vm_start,
            self.vm_end,
            self.vm_flags,
            self.vm_page_prot,
            self.vm_pgoff,
            self.vm_file,
            self.vm_ops,
        )
        new.anon_vma = self.anon_vma
        new.anon_vma_forked = self.anon_vma_forked
        return new

    def __repr__(self) -> str:
        return f"<vma {self.vm_start:#x}-{self.vm_end:#x} {vm_flags_str(self.vm_flags)}>"


def is_vm_hugetlb_page(vma: vm_area_struct) -> bool:
    return bool(vma.vm_flags & VM_HUGETLB)


def vma_pages(vma: vm_area_struct) -> int:
    return (vma.vm_end - vma.vm_start) >> PAGE_SHIFT


def linear_page_index(vma: vm_area_struct, address: int) -> int:
    """pgoff_t is unsigned long: a vm_pgoff wrapped by expand_stack wraps here too."""
    return (((address - vma.vm_start) >> PAGE_SHIFT) + vma.vm_pgoff) & ULONG_MAX


def vma_has_nopage(vma: vm_area_struct) -> bool:
    """``vma->vm_ops && vma->vm_ops->nopage``: not anonymous memory."""
    ops = vma.vm_ops
    return ops is not None and ops.nopage is not None


_FLAG_LETTERS = (
    (VM_READ, "rd"),
    (VM_WRITE, "wr"),
    (VM_EXEC, "ex"),
    (VM_SHARED, "sh"),
    (VM_MAYREAD, "mr"),
    (VM_MAYWRITE, "mw"),
    (VM_MAYSHARE, "ms"),
    (VM_GROWSDOWN, "gd"),
    (VM_LOCKED, "lo"),
    (VM_IO, "io"),
    (VM_SEQ_READ, "sr"),
    (VM_RAND_READ, "rr"),
    (VM_RESERVED, "re"),
    (VM_HUGETLB, "ht"),
)


def vm_flags_str(flags: int) -> str:
    """Two-letter flag names, as later kernels print in smaps ``VmFlags:``."""
    return " ".join(name for bit, name in _FLAG_LETTERS if flags & bit)
