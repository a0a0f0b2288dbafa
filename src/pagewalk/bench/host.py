"""The host kernel's side of ``pagewalk bench``: what the real Linux kernel
this process runs on spends per 4 KiB page, measured with ``ctypes`` and the
standard library only.

Method (after ``shared/reference/host-kernel-observables.md`` section 8):

* Every repetition maps a fresh private anonymous region of N pages
  (``mmap`` + ``MADV_NOHUGEPAGE``, so transparent huge pages cannot turn 512
  faults into one) and unmaps it afterwards.
* Pages are touched at C speed, one byte per page, without a compiler: a
  ``memoryview`` of the region sliced with step 4096 (``region[::4096]``) is a
  strided view whose slice assignment (store) or copy into a buffer (load) is
  a C loop in CPython's ``memoryobject.c``.  One Python statement touches all N
  pages.
* Fault figures are **net**: the same loop is run a second time over the now
  mapped pages (no fault) and its time is subtracted, per repetition.
* ``fork`` is timed in the parent from before ``fork()`` to its return (the
  child ``_exit``\\ s at once and is reaped with ``waitpid``, untimed), net of
  a fork of the same process with the region mapped but untouched.
* ``cow_fault`` runs in a forked child, which writes one byte to every page,
  then runs the same loop again over its now private pages, and reports both
  times (and its minor-fault count) to the parent through a pipe.
* ``gup`` is ``process_vm_readv`` of one byte per page from this process
  (one remote iovec per page, 1024 per call: one GUP pin/unpin per page), net
  of the same calls with zero-length remote iovecs (syscall entry, iovec
  import, mm lookup).
* ``mem_read`` is ``preadv`` of ``/proc/self/mem`` over the populated pages,
  1 MiB per call into a pre-faulted buffer: one GUP and two page copies per
  page (``mem_rw``'s bounce page).  Nothing subtracted.
* ``dontneed`` / ``munmap``: one system call over the populated range.

Where the host cannot be used (not Linux, no ``/proc/self/mem``, a system
call refused) :class:`HostUnavailable` says why; the caller reports model
figures only.
"""

from __future__ import annotations

import ctypes
import os
import resource
import struct
import sys
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import hostlibc
from ..hostlibc import MADV_NOHUGEPAGE
from ..kernel.constants import (
    EINVAL,
    MADV_DONTNEED,
    MAP_ANONYMOUS,
    MAP_NORESERVE,
    MAP_PRIVATE,
    PROT_READ,
    PROT_WRITE,
)
from ..kernel.constants import PAGE_SIZE as PAGE

PROT_READ_WRITE = PROT_READ | PROT_WRITE
IOV_MAX = 1024
#: /proc/self/mem and the model's mem_read are read 1 MiB (256 pages) at a time.
MEM_CHUNK_PAGES = 256

_now = time.perf_counter_ns


class HostUnavailable(Exception):
    """The host kernel cannot be measured here; the message says why."""


def _minflt() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


class _iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class Libc:
    """The handful of libc calls the measurements need, errno-checked."""

    def __init__(self) -> None:
        if not sys.platform.startswith("linux"):
            raise HostUnavailable(f"not Linux (sys.platform is {sys.platform!r})")
        if not os.path.exists("/proc/self/mem"):
            raise HostUnavailable("/proc/self/mem does not exist")
        if hostlibc.LIBC_PROBLEM:
            raise HostUnavailable(hostlibc.LIBC_PROBLEM)
        self.lib = hostlibc.libc

    @staticmethod
    def _fail(call: str) -> HostUnavailable:
        errno = ctypes.get_errno()
        return HostUnavailable(f"{call} failed: {os.strerror(errno)} (errno {errno})")

    def mmap(self, size: int) -> int:
        addr = self.lib.mmap(
            None, size, PROT_READ_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0
        )
        if addr is None or addr == hostlibc.MAP_FAILED:
            raise self._fail(f"mmap({size})")
        # Page-granular memory: no THP for this range.  EINVAL means a kernel
        # without THP, which is page-granular anyway.
        if self.lib.madvise(addr, size, MADV_NOHUGEPAGE) and ctypes.get_errno() != EINVAL:
            err = self._fail("madvise(MADV_NOHUGEPAGE)")
            self.lib.munmap(addr, size)
            raise err
        return addr

    def munmap(self, addr: int, size: int) -> None:
        if self.lib.munmap(addr, size):
            raise self._fail("munmap")

    def madvise(self, addr: int, size: int, advice: int) -> None:
        if self.lib.madvise(addr, size, advice):
            raise self._fail(f"madvise({advice})")


