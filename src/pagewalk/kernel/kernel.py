"""The machine: physical memory, the zero page, files, tasks, and the system
calls of the model as a Python API.

``Kernel`` is what a scenario runs against and what tests drive directly::

    k = Kernel()                      # profile "2.6.15", one NUMA node
    p = k.spawn("p")
    a = k.mmap(p, 2 * 4096, "r")      # anonymous, private
    k.read(p, a, 8)                   # faults in the ZERO_PAGE
    k.page(p, a) is k.zero_page       # True

System calls return what the kernel returns: a value or a negative errno.
User loads and stores return an :class:`Access` that carries the signal a
faulting access would get.  The kernel functions themselves
(``follow_page``, ``get_user_pages``, ...) live in the sibling modules and take
the same arguments as in C.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from ..errors import InputError
from . import fork as _fork
from .constants import (
    MADV_DONTNEED,
    MADV_NORMAL,
    MADV_RANDOM,
    MADV_SEQUENTIAL,
    MADV_WILLNEED,
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_GROWSDOWN,
    MAP_LOCKED,
    MAP_POPULATE,
    MAP_PRIVATE,
    MAP_SHARED,
    PAGE_MASK_LOW,
    PAGE_SHIFT,
    PROT_EXEC,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
    VM_HUGETLB,
    VSYSCALL_END,
    VSYSCALL_START,
)
from .filemap import File
from .hugetlb import DEFAULT_MAX_HUGE_PAGES, HugePagePool
from .inspect import pmd_entry_at, pte_at
from .locks import down_read, down_write, up_read, up_write
from .madvise import sys_madvise
from .memory import get_user_pages
from .mlock import sys_mlock, sys_munlock
from .mm import mm_struct, task_struct
from .mmap import do_mmap_pgoff, do_munmap, find_vma
from .mmu import user_access
from .mprotect import sys_mprotect
from .page import Page, PageAllocator, PG_reserved, put_page
from .pgtable import _PAGE_PSE, PAGE_READONLY, PTE_MASK
from .ptrace import access_process_vm
from .semantics import Semantics, get_semantics
from .vma import vm_area_struct

PROTS = {
    "": PROT_NONE,
    "r": PROT_READ,
    "rw": PROT_READ | PROT_WRITE,
    "rx": PROT_READ | PROT_EXEC,
    "rwx": PROT_READ | PROT_WRITE | PROT_EXEC,
}
MAP_FLAGS = {
    "private": MAP_PRIVATE,
    "shared": MAP_SHARED,
    "fixed": MAP_FIXED,
    "growsdown": MAP_GROWSDOWN,
    "locked": MAP_LOCKED,
    "populate": MAP_POPULATE,
}
ADVICE = {
    "normal": MADV_NORMAL,
    "random": MADV_RANDOM,
    "sequential": MADV_SEQUENTIAL,
    "willneed": MADV_WILLNEED,
    "dontneed": MADV_DONTNEED,
}

_PFN = attrgetter("pfn")
#: mem_read allocates its result up to this size before reading.
MEM_READ_PRESIZE = 16 << 20

#: 4 GiB of RAM per node by default: far more than scenarios touch.
DEFAULT_PAGES_PER_NODE = 1 << 20


@dataclass
class Access:
    """Outcome of a user load/store: bytes read (or count written) and the
    signal that stopped it, if any."""

    data: bytes | int
    signal: str | None = None


class _Running:
    """The context manager behind :meth:`Kernel.running` (a class: it is on
    every system call's path, and a generator-based one costs 4x more)."""

    __slots__ = ("k", "saved", "tsk")

    def __init__(self, k: Kernel, tsk: task_struct) -> None:
        self.k = k
        self.tsk = tsk

    def __enter__(self) -> task_struct:
        self.saved = self.k.current
        self.k.current = self.tsk
        return self.tsk

    def __exit__(self, *exc: object) -> None:
        self.k.current = self.saved


class Kernel:
    """One simulated machine running one kernel profile."""

    def __init__(
        self,
        semantics: str | Semantics = "2.6.15",
        nodes: int = 1,
        split_ptlock: bool = True,
        pages_per_node: int = DEFAULT_PAGES_PER_NODE,
        hugepages: int = DEFAULT_MAX_HUGE_PAGES,
    ) -> None:
        self.semantics = get_semantics(semantics) if isinstance(semantics, str) else semantics
        if not 1 <= nodes <= 64:
            raise InputError(f"nodes must be 1..64, got {nodes}")
        self.nodes = nodes
        # Before 4c21e2f2441d every pte was under mm->page_table_lock.
        self.split_ptlock = split_ptlock and self.semantics.split_ptlock_available
        self.alloc = PageAllocator(nodes, pages_per_node + 2)
        self.alloc.k = self
        self.sched: Any = None
        self.current: task_struct | None = None
        self.tasks: dict[str, task_struct] = {}
        self.files: dict[str, File] = {}
        self.messages: list[str] = []
        #: pfn -> references held by users through get_user_pages (the gup op)
        self.pins: Counter[int] = Counter()
        self.pgfault = 0
        self.nr_page_table_pages = 0
        self.tables_allocated = 0  # pgd, pud, pmd and pte pages ever allocated
        self._ino = 0
        self._pid = 0
        self.zero_page = self._reserved_page()  # empty_zero_page, pfn 0
        self.vsyscall_page = self._reserved_page()
        self.gate_vma = vm_area_struct(None, VSYSCALL_START, VSYSCALL_END, 0, PAGE_READONLY)
        self.hugetlb_pool = HugePagePool(self, hugepages)

    def _reserved_page(self) -> Page:
        """Boot-time pages: PG_reserved with count 1, so they are never freed."""
        page = self.alloc.alloc_page_node(0)
        page.flags |= PG_reserved
        self.alloc.allocated_total -= 1
        return page

    # -- small services the kernel code asks for ---------------------------------
    def log(self, message: str) -> None:
        """printk()."""
        self.messages.append(message)

    def current_node(self) -> int:
        """numa_node_id() of the running task's preferred node."""
        return self.current.node if self.current is not None else 0

    def next_ino(self) -> int:
        self._ino += 1
        return self._ino

    def in_gate_area(self, tsk: task_struct, addr: int) -> bool:
        """x86-64 in_gate_area(): the vsyscall range."""
        return VSYSCALL_START <= addr < VSYSCALL_END

    def get_gate_vma(self, tsk: task_struct) -> vm_area_struct:
        return self.gate_vma

    def gate_page(self, addr: int) -> Page | None:
        """The kernel page-table lookup of get_user_pages' gate branch: only the
        first vsyscall page is mapped."""
        if addr & ~PAGE_MASK_LOW == VSYSCALL_START:
            return self.vsyscall_page
        return None

    def running(self, tsk: task_struct) -> _Running:
        """``with k.running(tsk):`` -- make ``tsk`` the current task for the
        duration (a system call)."""
        return _Running(self, tsk)

    # -- the world -----------------------------------------------------------------
    def add_file(
        self, path: str, content: bytes = b"", mode: str = "rw", hugetlb: bool = False
    ) -> File:
        """Create a file; ``mode="r"`` means processes can only open it read-only."""
        if path in self.files:
            raise InputError(f"file {path} already exists")
        if hugetlb and any(content):
            raise InputError(
                f"{path}: a hugetlbfs file has no content to give "
                "(hugetlbfs supports no write(2)); use size"
            )
        file = File(self, path, content, writable=(mode == "rw"), hugetlb=hugetlb)
        self.files[path] = file
        return file

    def spawn(self, name: str, node: int = 0) -> task_struct:
        """A new process with an empty address space."""
        if name in self.tasks:
            raise InputError(f"process {name!r} already exists")
        if not 0 <= node < self.nodes:
            raise InputError(f"process {name!r}: node {node} is not in 0..{self.nodes - 1}")
        self._pid += 1
        tsk = task_struct(self._pid, name, None, node)
        with self.running(tsk):
            tsk.mm = mm_struct(self, name)
        self.tasks[name] = tsk
        return tsk

    def task(self, proc: str | task_struct) -> task_struct:
        if isinstance(proc, task_struct):
            return proc
        try:
            return self.tasks[proc]
        except KeyError:
            raise InputError(f"no process named {proc!r}") from None

    def _live(self, proc: str | task_struct) -> task_struct:
        tsk = self.task(proc)
        if tsk.mm is None:
            raise InputError(f"process {tsk.comm!r} has exited")
        return tsk

    # -- system calls ----------------------------------------------------------------
    def mmap(
        self,
        proc: str | task_struct,
        length: int,
        prot: str | int = "rw",
        flags: Iterable[str] | int = ("private",),
        file: str | File | None = None,
        offset: int = 0,
        addr: int = 0,
    ) -> int:
        """sys_mmap (arch/x86_64/kernel/sys_x86_64.c): the address or -errno."""
        tsk = self._live(proc)
        prot_v = PROTS[prot] if isinstance(prot, str) else prot
        flag_v = flags if isinstance(flags, int) else sum(MAP_FLAGS[f] for f in set(flags))
        fobj = self.files[file] if isinstance(file, str) else file
        if fobj is None:
            flag_v |= MAP_ANONYMOUS
        if offset & PAGE_MASK_LOW:
            return -22
        with self.running(tsk):
            down_write(tsk.mm.mmap_sem)
            try:
                return do_mmap_pgoff(tsk, fobj, addr, length, prot_v, flag_v, offset >> PAGE_SHIFT)
            finally:
                up_write(tsk.mm.mmap_sem)

    def munmap(self, proc: str | task_struct, addr: int, length: int) -> int:
        tsk = self._live(proc)
        with self.running(tsk):
            down_write(tsk.mm.mmap_sem)
            try:
                return do_munmap(tsk.mm, addr, length)
            finally:
                up_write(tsk.mm.mmap_sem)

    def mprotect(self, proc: str | task_struct, addr: int, length: int, prot: str | int) -> int:
        tsk = self._live(proc)
        with self.running(tsk):
            return sys_mprotect(tsk, addr, length, PROTS[prot] if isinstance(prot, str) else prot)

    def madvise(self, proc: str | task_struct, addr: int, length: int, advice: str | int) -> int:
        tsk = self._live(proc)
        with self.running(tsk):
            return sys_madvise(
                tsk, addr, length, ADVICE[advice] if isinstance(advice, str) else advice
            )

    def mlock(self, proc: str | task_struct, addr: int, length: int) -> int:
        tsk = self._live(proc)
        with self.running(tsk):
            return sys_mlock(tsk, addr, length)

    def munlock(self, proc: str | task_struct, addr: int, length: int) -> int:
        tsk = self._live(proc)
        with self.running(tsk):
            return sys_munlock(tsk, addr, length)

    def fork(self, proc: str | task_struct, child: str) -> int:
        """fork(): the child's pid, or -ENOMEM.  The child is named ``child``."""
        parent = self._live(proc)
        if child in self.tasks:
            raise InputError(f"process {child!r} already exists")
        self._pid += 1
        tsk = task_struct(self._pid, child, None, parent.node)
        with self.running(parent):
            if _fork.copy_mm(self, parent, tsk):
                return -12
        self.tasks[child] = tsk
        return tsk.pid

    def exit(self, proc: str | task_struct) -> int:
        tsk = self._live(proc)
        with self.running(tsk):
            _fork.exit_mm(tsk)
        return 0

    # read and write switch ``current`` by hand: they are the entries of
    # every fault a workload takes, and ``with self.running()`` costs 4 calls.
    def read(self, proc: str | task_struct, addr: int, length: int) -> Access:
        """A user-mode load through the MMU."""
        tsk = self.tasks.get(proc) if isinstance(proc, str) else proc
        if tsk is None or tsk.mm is None:
            tsk = self._live(proc)  # raises the input error
        saved, self.current = self.current, tsk
        try:
            data, _, sig = user_access(tsk, addr, length, False, None)
        finally:
            self.current = saved
        return Access(bytes(data), sig)

    def write(self, proc: str | task_struct, addr: int, data: bytes) -> Access:
        """A user-mode store through the MMU."""
        tsk = self.tasks.get(proc) if isinstance(proc, str) else proc
        if tsk is None or tsk.mm is None:
            tsk = self._live(proc)  # raises the input error
        saved, self.current = self.current, tsk
        try:
            _, count, sig = user_access(tsk, addr, len(data), True, data)
        finally:
            self.current = saved
        return Access(count, sig)

    # -- ptrace and get_user_pages --------------------------------------------------
    def mem_read(
        self, proc: str | task_struct, addr: int, length: int, by: str | task_struct | None = None
    ) -> tuple[int, bytes]:
        """access_process_vm(write=0) by ``by`` (default: the target itself):
        (bytes transferred, the bytes)."""
        if length < 0:
            raise InputError(f"mem_read: length must be >= 0, got {length}")
        tsk = self._live(proc)
        # Sized up front to at most MEM_READ_PRESIZE; a longer read grows it as
        # pages are copied, so a huge length that fails early costs no more.
        buf = bytearray(min(length, MEM_READ_PRESIZE))
        # Copies into a memoryview run at memcpy speed, twice a bytearray's.
        view = memoryview(buf) if length <= MEM_READ_PRESIZE else buf
        with self.running(self._live(by) if by is not None else tsk):
            n = access_process_vm(tsk, addr, view, length, 0)
        if view is not buf:
            view.release()  # lets buf shrink
        del buf[n:]
        return n, bytes(buf)

    def mem_readinto(
        self,
        proc: str | task_struct,
        addr: int,
        buf: bytearray | memoryview,
        by: str | task_struct | None = None,
    ) -> int:
        """access_process_vm(write=0) into the caller's writable buffer, as a
        pread(2) of /proc/PID/mem does: the bytes transferred."""
        tsk = self._live(proc)
        with memoryview(buf) as view:
            # Refused before any page is pinned: a failed copy would leak one.
            if view.readonly or not view.c_contiguous:
                raise InputError("mem_readinto: the buffer must be writable and contiguous")
            with self.running(self._live(by) if by is not None else tsk):
                return access_process_vm(tsk, addr, view.cast("B"), view.nbytes, 0)

    def mem_write(
        self, proc: str | task_struct, addr: int, data: bytes, by: str | task_struct | None = None
    ) -> int:
        """access_process_vm(write=1, force=1): bytes transferred."""
        tsk = self._live(proc)
        with self.running(self._live(by) if by is not None else tsk):
            return access_process_vm(tsk, addr, bytearray(data), len(data), 1)

    def gup(
        self,
        proc: str | task_struct,
        addr: int,
        npages: int,
        write: bool = False,
        force: bool = False,
    ) -> tuple[int, list[Page]]:
        """get_user_pages(..., pages) under mmap_sem for read; the references
        stay held (pinned) until :meth:`put_pages`."""
        tsk = self._live(proc)
        pages: list[Page] = []
        with self.running(tsk):
            down_read(tsk.mm.mmap_sem)
            try:
                ret = get_user_pages(tsk, tsk.mm, addr, npages, int(write), int(force), pages, None)
            finally:
                up_read(tsk.mm.mmap_sem)
        self.pins.update(map(_PFN, pages))
        return ret, pages

    def put_pages(self, pages: list[Page]) -> None:
        """Drop references taken by :meth:`gup` (page_cache_release each)."""
        pins = self.pins
        alloc = self.alloc
        for page in pages:
            pfn = page.pfn
            left = pins[pfn] - 1
            if left:
                pins[pfn] = left
            else:
                pins.pop(pfn)  # dict's own: Counter.__delitem__ is Python code
            put_page(alloc, page)

    def futex_key(self, proc: str | task_struct, uaddr: int) -> str | int:
        """get_futex_key(): the key as text, or -errno."""
        from .futex import sys_futex_key

        tsk = self._live(proc)
        with self.running(tsk):
            key = sys_futex_key(tsk, uaddr)
        return key if isinstance(key, int) else str(key)

    def core_dump(self, proc: str | task_struct, path: str) -> int:
        """Write an ELF core of the process to ``path`` (elf_core_dump); the
        core's size, or -errno."""
        from .coredump import elf_core_dump

        tsk = self._live(proc)
        try:
            with open(path, "wb") as f:
                return elf_core_dump(tsk, f)
        except OSError as err:
            raise InputError(f"cannot write the core file {path}: {err.strerror}") from None

    def proc_view(self, proc: str | task_struct, view: str) -> str:
        """Read /proc/PID/{maps,smaps,numa_maps}, or the page-table tree."""
        from . import procfs

        tsk = self._live(proc)
        show = {
            "maps": procfs.show_map,
            "smaps": procfs.show_smap,
            "numa_maps": procfs.numa_maps,
            "pagetables": procfs.show_pagetables,
        }[view]
        return show(tsk)

    # -- inspection (no side effects) ---------------------------------------------------
    def pte(self, proc: str | task_struct, addr: int) -> int | None:
        """The pte mapping addr, or None if a table level is missing."""
        mm = self._live(proc).mm
        entry = pmd_entry_at(mm, addr)
        if not entry or entry & _PAGE_PSE:  # a missing level, or a 2 MB page's pmd
            return entry or None
        return pte_at(mm, addr)

    def page(self, proc: str | task_struct, addr: int) -> Page | None:
        """The page a present pte maps at addr, or None."""
        pte = self.pte(proc, addr)
        if not pte or not pte & 0x81:
            return None
        pfn = (pte & PTE_MASK) >> 12
        vma = self.vma(proc, addr)
        if vma is not None and vma.vm_flags & VM_HUGETLB:
            pfn += (addr >> 12) & 511  # the 4K subpage of a huge page
        return self.alloc.mem_map[pfn]

    def vma(self, proc: str | task_struct, addr: int) -> vm_area_struct | None:
        vma = find_vma(self._live(proc).mm, addr)
        return vma if vma is not None and vma.vm_start <= addr else None

    def peek(self, proc: str | task_struct, addr: int, length: int) -> bytes | None:
        """What the process would read at addr, without faulting or touching
        anything; None if part of the range is not mapped."""
        from .inspect import peek

        return peek(self, self._live(proc), addr, length)

    def page_tables(self, proc: str | task_struct) -> int:
        """Page-table pages (pud, pmd, pte) held below the process's pgd."""
        from .inspect import count_page_tables

        return count_page_tables(self, self._live(proc).mm)

    def check_invariants(self) -> None:
        """Raise ModelFailure if a counting or locking invariant is broken."""
        from .invariants import check_invariants

        check_invariants(self)
