"""fs/binfmt_elf.c elf_core_dump() and maydump() for x86-64: the ELF core
dump, the get_user_pages() user that FOLL_ANON was made for ("When core
dumping an enormous anonymous area that nobody has touched so far, we don't
want to allocate page tables", deceb6cd's comment in follow_page).

The 2.6.15 text of fs/binfmt_elf.c is not in the reference; the code is the
same in 2.6.11 and 2.6.18 except ``maydump()``, which is modelled in its
2.6.12-2.6.18 form (shared memory is dumped when its file is unlinked).

File layout, as elf_core_dump() writes it::

    ELF64 header                 ET_CORE, EM_X86_64, ELFOSABI_NONE, e_phnum = map_count + 1
    PT_NOTE phdr                 p_offset = the notes, p_filesz = their size
    PT_LOAD phdr per vma         in address order; p_filesz = size or 0 (maydump)
    notes                        NT_PRSTATUS, NT_PRPSINFO ("CORE")
    (hole up to a page boundary)
    segment data                 each dumped vma, page by page; ZERO_PAGE and
                                 unreachable pages are holes (lseek, no write)

What differs from the kernel, all on purpose:

* Only the NT_PRSTATUS and NT_PRPSINFO notes: the model has no registers, FPU,
  auxv or other threads, so NT_TASKSTRUCT, NT_AUXV, NT_PRFPREG, NT_PRXFPREG and
  the other threads' notes are left out; ``pr_reg`` is zero, ``pr_fpvalid`` 0,
  and the ids the model lacks (ppid, pgrp, sid, uid, gid) are 0.
* No RLIMIT_CORE: every process is root with unlimited limits.
* The dump runs with ``mm->mmap_sem`` held for read from the first vma walk to
  the last page: the model's choice, so that the program headers and the data
  see the same vmas.  Whether 2.6.15 held it there is UNVERIFIED (2.6.18 drops
  it in coredump_wait() before calling ->core_dump; the 2.6.11 comment relies
  on the other threads being stopped instead).
* The return value is the core's logical size in bytes (the kernel returns
  ``has_dumped``), or ``-errno`` when the file cannot be written (the kernel
  stops at ``end_coredump`` and still reports the dump).
* Untouched anonymous memory is skipped a page-table span at a time instead of
  page by page; see :func:`_foll_anon_hole_end` for why the result is the same.
* The vsyscall gate vma is not dumped (later kernels add it through
  first_vma()/next_vma()).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from .constants import (
    EINVAL,
    EIO,
    FOLL_DUMP,
    PAGE_SIZE,
    VM_EXEC,
    VM_IO,
    VM_MAYREAD,
    VM_READ,
    VM_RESERVED,
    VM_SHARED,
    VM_WRITE,
)
from .locks import cond_resched, down_read, up_read
from .memory import _vm_locked_blocks_foll_anon, get_user_pages, missing_table_end
from .page import Page, page_contents, put_page
from .vma import is_vm_hugetlb_page, vm_area_struct, vma_has_nopage

if TYPE_CHECKING:
    from .mm import mm_struct, task_struct

SIGSEGV = 11

# --- include/linux/elf.h -----------------------------------------------------
ELFMAG = b"\x7fELF"
ELFCLASS64 = 2
ELFDATA2LSB = 1
EV_CURRENT = 1
ELFOSABI_NONE = 0
ET_CORE = 4
EM_X86_64 = 62
PT_LOAD = 1
PT_NOTE = 4
PF_X = 0x1
PF_W = 0x2
PF_R = 0x4
NT_PRSTATUS = 1
NT_PRPSINFO = 3
#: include/asm-x86_64/elf.h
ELF_EXEC_PAGESIZE = 4096
#: include/linux/sched.h: set on current before the notes are filled.
PF_DUMPCORE = 0x00000200

# --- on-disk structures (little-endian, x86-64 alignment spelled out) --------
#: Elf64_Ehdr: e_ident, e_type, e_machine, e_version, e_entry, e_phoff,
#: e_shoff, e_flags, e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum,
#: e_shstrndx (64 bytes).
ELF64_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
#: Elf64_Phdr: p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz,
#: p_memsz, p_align (56 bytes).
ELF64_PHDR = struct.Struct("<IIQQQQQQ")
#: struct elf_note (Elf64_Nhdr): n_namesz, n_descsz, n_type (12 bytes).
ELF64_NHDR = struct.Struct("<III")
#: struct elf_prstatus (336 bytes): pr_info {si_signo, si_code, si_errno},
#: pr_cursig (short, 2 bytes padding), pr_sigpend, pr_sighold, pr_pid,
#: pr_ppid, pr_pgrp, pr_sid, four struct timeval (64 bytes of zeroes),
#: pr_reg (27 x 8 bytes of zeroes), pr_fpvalid, 4 bytes tail padding.
ELF_PRSTATUS = struct.Struct("<3ih2xQQ4i64x216xi4x")
#: struct elf_prpsinfo (136 bytes): pr_state, pr_sname, pr_zomb, pr_nice,
#: (4 bytes padding), pr_flag, pr_uid, pr_gid (__kernel_uid_t is 32-bit on
#: x86-64), pr_pid, pr_ppid, pr_pgrp, pr_sid, pr_fname[16], pr_psargs[80].
ELF_PRPSINFO = struct.Struct("<BcBb4xQII4i16s80s")


def roundup(x: int, y: int) -> int:
    return (x + y - 1) // y * y


# =============================================================================
# maydump and the headers
# =============================================================================
def maydump(vma: vm_area_struct) -> bool:
    """fs/binfmt_elf.c maydump() as in 2.6.12-2.6.18: is this vma's memory
    written to the core?  (2.6.11 skipped every VM_SHARED vma.)"""
    # Do not dump I/O mapped devices or special mappings.
    if vma.vm_flags & (VM_IO | VM_RESERVED):
        return False
    # Dump shared memory only if mapped from an anonymous (unlinked) file:
    # shmem behind MAP_SHARED|MAP_ANONYMOUS or SysV shm.
    if vma.vm_flags & VM_SHARED:
        return vma.vm_file.i_nlink == 0
    # If it hasn't been written to, don't write it out.
    return vma.anon_vma is not None


def fill_elf_header(segs: int) -> bytes:
    """fill_elf_header(): an ET_CORE header with ``segs`` program headers
    right after it and no section headers."""
    ident = ELFMAG + bytes((ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_NONE))
    return ELF64_EHDR.pack(
        ident.ljust(16, b"\0"),  # e_ident, EI_PAD zeroed
        ET_CORE,  # e_type
        EM_X86_64,  # e_machine (ELF_ARCH)
        EV_CURRENT,  # e_version
        0,  # e_entry
        ELF64_EHDR.size,  # e_phoff: the program headers follow the header
        0,  # e_shoff
        0,  # e_flags (ELF_CORE_EFLAGS)
        ELF64_EHDR.size,  # e_ehsize
        ELF64_PHDR.size,  # e_phentsize
        segs,  # e_phnum
        0,  # e_shentsize
        0,  # e_shnum
        0,  # e_shstrndx
    )


def fill_elf_note_phdr(sz: int, offset: int) -> bytes:
    """fill_elf_note_phdr(): PT_NOTE with no address, flags or alignment."""
    return ELF64_PHDR.pack(PT_NOTE, 0, offset, 0, 0, sz, 0, 0)


def vma_phdr(vma: vm_area_struct, offset: int) -> tuple[bytes, int]:
    """elf_core_dump()'s PT_LOAD for one vma at file ``offset``: (phdr, p_filesz)."""
    sz = vma.vm_end - vma.vm_start
    filesz = sz if maydump(vma) else 0
    flags = PF_R if vma.vm_flags & VM_READ else 0
    if vma.vm_flags & VM_WRITE:
        flags |= PF_W
    if vma.vm_flags & VM_EXEC:
        flags |= PF_X
    phdr = ELF64_PHDR.pack(PT_LOAD, flags, offset, vma.vm_start, 0, filesz, sz, ELF_EXEC_PAGESIZE)
    return phdr, filesz


