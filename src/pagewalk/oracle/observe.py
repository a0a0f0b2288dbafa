"""What is observed after every step, on either side, in one shape.

A :class:`Snapshot` holds, per live process, its scenario vmas and every page
of them that is mapped (present or PROT_NONE), plus the bytes of every
scenario file.  Pages that are not mapped on a side are absent from its
dict.  Frame identities are kept as the side's own frame numbers here (model
pfn or host PFN); they are turned into canonical labels only when the two
sides are compared (``classify.py``), so raw PFNs never reach a report.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from ..kernel.constants import PAGE_SHIFT, VM_EXEC, VM_MAYSHARE, VM_READ, VM_WRITE
from ..kernel.pgtable import PTE_PRESENT_MASK

PAGE = 4096


@dataclass(frozen=True)
class VmaDesc:
    start: int
    end: int
    perms: str  # "rw-p"
    offset: int | None  # file offset of vm_start, for file mappings
    name: str  # scenario file path, "[shmem]" (shared anonymous) or "" (anonymous)

    def text(self) -> str:
        off = "" if self.offset is None else f" @{self.offset:#x}"
        name = f" {self.name}" if self.name else ""
        return f"{self.start:#x}-{self.end:#x} {self.perms}{off}{name}"


@dataclass
class PageObs:
    zero: bool  # the shared zero page
    frame: int  # side-specific frame number (pfn); never reported
    anon: bool
    mapcount: int
    excl: bool  # model: mapcount == 1; host: pagemap bit 56
    content: bytes | None  # None: all zeroes
    anon_exclusive: bool = False  # host only: KPF_MAPPEDTODISK on an anon page
    unread: bool = False  # host only: the bytes were not read (a vma without PROT_READ)

    @property
    def state(self) -> str:
        return "zero page" if self.zero else "page"

    def content_text(self) -> str:
        return content_text(self.content)


def content_text(data: bytes | None) -> str:
    """A short, exact rendering of a page or file: crc32 and the first bytes."""
    if data is None or not any(data):
        return f"zeroes ({len(data) if data is not None else PAGE} bytes)"
    head = data[:24].rstrip(b"\0")
    shown = head.decode("utf-8", "backslashreplace")
    more = "..." if len(data.rstrip(b"\0")) > 24 else ""
    return f"crc {zlib.crc32(data):08x} {shown!r}{more}"


def same_content(a: bytes | None, b: bytes | None) -> bool:
    if a is None or not any(a):
        return b is None or not any(b)
    if b is None:
        return not any(a)
    return a == b


@dataclass
class ProcSnap:
    vmas: list[VmaDesc] = field(default_factory=list)
    pages: dict[int, PageObs] = field(default_factory=dict)


@dataclass
class Snapshot:
    procs: dict[str, ProcSnap] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)


def perms_of(vm_flags: int) -> str:
    return (
        ("r" if vm_flags & VM_READ else "-")
        + ("w" if vm_flags & VM_WRITE else "-")
        + ("x" if vm_flags & VM_EXEC else "-")
        + ("s" if vm_flags & VM_MAYSHARE else "p")
    )


# --- the model side -----------------------------------------------------------------
def model_snapshot(k, order: list[str]) -> Snapshot:
    """Observe the model's Kernel ``k``: processes in ``order`` that are alive."""
    from ..kernel.inspect import walk_ptes
    from ..kernel.page import PG_anon, page_contents, page_mapcount
    from ..kernel.pgtable import PTE_MASK

    snap = Snapshot()
    mem_map = k.alloc.mem_map
    for name in order:
        tsk = k.tasks.get(name)
        if tsk is None or tsk.mm is None:
            continue
        ps = ProcSnap()
        vma = tsk.mm.mmap
        while vma is not None:
            ps.vmas.append(model_vma_desc(vma))
            vma = vma.vm_next
        for addr, pte in walk_ptes(k, tsk.mm):
            if not pte & PTE_PRESENT_MASK:  # neither present nor PROT_NONE
                continue
            page = mem_map[(pte & PTE_MASK) >> PAGE_SHIFT]
            zero = page is k.zero_page
            mc = page_mapcount(page)
            data = page.data
            ps.pages[addr] = PageObs(
                zero,
                page.pfn,
                bool(page.flags & PG_anon),
                mc,
                mc == 1,
                None if data is None else page_contents(page),
            )
        snap.procs[name] = ps
    for path, f in k.files.items():
        if not f.hugetlb:
            snap.files[path] = f.content()
    return snap


def model_vma_desc(vma) -> VmaDesc:
    f = vma.vm_file
    if f is None:
        name, offset = "", None
    elif f.i_nlink == 0:  # the shmem object of a shared anonymous mapping
        name, offset = "[shmem]", None
    else:
        name, offset = f.path, vma.vm_pgoff << PAGE_SHIFT
    return VmaDesc(vma.vm_start, vma.vm_end, perms_of(vma.vm_flags), offset, name)
