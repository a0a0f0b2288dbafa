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
    DEFAULT_MAX_MAP_COUNT,
    EINVAL,
    ENOMEM,
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
    PTRS_INDEX_MASK,
    VM_HUGETLB,
    VSYSCALL_END,
    VSYSCALL_START,
)
from .filemap import File
from .hugetlb import DEFAULT_MAX_HUGE_PAGES, HugePagePool
from .inspect import pmd_entry_at, pte_at
from .invariants import check_invariants
from .locks import down_read, down_write, spinlock_t, up_read, up_write
from .madvise import sys_madvise
from .memory import get_user_pages
from .mlock import sys_mlock, sys_munlock
from .mm import mm_struct, task_struct
from .mmap import do_mmap_pgoff, do_munmap, find_vma
from .mmu import user_access
from .mprotect import sys_mprotect
from .page import Page, PageAllocator, PG_reserved, put_page
from .pgtable import _PAGE_PSE, PAGE_READONLY, PTE_MASK, PTE_PRESENT_MASK
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

PROC_VIEWS = ("maps", "smaps", "numa_maps", "pagetables")

_PFN = attrgetter("pfn")


def _shorthand(table: dict[str, int], value: str, what: str, method: str) -> int:
    """A string shorthand's value; an unknown one is an InputError naming the
    method and the accepted spellings, as the scenario loader words it."""
    try:
        return table[value]
    except KeyError:
        accepted = ", ".join(repr(c) for c in table)
        raise InputError(
            f"unknown {what} {value!r} (accepted: {accepted})", f"Kernel.{method}"
        ) from None


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
        self.tasks: dict[str, task_struct] = {}  # the processes (thread-group leaders)
        self.threads: list[task_struct] = []  # the other threads, from clone_thread
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
        #: /proc/sys/vm/max_map_count: mmap and split_vma refuse past it (ENOMEM)
        self.sysctl_max_map_count = DEFAULT_MAX_MAP_COUNT

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
        tsk = self._new_task(name, node)
        with self.running(tsk):
            tsk.mm = mm_struct(self, name)
        self.tasks[name] = tsk
        return tsk

    def _new_task(self, comm: str, node: int) -> task_struct:
        self._pid += 1
        tsk = task_struct(self._pid, comm, None, node)
        tsk.alloc_lock = spinlock_t(self, f"{tsk!r}.alloc_lock")
        return tsk

    def clone_thread(self, proc: str | task_struct) -> task_struct:
        """copy_process(CLONE_VM | CLONE_THREAD | ...): a new thread of
        ``proc``'s thread group.  copy_mm's CLONE_VM branch shares the mm and
        takes an ``mm_users`` reference on it."""
        leader = self._live(proc).group_leader
        tsk = self._new_task(leader.comm, leader.node)
        tsk.group_leader = leader
        tsk.mm = leader.mm
        leader.mm.mm_users += 1
        self.threads.append(tsk)
        return tsk

    def thread_exit(self, tsk: task_struct, may_be_last: bool = True) -> None:
        """A thread leaves: do_exit's exit_mm (the last user tears the mm down).

        ``may_be_last=False`` is the caller's promise that the mm has another
        user outliving this thread (nothing can exit the group meanwhile).
        exit_mm's locking then changes nothing another task can see, and
        only its ``mm_users`` reference is dropped, with no schedule point:
        searches stay as small as if threads never exited."""
        if may_be_last:
            with self.running(tsk):
                _fork.exit_mm(tsk)
            return
        mm = tsk.mm
        if mm is not None:
            tsk.mm = None
            mm.mm_users -= 1

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
        """sys_mmap (arch/x86_64/kernel/sys_x86_64.c): the address, or
        -EINVAL (length 0, an unaligned offset or MAP_FIXED address, neither
        private nor shared, a hugetlbfs mapping off 2 MiB), -ENOMEM (no room,
        or more than ``sysctl_max_map_count`` vmas), -EACCES (a shared
        writable mapping of a read-only file), -EOVERFLOW (the offset wraps).

        ``prot`` is ``""``, ``"r"``, ``"rw"``, ``"rx"``, ``"rwx"`` or PROT_*
        bits; ``flags`` names from ``private shared fixed growsdown locked
        populate`` or MAP_* bits; ``file`` a path given to :meth:`add_file`.

        >>> k = Kernel(); p = k.spawn("p")
        >>> hex(k.mmap(p, 8192, "r"))               # TASK_UNMAPPED_BASE
        '0x2aaaaaaab000'
        >>> k.mmap(p, 0)                            # -EINVAL
        -22
        >>> k.mmap(p, 4096, "rwz")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        pagewalk.errors.InputError: Kernel.mmap: unknown prot 'rwz' (accepted: '', 'r', ...)
        """
        tsk = self._live(proc)
        prot_v = _shorthand(PROTS, prot, "prot", "mmap") if isinstance(prot, str) else prot
        if isinstance(flags, str):
            flags = (flags,)
        flag_v = (
            flags
            if isinstance(flags, int)
            else sum(_shorthand(MAP_FLAGS, f, "mmap flag", "mmap") for f in set(flags))
        )
        if isinstance(file, str):
            if file not in self.files:
                raise InputError(f"no file named {file!r} (add_file creates one)", "Kernel.mmap")
            fobj = self.files[file]
        else:
            fobj = file
        if fobj is None:
            flag_v |= MAP_ANONYMOUS
        if offset & PAGE_MASK_LOW:
            return -EINVAL
        with self.running(tsk):
            down_write(tsk.mm.mmap_sem)
            try:
                return do_mmap_pgoff(tsk, fobj, addr, length, prot_v, flag_v, offset >> PAGE_SHIFT)
            finally:
                up_write(tsk.mm.mmap_sem)

    def munmap(self, proc: str | task_struct, addr: int, length: int) -> int:
        """sys_munmap: 0 (also over a hole), -EINVAL (an unaligned address, a
        length of 0 or past TASK_SIZE, a cut through a hugetlb vma off 2 MiB)
        or -ENOMEM (a split past ``sysctl_max_map_count``).

        >>> k = Kernel(); p = k.spawn("p")
        >>> a = k.mmap(p, 3 * 4096)
        >>> k.munmap(p, a + 4096, 4096), len(list(p.mm.vmas()))
        (0, 2)
        >>> k.munmap(p, a + 1, 4096)                # -EINVAL
        -22
        """
        tsk = self._live(proc)
        with self.running(tsk):
            down_write(tsk.mm.mmap_sem)
            try:
                return do_munmap(tsk.mm, addr, length)
            finally:
                up_write(tsk.mm.mmap_sem)

    def mprotect(self, proc: str | task_struct, addr: int, length: int, prot: str | int) -> int:
        """sys_mprotect: 0, -EINVAL (an unaligned address, unknown PROT bits,
        both PROT_GROWSDOWN and PROT_GROWSUP), -ENOMEM (a hole in the range,
        after changing what lies before it) or -EACCES (write to a read-only
        shared file mapping, any change to a hugetlb vma).  ``prot`` as for
        :meth:`mmap`.

        >>> k = Kernel(); p = k.spawn("p")
        >>> a = k.mmap(p, 4096, "rw")
        >>> k.mprotect(p, a, 4096, "r"), k.write(p, a, b"x").signal
        (0, 'SIGSEGV')
        >>> k.mprotect(p, a + 4096, 4096, "r")      # -ENOMEM: nothing there
        -12
        """
        tsk = self._live(proc)
        prot_v = _shorthand(PROTS, prot, "prot", "mprotect") if isinstance(prot, str) else prot
        with self.running(tsk):
            return sys_mprotect(tsk, addr, length, prot_v)

    def madvise(self, proc: str | task_struct, addr: int, length: int, advice: str | int) -> int:
        """sys_madvise with ``normal``, ``random``, ``sequential``,
        ``willneed`` or ``dontneed`` (or MADV_*): 0, -EINVAL (an unaligned
        address, unknown advice, DONTNEED on a locked, hugetlb or reserved
        vma), -ENOMEM (a hole in the range, after advising the rest), -EBADF
        (WILLNEED on anonymous memory) or -EAGAIN (a split refused).

        >>> k = Kernel(); p = k.spawn("p")
        >>> a = k.mmap(p, 4096, "rw")
        >>> k.write(p, a, b"x").signal, k.madvise(p, a, 4096, "dontneed")
        (None, 0)
        >>> k.read(p, a, 1).data                    # the zero page now
        b'\\x00'
        >>> k.madvise(p, a, 4096, "willneed")       # -EBADF
        -9
        """
        tsk = self._live(proc)
        if isinstance(advice, str):
            advice = _shorthand(ADVICE, advice, "advice", "madvise")
        with self.running(tsk):
            return sys_madvise(tsk, addr, length, advice)

    def mlock(self, proc: str | task_struct, addr: int, length: int) -> int:
        """sys_mlock: 0 once every page is faulted in (make_pages_present),
        -ENOMEM (a hole in the range), or make_pages_present's -EFAULT
        (nothing could be faulted, e.g. a PROT_NONE range).

        >>> k = Kernel(); p = k.spawn("p")
        >>> a = k.mmap(p, 2 * 4096, "rw")
        >>> k.mlock(p, a, 2 * 4096), k.page(p, a + 4096) is None
        (0, False)
        >>> k.mlock(p, a + 2 * 4096, 4096)          # -ENOMEM
        -12
        """
        tsk = self._live(proc)
        with self.running(tsk):
            return sys_mlock(tsk, addr, length)

    def munlock(self, proc: str | task_struct, addr: int, length: int) -> int:
        """sys_munlock: 0 (the pages stay mapped) or -ENOMEM (a hole).

        >>> k = Kernel(); p = k.spawn("p")
        >>> a = k.mmap(p, 4096, "rw", ["private", "locked"])
        >>> k.munlock(p, a, 4096), k.page(p, a) is None
        (0, False)
        """
        tsk = self._live(proc)
        with self.running(tsk):
            return sys_munlock(tsk, addr, length)

    def fork(self, proc: str | task_struct, child: str) -> int:
        """fork(): the child's pid, or -ENOMEM.  The child is named ``child``;
        private pages are shared copy-on-write.

        >>> k = Kernel(); p = k.spawn("p")
        >>> a = k.mmap(p, 4096, "rw"); _ = k.write(p, a, b"x")
        >>> k.fork(p, "c") > 0, k.page("c", a) is k.page(p, a)
        (True, True)
        """
        parent = self._live(proc)
        if child in self.tasks:
            raise InputError(f"process {child!r} already exists")
        tsk = self._new_task(child, parent.node)
        with self.running(parent):
            if _fork.copy_mm(self, parent, tsk):
                return -ENOMEM
        self.tasks[child] = tsk
        return tsk.pid

    def exit(self, proc: str | task_struct) -> int:
        """exit_group(2): the whole thread group exits (do_group_exit); always 0.

        >>> k = Kernel(); p = k.spawn("p")
        >>> k.exit(p), p.mm is None
        (0, True)
        """
        tsk = self._live(proc)
        with self.running(tsk):
            _fork.do_group_exit(tsk)
        return 0

    # read and write switch ``current`` by hand: they are the entries of
    # every fault a workload takes, and ``with self.running()`` costs 4 calls.
    def read(self, proc: str | task_struct, addr: int, length: int) -> Access:
        """A user-mode load through the MMU: an :class:`Access` with the
        bytes read and the signal that stopped it (``"SIGSEGV"``,
        ``"SIGBUS"``) or None.

        >>> k = Kernel(); p = k.spawn("p")
        >>> a = k.mmap(p, 4096, "r")
        >>> k.read(p, a, 2), k.read(p, 0, 1).signal
        (Access(data=b'\\x00\\x00', signal=None), 'SIGSEGV')
        """
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
        """A user-mode store through the MMU: an :class:`Access` with the
        bytes written and the signal that stopped it, or None.

        >>> k = Kernel(); p = k.spawn("p")
        >>> a = k.mmap(p, 4096, "r")
        >>> k.write(p, a, b"x")                     # a read-only mapping
        Access(data=0, signal='SIGSEGV')
        """
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
        (bytes transferred, the bytes).  A range that cannot be faulted in
        stops the transfer there (0 bytes: the -EIO of a read of
        /proc/PID/mem).

        >>> k = Kernel(); p = k.spawn("p")
        >>> a = k.mmap(p, 4096, "r")
        >>> k.mem_read(p, a, 3), k.mem_read(p, a + 4096, 3)
        ((3, b'\\x00\\x00\\x00'), (0, b''))
        """
        if length < 0:
            raise InputError(f"mem_read: length must be >= 0, got {length}")
        tsk = self.task(proc)  # an exited target reads as 0 bytes, as in the C
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
        pread(2) of /proc/PID/mem does: the bytes transferred.

        >>> k = Kernel(); p = k.spawn("p")
        >>> a = k.mmap(p, 4096, "r"); buf = bytearray(8)
        >>> k.mem_readinto(p, a, buf)
        8
        """
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
        """access_process_vm(write=1, force=1): bytes transferred, as a write
        to /proc/PID/mem (0 once the target has exited: get_task_mm finds no
        mm).  Forced: a read-only private mapping gets a copy-on-write page.

        >>> k = Kernel(); p = k.spawn("p")
        >>> a = k.mmap(p, 4096, "r")
        >>> k.mem_write(p, a, b"hi"), k.read(p, a, 2).data
        (2, b'hi')
        """
        tsk = self.task(proc)
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
        """get_user_pages(..., pages) under mmap_sem for read: (pages done,
        the pages), or (-EFAULT, []) when the first page cannot be had (no
        vma, VM_IO/VM_RESERVED, no permission, SIGBUS) and (-ENOMEM, []) on
        OOM.  The references stay held (pinned) until :meth:`put_pages`.

        >>> k = Kernel(); p = k.spawn("p")
        >>> a = k.mmap(p, 2 * 4096, "rw")
        >>> n, pages = k.gup(p, a, 2, write=True); n
        2
        >>> k.put_pages(pages); k.gup(p, a + 2 * 4096, 1)    # -EFAULT
        (-14, [])
        """
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

    def pin(
        self,
        proc: str | task_struct,
        addr: int,
        npages: int,
        write: bool = False,
        longterm: bool = False,
    ) -> tuple[int, list[Page]]:
        """pin_user_pages (FOLL_PIN; before the ``foll_pin`` switch, the
        get_user_pages a driver used): (pages done, the pages) or (-errno, []).
        The pins stay until :meth:`unpin`.

        >>> from pagewalk.kernel.page import page_count
        >>> k = Kernel("6.18"); p = k.spawn("p")
        >>> a = k.mmap(p, 4096, "rw")
        >>> n, pages = k.pin(p, a, 1, write=True); n, page_count(pages[0])
        (1, 1025)
        >>> k.unpin(pages); page_count(pages[0])
        1
        """
        from .pin import pin_user_pages, pin_weight

        tsk = self._live(proc)
        pages: list[Page] = []
        with self.running(tsk):
            ret = pin_user_pages(tsk, addr, npages, write, longterm, pages)
        weight = pin_weight(self)
        for page in pages:
            self.pins[page.pfn] += weight
        return ret, pages

    def unpin(self, pages: list[Page]) -> None:
        """unpin_user_pages() of pages from :meth:`pin`."""
        from .pin import drop_user_ref, pin_weight, unpin_user_page

        weight = pin_weight(self)
        for page in pages:
            drop_user_ref(self.pins, page.pfn, weight)
            unpin_user_page(self, page)

    def vmsplice(self, proc: str | task_struct, addr: int, length: int) -> tuple[int, object]:
        """vmsplice(2) of [addr, addr+length) into a new pipe: (bytes spliced
        or -errno, the pipe).  The pipe holds the page references until
        :meth:`pipe_read` consumes them.

        >>> k = Kernel(); p = k.spawn("p")
        >>> a = k.mmap(p, 4096, "rw"); _ = k.write(p, a, b"old")
        >>> n, pipe = k.vmsplice(p, a, 3); _ = k.write(p, a, b"new")
        >>> n, k.pipe_read(pipe, 3)
        (3, b'new')
        """
        from .pin import pipe_inode_info, vmsplice_to_pipe

        if length <= 0:
            raise InputError(f"vmsplice: length must be > 0, got {length}")
        tsk = self._live(proc)
        pipe = pipe_inode_info()
        with self.running(tsk):
            return vmsplice_to_pipe(tsk, pipe, addr, length), pipe

    def pipe_read(self, pipe: object, length: int) -> bytes:
        """read(2) of a pipe from :meth:`vmsplice`: what its pages hold now;
        the buffers read are released."""
        from .pin import pipe_read

        return pipe_read(self, pipe, length)

    def futex_key(self, proc: str | task_struct, uaddr: int) -> str | int:
        """get_futex_key(): the key as text, or -EINVAL (an address not
        4-byte aligned) or -EFAULT (no vma, or the page cannot be faulted).

        >>> k = Kernel(); p = k.spawn("p")
        >>> a = k.mmap(p, 4096, "rw")
        >>> k.futex_key(p, a + 2), k.futex_key(p, 0)
        (-22, -14)
        """
        from .futex import sys_futex_key

        tsk = self._live(proc)
        with self.running(tsk):
            key = sys_futex_key(tsk, uaddr)
        return key if isinstance(key, int) else str(key)

    def core_dump(self, proc: str | task_struct, path: str | None) -> int:
        """Write an ELF core of the process to ``path`` (elf_core_dump); the
        core's size, or -errno.  ``path`` None: dump into nothing (the kernel
        does all the same work, no file is written); a path that cannot be
        written is an InputError."""
        from .coredump import DiscardFile, elf_core_dump

        tsk = self._live(proc)
        if path is None:
            return elf_core_dump(tsk, DiscardFile())
        try:
            with open(path, "wb") as f:
                return elf_core_dump(tsk, f)
        except OSError as err:
            raise InputError(f"cannot write the core file {path}: {err.strerror}") from None

    def proc_view(self, proc: str | task_struct, view: str) -> str:
        """Read /proc/PID/{maps,smaps,numa_maps}, or the page-table tree
        (``"pagetables"``).

        >>> k = Kernel(); p = k.spawn("p")
        >>> a = k.mmap(p, 4096, "r")
        >>> k.proc_view(p, "maps").splitlines()[0]
        '2aaaaaaab000-2aaaaaaac000 r--p 2aaaaaaab000 00:00 0 '
        """
        from . import procfs

        tsk = self._live(proc)
        if view not in PROC_VIEWS:
            accepted = ", ".join(repr(v) for v in PROC_VIEWS)
            raise InputError(f"unknown view {view!r} (accepted: {accepted})", "Kernel.proc_view")
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
        if not pte or not pte & PTE_PRESENT_MASK:
            return None
        pfn = (pte & PTE_MASK) >> PAGE_SHIFT
        vma = self.vma(proc, addr)
        if vma is not None and vma.vm_flags & VM_HUGETLB:
            pfn += (addr >> PAGE_SHIFT) & PTRS_INDEX_MASK  # the 4K subpage of a huge page
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
        check_invariants(self)
