"""The controller: runs a scenario's operations on the host kernel, one real
process per scenario process, and observes them through /proc.

The controller never maps scenario memory.  It creates the scenario's files
in a private directory on tmpfs (``/dev/shm/pagewalk-oracle-*``), forks one
worker per declared process (a fork child of a worker stands for a scenario
``fork``), sends each operation to the worker of the process that performs
it, and between operations reads /proc/PID/maps, /proc/PID/pagemap,
/proc/kpageflags, /proc/kpagecount and -- for present pages only, because a
read would fault the others in -- /proc/PID/mem.

Safety: every request has a deadline (:data:`STEP_TIMEOUT`); workers are
killed through pidfds (never by name, never a group) and the directory is
removed on every way out, Ctrl-C included (:meth:`HostRun.close`).  Workers
forked by the controller die with it (PR_SET_PDEATHSIG) and every worker exits
when its socket closes.  No system setting is changed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import shutil
import signal
import socket
import struct
import tempfile
from dataclasses import dataclass

from . import libc as L
from .observe import PageObs, ProcSnap, Snapshot, VmaDesc
from .worker import recv_msg, send_msg, worker_main

#: seconds a worker may take for one operation (or to start)
STEP_TIMEOUT = 5.0

KPF_ANON = 1 << 12
KPF_ZERO_PAGE = 1 << 24
KPF_MAPPEDTODISK = 1 << 34  # PG_anon_exclusive on anonymous pages
PM_PRESENT = 1 << 63
PM_EXCL = 1 << 56
PFN_MASK = (1 << 55) - 1

_accessor: L.Accessor | None = None


class HostError(Exception):
    """The host run could not go on (timeout, a worker died, ...)."""


@dataclass
class WorkerHandle:
    name: str
    pid: int
    sock: socket.socket
    pidfd: int


class HostRun:
    """One execution of a scenario on the host kernel."""

    def __init__(self, files: dict[str, tuple[bytes, str]], nsockets: int) -> None:
        global _accessor
        # One CPU for the controller and every worker, for the run only: the
        # kernel's per-CPU LRU batches then drain where the workers fault.  A
        # /proc/PID/mem read by the controller queues the page for activation
        # in its CPU's batch, with a reference; on another CPU that reference
        # would make a later write fault copy a page the kernel otherwise reuses
        # (wp_can_reuse_anon_folio() drains only the local CPU).
        self.saved_affinity = os.sched_getaffinity(0)
        self.dir = tempfile.mkdtemp(prefix="pagewalk-oracle-", dir="/dev/shm")
        self.paths: dict[str, str] = {}  # scenario path -> host path
        #: scenario path -> the one open file every worker maps it through: the
        #: model's File is one struct file (vmas of two mmaps of it may merge,
        #: and its readahead state is shared), so the host's is too, opened
        #: before any worker is forked
        self.fds: dict[str, int] = {}
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.next_index = 0
        self.workers: dict[str, WorkerHandle] = {}
        self.all_pidfds: list[int] = []
        self.children: list[int] = []  # pids forked by the controller itself
        #: [start, end) ranges the scenario has mapped (any process): the arena
        self.ranges: list[tuple[int, int]] = []
        self._closed = False
        try:
            os.sched_setaffinity(0, {min(self.saved_affinity)})
            for i, (path, (content, mode)) in enumerate(files.items()):
                host_path = os.path.join(self.dir, f"f{i}")
                fd = os.open(host_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    view = memoryview(content)
                    while view:  # every byte written: every page is in the page cache
                        view = view[os.write(fd, view) :]
                finally:
                    os.close(fd)
                self.paths[path] = host_path
                self.fds[path] = os.open(host_path, os.O_RDONLY if mode == "r" else os.O_RDWR)
            self.by_host_path = {v: k for k, v in self.paths.items()}
            if _accessor is None:
                _accessor = L.Accessor()  # inherited by every worker
            self.pairs = [socket.socketpair() for _ in range(nsockets)]
        except BaseException:
            self.close()
            raise

    # -- processes -------------------------------------------------------------------
    def spawn(self, name: str) -> WorkerHandle:
        """A worker forked by the controller for a declared process."""
        index = self.next_index
        self.next_index += 1
        ctrl_ends = [a for a, _ in self.pairs]
        worker_ends = {i: b for i, (_, b) in enumerate(self.pairs)}
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the caller
            try:
                for s in ctrl_ends:
                    s.close()
                for fd in self.all_pidfds:
                    os.close(fd)
                worker_main(worker_ends, index, _accessor)
            finally:
                os._exit(1)
        self.children.append(pid)
        return self._greet(name, index, pid)

    def _greet(self, name: str, index: int, pid: int) -> WorkerHandle:
        pidfd = os.pidfd_open(pid)
        self.all_pidfds.append(pidfd)
        sock = self.pairs[index][0]
        sock.settimeout(STEP_TIMEOUT)
        try:
            hello = recv_msg(sock)
        except (TimeoutError, EOFError, OSError) as err:
            raise HostError(f"worker for {name!r} did not start: {err}") from None
        if hello.get("pid") != pid:
            raise HostError(f"worker for {name!r} greeted with {hello!r}")
        handle = WorkerHandle(name, pid, sock, pidfd)
        self.workers[name] = handle
        return handle

    def request(self, name: str, verb: str, **args) -> dict:
        w = self.workers[name]
        try:
            send_msg(w.sock, (verb, args))
            reply = recv_msg(w.sock)
        except TimeoutError:
            raise HostError(f"{name}: {verb} did not finish within {STEP_TIMEOUT} s") from None
        except (EOFError, OSError) as err:
            raise HostError(f"{name}: worker died during {verb}: {err}") from None
        if "error" in reply:
            raise HostError(f"{name}: {verb} failed in the worker:\n{reply['error']}")
        return reply

    def fork(self, parent: str, child: str) -> None:
        index = self.next_index
        self.next_index += 1
        reply = self.request(parent, "fork", child_index=index)
        self._greet(child, index, reply["child_pid"])

    def exit(self, name: str) -> None:
        w = self.workers.pop(name)
        with contextlib.suppress(TimeoutError, EOFError, OSError):
            send_msg(w.sock, ("exit", {}))
            recv_msg(w.sock)
        # wait until the process has exited (its mm is gone before it is a zombie)
        ready, _, _ = select.select([w.pidfd], [], [], STEP_TIMEOUT)
        if not ready:
            raise HostError(f"{name}: did not exit within {STEP_TIMEOUT} s")
        if w.pid in self.children:  # ours to reap (fork children are reaped by their parent)
            self.children.remove(w.pid)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(w.pid, 0)

    def pid(self, name: str) -> int:
        return self.workers[name].pid

    # -- the arena --------------------------------------------------------------------
    def add_range(self, start: int, end: int) -> None:
        self.ranges.append((start, end))

    def in_arena(self, start: int, end: int) -> bool:
        """[start, end) lies entirely inside ranges the scenario has mapped."""
        return start >= end or _clip(start, end, self.ranges) == [(start, end)]

    def foreign_overlap(self, name: str, start: int, end: int) -> str | None:
        """A mapping of process ``name`` in [start, end) that the scenario did
        not create (the interpreter's own memory), as a maps line, or None."""
        for vstart, vend, line in _maps(self.workers[name].pid):
            if vstart < end and start < vend:
                lo, hi = max(start, vstart), min(end, vend)
                if not self.in_arena(lo, hi):
                    return line
        return None

    # -- observation -------------------------------------------------------------------
    def snapshot(self, order: list[str]) -> Snapshot:
        snap = Snapshot()
        with (
            open("/proc/kpageflags", "rb", buffering=0) as kflags,
            open("/proc/kpagecount", "rb", buffering=0) as kcount,
        ):
            for name in order:
                w = self.workers.get(name)
                if w is not None:
                    snap.procs[name] = self._observe(w, kflags, kcount)
        for path, host_path in self.paths.items():
            with open(host_path, "rb") as f:
                snap.files[path] = f.read()
        return snap

    def _observe(self, w: WorkerHandle, kflags, kcount) -> ProcSnap:
        """pagemap, kpageflags and kpagecount of every present page of the
        scenario vmas; the bytes of each page that is not the zero page are
        read by the worker itself with plain loads (a get_user_pages read,
        /proc/PID/mem, would mark the page accessed and queue it in a per-CPU
        activation batch with a reference -- enough to turn a later COW reuse
        into a copy).  Pages of vmas without PROT_READ are not read."""
        ps = ProcSnap()
        vmas = []
        for start, end, line in _maps(w.pid):
            for a, b in _clip(start, end, self.ranges):
                vmas.append((a, b, line))
        if not vmas:
            return ps
        to_read: list[int] = []
        with open(f"/proc/{w.pid}/pagemap", "rb", buffering=0) as pm:
            for start, end, line in vmas:
                desc = self._vma_desc(start, end, line)
                ps.vmas.append(desc)
                for rstart, rend in _present_ranges(pm.fileno(), start, end):
                    n = (rend - rstart) >> 12
                    raw = os.pread(pm.fileno(), n * 8, (rstart >> 12) * 8)
                    for i, entry in enumerate(struct.unpack(f"<{len(raw) // 8}Q", raw)):
                        if entry & PM_PRESENT:
                            addr = rstart + (i << 12)
                            page = self._page(entry, kflags, kcount)
                            ps.pages[addr] = page
                            if not page.zero:
                                if desc.perms[0] == "r":
                                    to_read.append(addr)
                                else:
                                    page.unread = True
        for i in range(0, len(to_read), 256):
            chunk = to_read[i : i + 256]
            reply = self.request(w.name, "peek", addrs=chunk)
            for addr, data in zip(chunk, reply["pages"], strict=True):
                if data is None:
                    ps.pages[addr].unread = True
                else:
                    ps.pages[addr].content = data
        return ps

    @staticmethod
    def _page(entry: int, kflags, kcount) -> PageObs:
        pfn = entry & PFN_MASK
        flags = struct.unpack("<Q", os.pread(kflags.fileno(), 8, pfn * 8))[0]
        count = struct.unpack("<Q", os.pread(kcount.fileno(), 8, pfn * 8))[0]
        zero = bool(flags & KPF_ZERO_PAGE)
        anon = bool(flags & KPF_ANON)
        return PageObs(
            zero,
            pfn,
            anon,
            count,
            bool(entry & PM_EXCL),
            None,
            anon_exclusive=anon and bool(flags & KPF_MAPPEDTODISK),
        )

    def _vma_desc(self, start: int, end: int, line: str) -> VmaDesc:
        parts = line.split(None, 5)
        perms = parts[1]
        offset = int(parts[2], 16)
        path = parts[5].strip() if len(parts) > 5 else ""
        if path in self.by_host_path:
            name = self.by_host_path[path]
            # a clipped vma starts later in the file
            vstart = int(parts[0].split("-")[0], 16)
            return VmaDesc(start, end, perms, offset + (start - vstart), name)
        if path.startswith("/dev/zero"):
            return VmaDesc(start, end, perms, None, "[shmem]")
        return VmaDesc(start, end, perms, None, path)

    # -- the end -----------------------------------------------------------------------
    def close(self) -> None:
        """Kill every worker still alive, reap what is ours, remove the files."""
        if self._closed:
            return
        self._closed = True
        for fd in self.all_pidfds:
            with contextlib.suppress(OSError):  # ProcessLookupError: it has exited
                signal.pidfd_send_signal(fd, signal.SIGKILL)
        for a, b in self.pairs:
            a.close()
            b.close()
        for fd in self.all_pidfds:
            with contextlib.suppress(OSError):
                select.select([fd], [], [], STEP_TIMEOUT)
            os.close(fd)
        self.all_pidfds.clear()
        for pid in self.children:  # reap ours (fork children are reaped by their parents)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.children.clear()
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()
        shutil.rmtree(self.dir, ignore_errors=True)
        os.sched_setaffinity(0, self.saved_affinity)


# PAGEMAP_SCAN (Linux 6.7+): the present ranges of a huge, sparse vma without
# reading a pagemap entry per page.  Falls back to the whole range.
PAGEMAP_SCAN = 0xC0606610  # _IOWR('f', 16, struct pm_scan_arg)
PAGE_IS_PRESENT = 1 << 3
_SCAN_VEC = 512


class _PmScanArg(ctypes.Structure):
    _fields_ = [
        (n, ctypes.c_uint64)
        for n in (
            "size",
            "flags",
            "start",
            "end",
            "walk_end",
            "vec",
            "vec_len",
            "max_pages",
            "category_inverted",
            "category_mask",
            "category_anyof_mask",
            "return_mask",
        )
    ]


_regions = (ctypes.c_uint64 * (3 * _SCAN_VEC))()
_scan_ok = [True]


def _present_ranges(fd: int, start: int, end: int) -> list[tuple[int, int]]:
    if not _scan_ok[0] or end - start <= 64 * 4096:
        return [(start, end)]
    out: list[tuple[int, int]] = []
    pos = start
    while pos < end:
        arg = _PmScanArg(
            ctypes.sizeof(_PmScanArg),
            0,
            pos,
            end,
            0,
            ctypes.addressof(_regions),
            _SCAN_VEC,
            0,
            0,
            PAGE_IS_PRESENT,
            0,
            PAGE_IS_PRESENT,
        )
        n = _libc_ioctl(fd, PAGEMAP_SCAN, ctypes.byref(arg))
        if n < 0:
            _scan_ok[0] = False
            return [(start, end)]
        for i in range(n):
            out.append((_regions[3 * i], _regions[3 * i + 1]))
        if arg.walk_end <= pos:
            break
        pos = arg.walk_end
    return out


def _libc_ioctl(fd: int, req: int, argp) -> int:
    return L.libc.ioctl(fd, ctypes.c_ulong(req), argp)


def _maps(pid: int) -> list[tuple[int, int, str]]:
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            rng = line.split(None, 1)[0]
            a, b = rng.split("-")
            out.append((int(a, 16), int(b, 16), line.rstrip("\n")))
    return out


def _clip(start: int, end: int, ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of [start, end) inside the union of ``ranges``."""
    pieces = []
    for a, b in sorted(ranges):
        lo, hi = max(start, a), min(end, b)
        if lo < hi:
            if pieces and pieces[-1][1] >= lo:
                pieces[-1] = (pieces[-1][0], max(pieces[-1][1], hi))
            else:
                pieces.append((lo, hi))
    return pieces