# =============================================================================
# Notes
# =============================================================================
@dataclass
class memelfnote:
    """struct memelfnote: a note before it is written."""

    name: str
    type: int
    data: bytes


def notesize(en: memelfnote) -> int:
    """notesize(): header, name with its NUL, and data, each 4-byte aligned."""
    return ELF64_NHDR.size + roundup(len(en.name) + 1, 4) + roundup(len(en.data), 4)


def fill_prstatus(tsk: task_struct, signr: int) -> bytes:
    """fill_prstatus() + elf_core_copy_regs(): the signal and pid; the model
    has no registers, times or process tree, so the rest is zero."""
    return ELF_PRSTATUS.pack(signr, 0, 0, signr, 0, 0, tsk.pid, 0, 0, 0, 0)


def fill_psinfo(tsk: task_struct) -> bytes:
    """fill_psinfo() for the running dumper: state 0 ('R'), PF_DUMPCORE in
    pr_flag (set just before), root ids, ``comm`` copied as strncpy() into
    the 16-byte pr_fname.  pr_psargs is empty: the model has no argv.
    The kernel's comm holds at most 15 characters and a NUL (TASK_COMM_LEN);
    scenario process names may be longer, so they are cut the same way."""
    fname = tsk.comm.encode()[:15]
    return ELF_PRPSINFO.pack(0, b"R", 0, 0, PF_DUMPCORE, 0, 0, tsk.pid, 0, 0, 0, fname, b"")