class Region:
    """A fresh private anonymous mapping of ``npages`` and a strided view of
    its first byte of each page (``pages``: element i is page i's byte 0)."""

    def __init__(self, libc: Libc, npages: int) -> None:
        self.libc = libc
        self.npages = npages
        self.size = npages * PAGE
        self.addr = libc.mmap(self.size)
        self._whole = memoryview((ctypes.c_ubyte * self.size).from_address(self.addr)).cast("B")
        self.pages = self._whole[::PAGE]

    def release(self) -> None:
        """Drop the views (they must not outlive the mapping)."""
        if self.pages is not None:
            self.pages.release()
            self._whole.release()
            self.pages = None

    def unmap(self) -> None:
        self.release()
        if self.addr:
            self.libc.munmap(self.addr, self.size)
            self.addr = 0


@dataclass
class HostRun:
    """One repetition: the figure (ns per page) and what it was computed from."""

    ns_per_page: float
    detail: dict[str, float] = field(default_factory=dict)


class Host:
    """Measures the host kernel over ``npages`` pages; each ``<name>()`` method
    is one repetition on fresh memory and returns a :class:`HostRun`."""

    def __init__(self, npages: int) -> None:
        self.libc = Libc()
        self.n = npages
        self.ones = b"\x01" * npages
        self.twos = b"\x02" * npages
        self.sink = memoryview(bytearray(npages))
        self.sink[:] = self.ones  # pre-faulted: loads land in touched memory
        self.pid = os.getpid()

    # -- helpers (untimed) -------------------------------------------------------
    def _populated(self) -> Region:
        region = Region(self.libc, self.n)
        region.pages[:] = self.ones
        return region

    def warm_up(self) -> None:
        """Touch and free N pages once, untimed: the first touch of guest memory
        in a VM pays the hypervisor too."""
        self._populated().unmap()

    def _check_faults(self, faults: int, what: str) -> float:
        per_page = faults / self.n
        if per_page < 0.9:
            raise HostUnavailable(
                f"{what}: {faults} minor faults for {self.n} pages "
                "(huge pages in use?); figure not page-granular"
            )
        return per_page

    # -- the operations ------------------------------------------------------------
    def write_fault(self) -> HostRun:
        region = Region(self.libc, self.n)
        try:
            pages, ones = region.pages, self.ones
            f0 = _minflt()
            t0 = _now()
            pages[:] = ones
            t1 = _now()
            f1 = _minflt()
            pages[:] = ones
            t2 = _now()
        finally:
            region.unmap()
        gross, loop = t1 - t0, t2 - t1
        return HostRun(
            (gross - loop) / self.n,
            {
                "gross_ns_per_page": gross / self.n,
                "loop_ns_per_page": loop / self.n,
                "faults_per_page": self._check_faults(f1 - f0, "write_fault"),
            },
        )

    def read_fault(self) -> HostRun:
        region = Region(self.libc, self.n)
        try:
            pages, sink = region.pages, self.sink
            f0 = _minflt()
            t0 = _now()
            sink[:] = pages
            t1 = _now()
            f1 = _minflt()
            sink[:] = pages
            t2 = _now()
            if sink[0] or sink[-1]:
                raise HostUnavailable("read_fault: untouched anonymous memory did not read 0")
        finally:
            region.unmap()
            self.sink[:] = self.ones
        gross, loop = t1 - t0, t2 - t1
        return HostRun(
            (gross - loop) / self.n,
            {
                "gross_ns_per_page": gross / self.n,
                "loop_ns_per_page": loop / self.n,
                "faults_per_page": self._check_faults(f1 - f0, "read_fault"),
            },
        )

    def cow_fault(self) -> HostRun:
        region = self._populated()
        try:
            rfd, wfd = os.pipe()
            pages, ones, twos = region.pages, self.ones, self.twos
            pid = os.fork()
            if pid == 0:  # the child: write every page, report, _exit
                code = 1
                try:
                    os.close(rfd)
                    # warm-up: fault in the interpreter state the timed lines use
                    # (after fork() the whole heap is write-protected)
                    _minflt(), _now(), pages[:0]
                    f0 = _minflt()
                    t0 = _now()
                    pages[:] = twos
                    t1 = _now()
                    f1 = _minflt()
                    pages[:] = ones
                    t2 = _now()
                    os.write(wfd, struct.pack("<qqq", t1 - t0, t2 - t1, f1 - f0))
                    code = 0
                finally:
                    os._exit(code)
            os.close(wfd)
            try:
                msg = b""
                while len(msg) < 24:
                    chunk = os.read(rfd, 24 - len(msg))
                    if not chunk:
                        break
                    msg += chunk
            finally:
                os.close(rfd)
                os.waitpid(pid, 0)
            if len(msg) != 24:
                raise HostUnavailable("cow_fault: the forked child did not report")
            gross, loop, faults = struct.unpack("<qqq", msg)
            if pages[0] != 1 or pages[-1] != 1:
                raise HostUnavailable("cow_fault: the child's writes reached the parent")
        finally:
            region.unmap()
        return HostRun(
            (gross - loop) / self.n,
            {
                "gross_ns_per_page": gross / self.n,
                "loop_ns_per_page": loop / self.n,
                "faults_per_page": self._check_faults(faults, "cow_fault"),
            },
        )

    @staticmethod
    def _fork_ns() -> int:
        t0 = _now()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        t1 = _now()
        os.waitpid(pid, 0)
        return t1 - t0

    def fork(self) -> HostRun:
        region = Region(self.libc, self.n)
        try:
            base = sorted(self._fork_ns() for _ in range(3))[1]  # mapped, untouched
            region.pages[:] = self.ones
            gross = self._fork_ns()
        finally:
            region.unmap()
        return HostRun((gross - base) / self.n, {"fork_ns": gross, "baseline_fork_ns": base})

    def dontneed(self) -> HostRun:
        region = self._populated()
        try:
            t0 = _now()
            self.libc.madvise(region.addr, region.size, MADV_DONTNEED)
            t1 = _now()
            if region.pages[0] or region.pages[-1]:
                raise HostUnavailable("dontneed: the pages were not dropped")
        finally:
            region.unmap()
        return HostRun((t1 - t0) / self.n)

    def munmap(self) -> HostRun:
        region = self._populated()
        region.release()
        t0 = _now()
        self.libc.munmap(region.addr, region.size)
        t1 = _now()
        region.addr = 0
        return HostRun((t1 - t0) / self.n)

    def _readv_calls(self, remote: array) -> Callable[[], int]:
        """The process_vm_readv calls reading the iovecs in ``remote`` (pairs
        base, len), 1024 per call, into ``self.sink``; returns the bytes read."""
        readv, pid, n = self.libc.lib.process_vm_readv, self.pid, self.n
        sink = (ctypes.c_char * n).from_buffer(self.sink.obj)
        base = ctypes.addressof(sink)
        remote_base = remote.buffer_info()[0]
        calls = []
        for i in range(0, n, IOV_MAX):
            cnt = min(IOV_MAX, n - i)
            local = _iovec(base + i, cnt)
            calls.append((ctypes.byref(local), local, remote_base + 16 * i, cnt))

        def run() -> int:
            total = 0
            for local_ref, _keep, rptr, cnt in calls:
                got = readv(pid, local_ref, 1, rptr, cnt, 0)
                if got < 0:
                    raise Libc._fail("process_vm_readv")
                total += got
            return total

        return run

    def gup(self) -> HostRun:
        region = self._populated()
        try:
            n = self.n
            remote = array("Q", bytes(16 * n))
            remote[0::2] = array("Q", range(region.addr, region.addr + region.size, PAGE))
            remote[1::2] = array("Q", [1]) * n
            empty = array("Q", remote)
            empty[1::2] = array("Q", [0]) * n
            one_byte, zero_len = self._readv_calls(remote), self._readv_calls(empty)
            self.sink[:] = bytes(n)
            zero_len()  # warm-up: the call path, not the pages
            t0 = _now()
            got = one_byte()
            t1 = _now()
            got0 = zero_len()
            t2 = _now()
            if got != n or got0 != 0 or self.sink[0] != 1 or self.sink[-1] != 1:
                raise HostUnavailable(f"gup: process_vm_readv read {got} bytes, not {n}")
        finally:
            self.sink[:] = self.ones
            region.unmap()
        gross, base = t1 - t0, t2 - t1
        return HostRun(
            (gross - base) / n,
            {"gross_ns_per_page": gross / n, "zero_length_ns_per_page": base / n},
        )

    def mem_read(self) -> HostRun:
        region = self._populated()
        try:
            chunk = min(self.n, MEM_CHUNK_PAGES) * PAGE
            buf = bytearray(b"\xff" * chunk)  # pre-faulted
            bufs = [buf]
            try:
                fd = os.open("/proc/self/mem", os.O_RDONLY)
            except OSError as err:
                raise HostUnavailable(f"cannot open /proc/self/mem: {err.strerror}") from None
            try:
                offsets = range(region.addr, region.addr + region.size, chunk)
                preadv = os.preadv
                t0 = _now()
                got = [preadv(fd, bufs, off) for off in offsets]
                t1 = _now()
            except OSError as err:
                raise HostUnavailable(f"pread of /proc/self/mem: {err.strerror}") from None
            finally:
                os.close(fd)
            if sum(got) != region.size or buf[0] != 1 or buf[-PAGE] != 1:
                raise HostUnavailable(f"mem_read: read {sum(got)} bytes, not {region.size}")
        finally:
            region.unmap()
        return HostRun((t1 - t0) / self.n)


OPERATIONS = (
    "write_fault",
    "read_fault",
    "cow_fault",
    "fork",
    "dontneed",
    "munmap",
    "gup",
    "mem_read",
)

#: What each kernel figure is, for the report.
METHOD = {
    "write_fault": "1-byte store per page of an untouched anon mapping (C-speed strided "
    "memoryview store), net of the same loop over the mapped pages",
    "read_fault": "1-byte load per page of an untouched anon mapping (maps the zero page), "
    "net of the same loop after the faults",
    "cow_fault": "forked child stores 1 byte per populated page (reported via a pipe), "
    "net of the same loop over its now private pages",
    "fork": "fork() return in the parent with N populated pages, minus fork() with the "
    "range mapped but untouched, / N (child _exits, waitpid untimed)",
    "dontneed": "madvise(MADV_DONTNEED) over N populated pages",
    "munmap": "munmap over N populated pages",
    "gup": "process_vm_readv, 1 byte per page (1 iovec per page, 1024 per call), net of the "
    "same calls with zero-length iovecs",
    "mem_read": "preadv of /proc/self/mem over N populated pages, 1 MiB per call "
    "(GUP + 2 page copies per page), gross",
}