def writenote(men: memelfnote, out: _CoreFile) -> None:
    """writenote(): header and name, seek to 4-byte alignment, data, seek again."""
    name = men.name.encode() + b"\0"
    out.write(ELF64_NHDR.pack(len(name), len(men.data), men.type))
    out.write(name)
    out.seek(roundup(out.pos, 4))
    out.write(men.data)
    out.seek(roundup(out.pos, 4))


# =============================================================================
# The file
# =============================================================================
class _CoreFile:
    """The core file as dump_write()/dump_seek() see it; ``pos`` is
    ``file->f_pos``.  A seek is only recorded and the next write moves there,
    so a run of holes costs one lseek and no disk block."""

    __slots__ = ("_at", "file", "pos")

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.pos = 0
        self._at: int | None = None  # where the Python file really is

    def write(self, data: bytes) -> None:
        """dump_write(): all of ``data`` or OSError (a short write is EIO)."""
        if self._at != self.pos:
            self.file.seek(self.pos)
        view = memoryview(data)
        while view:
            n = self.file.write(view)
            if not n:
                raise OSError(EIO, "short write to the core file")
            view = view[n:]
        self.pos += len(data)
        self._at = self.pos

    def seek(self, off: int) -> None:
        """dump_seek(file, off)."""
        self.pos = off

    def finish(self) -> None:
        """Give the file its logical size, so that a trailing hole counts."""
        self.file.truncate(self.pos)


# =============================================================================
# Segment data
# =============================================================================
def _foll_anon(mm: mm_struct, vma: vm_area_struct) -> bool:
    """Would get_user_pages(write=0, force=1) look pages of ``vma`` up with
    FOLL_ANON (before deceb6cd: try untouched_anonymous_page())?  Also the
    preconditions for reaching follow_page at all: VM_MAYREAD (force), no
    VM_IO|VM_RESERVED (maydump guarantees it), not hugetlb."""
    return (
        bool(vma.vm_flags & VM_MAYREAD)
        and not vma.vm_flags & (VM_IO | VM_RESERVED)
        and not is_vm_hugetlb_page(vma)
        and not _vm_locked_blocks_foll_anon(mm.k, vma)
        and not vma_has_nopage(vma)
    )


def _foll_anon_hole_end(mm: mm_struct, addr: int, end: int) -> int:
    """Where a run of pages from ``addr`` (below ``end``) that follow_page
    answers from its no_page_table label ends; ``addr`` if a pte table covers
    ``addr``.

    Why skipping that run with one seek gives the kernel's result: for every
    page of the run, get_user_pages(write=0, force=1) with FOLL_ANON calls
    follow_page, which finds the same missing (or bad) pgd/pud/pmd entry --
    the run ends at that entry's span -- and returns ZERO_PAGE with a
    reference (FOLL_GET), allocating no table and faulting nothing (before
    deceb6cd: follow_page returned NULL and untouched_anonymous_page() gave
    ZERO_PAGE, with page_cache_get(): the same outcome);
    elf_core_dump() sees page == ZERO_PAGE, seeks one page (a hole, nothing
    written) and page_cache_release()s it, so the zero page's count ends
    where it started.  The per-page loop would thus leave the same file
    bytes, the same holes, the same page tables and the same counts as the
    single seek.  Nothing can populate the entry meanwhile in a sequential
    run: the dump holds mmap_sem, and only this task runs.  (Under an
    explorer the per-page loop would offer one cond_resched() per page; the
    skip offers one per run.)
    """
    return missing_table_end(mm, addr, end)


def dump_page(tsk: task_struct, mm: mm_struct, addr: int, out: _CoreFile) -> None:
    """One page of elf_core_dump()'s data loop: get_user_pages(current,
    current->mm, addr, 1, 0, 1, &page, &vma); a failure or the ZERO_PAGE is a
    hole, anything else is written; the reference is always dropped."""
    pages: list[Page] = []
    vmas: list[vm_area_struct] = []
    # Since 8e4b9a607189 the dump's get_dump_page() passes FOLL_DUMP.
    dump = FOLL_DUMP if mm.k.semantics.gup_foll_dump else 0
    if get_user_pages(tsk, mm, addr, 1, 0, 1, pages, vmas, dump) <= 0:
        out.seek(out.pos + PAGE_SIZE)
        return
    page = pages[0]
    try:
        if page is mm.k.zero_page:  # ZERO_PAGE(addr)
            out.seek(out.pos + PAGE_SIZE)
        else:
            # flush_cache_page() and kmap() are no-ops on x86-64; a page
            # whose data is None is all zeroes and is written as such.
            out.write(page_contents(page))
    finally:
        put_page(mm.k.alloc, page)  # page_cache_release()


def dump_vma(tsk: task_struct, mm: mm_struct, vma: vm_area_struct, out: _CoreFile) -> None:
    """Write one dumped vma page by page, except that runs of untouched
    anonymous memory without page tables are skipped whole (one seek)."""
    anon = _foll_anon(mm, vma)
    addr = vma.vm_start
    while addr < vma.vm_end:
        if anon:
            hole_end = _foll_anon_hole_end(mm, addr, vma.vm_end)
            if hole_end > addr:
                # Every page up to hole_end would be ZERO_PAGE from
                # follow_page's no_page_table: a hole, no table allocated, the
                # reference dropped again (see _foll_anon_hole_end).  One seek
                # instead of up to 2^27 get_user_pages calls per pgd slot.
                cond_resched(mm.k)  # get_user_pages' preemption point
                out.seek(out.pos + (hole_end - addr))
                addr = hole_end
                continue
        dump_page(tsk, mm, addr, out)
        addr += PAGE_SIZE


# =============================================================================
# elf_core_dump
# =============================================================================
def write_headers(tsk: task_struct, mm: mm_struct, out: _CoreFile, signr: int) -> tuple[int, int]:
    """elf_core_dump()'s first pass: ELF header, the PT_NOTE and PT_LOAD
    program headers and the notes.  Returns (dataoff, offset): where the
    segment data starts and where it should end."""
    notes = [
        memelfnote("CORE", NT_PRSTATUS, fill_prstatus(tsk, signr)),
        memelfnote("CORE", NT_PRPSINFO, fill_psinfo(tsk)),
    ]
    segs = mm.map_count
    out.write(fill_elf_header(segs + 1))  # including the notes' phdr
    offset = ELF64_EHDR.size + (segs + 1) * ELF64_PHDR.size
    sz = sum(notesize(n) for n in notes)
    out.write(fill_elf_note_phdr(sz, offset))
    offset += sz
    dataoff = offset = roundup(offset, ELF_EXEC_PAGESIZE)  # page-align dumped data
    for vma in mm.vmas():
        phdr, filesz = vma_phdr(vma, offset)
        offset += filesz
        out.write(phdr)
    for note in notes:
        writenote(note, out)
    return dataoff, offset


class DiscardFile:
    """A core file that keeps nothing: what a dump writes when no file was
    asked for (an explorer's executions).  The dump runs as it would into a
    real file -- same pages looked up, same faults, same size returned."""

    def write(self, data: bytes | memoryview) -> int:
        return len(data)

    def seek(self, off: int, whence: int = 0) -> int:
        return off

    def truncate(self, size: int | None = None) -> int:
        return size or 0


def elf_core_dump(tsk: task_struct, file: BinaryIO, signr: int = SIGSEGV) -> int:
    """Write ``tsk``'s core to ``file`` (a binary file open for writing, written
    from offset 0) as fs/binfmt_elf.c elf_core_dump() does with ``tsk`` as
    current.  Returns the core's logical size in bytes, or -errno (-EINVAL for
    a task without an mm, the OSError's errno when the file cannot be written).
    See the module docstring for what differs from the kernel."""
    mm = tsk.mm
    if mm is None:
        return -EINVAL
    k = mm.k
    out = _CoreFile(file)
    with k.running(tsk):
        down_read(mm.mmap_sem)  # the model's choice, see the module docstring
        try:
            dataoff, offset = write_headers(tsk, mm, out, signr)
            out.seek(dataoff)
            for vma in mm.vmas():
                if maydump(vma):
                    dump_vma(tsk, mm, vma, out)
            if out.pos != offset:  # the kernel's sanity check
                k.log(f"elf_core_dump: file->f_pos ({out.pos}) != offset ({offset})")
            out.finish()
        except OSError as exc:
            return -(exc.errno or EIO)
        finally:
            up_read(mm.mmap_sem)
    return out.pos
