"""The host side's system interface: libc through ctypes, a machine-code
access stub that survives SIGSEGV/SIGBUS, and the perf page-fault log.

Everything here runs in the worker processes (``worker.py``) except the
constants and :func:`host_problem`, which the controller uses.  The libc
binding itself (``libc``, ``call``, ``mmap``, ``prctl``) is
:mod:`pagewalk.hostlibc`, re-exported here.  Only the standard library and
ctypes; x86-64 Linux only.

Why a machine-code stub: a user load or store that the kernel answers with
SIGSEGV or SIGBUS cannot be caught in Python (the faulting instruction would
be restarted for ever), and doing the access in a forked helper would change
the very state under test (fork write-protects and un-AnonExclusive's every
anonymous page of the worker).  So ``read``/``write`` operations run a
15-instruction copy loop (:data:`_COPY_CODE`) under a signal handler, also
machine code (:data:`_HANDLER_CODE`), that is installed with the raw
``rt_sigaction`` only for the duration of the access.  The handler stores the
signal number and resumes the loop at its ``ret``: the access stops where the
CPU stopped it, with the number of bytes done in ``rax``, and the process
lives on.  A fault anywhere else while the handler is installed ends the
process (exit status 139) instead of jumping somewhere wrong.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct

from ..hostlibc import (  # noqa: F401 - re-exported for the oracle
    LIBC_PROBLEM,
    MAP_FIXED_NOREPLACE,
    PR_SET_PDEATHSIG,
    PR_SET_THP_DISABLE,
    call,
    errno_name,
    libc,
    mmap,
    prctl,
)
from ..kernel.constants import (
    MAP_ANONYMOUS,
    MAP_PRIVATE,
    MAP_SHARED,
    PAGE_SIZE,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
)
from ..kernel.kernel import ADVICE, MAP_FLAGS, PROTS  # noqa: F401

# The model speaks the same x86-64 ABI: its names and values serve the host too.
MADV = ADVICE

SYS_rt_sigaction = 13
SYS_perf_event_open = 298
SA_SIGINFO = 0x4
SA_RESTORER = 0x04000000
SIGBUS, SIGSEGV = 7, 11
SIGNAL_NAMES = {SIGBUS: "SIGBUS", SIGSEGV: "SIGSEGV"}


# --- the access stub ---------------------------------------------------------------
#   long copy(char *dst /*rdi*/, const char *src /*rsi*/, long n /*rdx*/, long *sig /*rcx*/)
_COPY_CODE = bytes.fromhex(
    "4c8d0d14000000"  # lea r9, [rip+done]   (r9 = resume address for the handler)
    "31c0"  # xor eax, eax
    "4839d0"  # loop: cmp rax, rdx
    "730d"  # jae done
    "448a0406"  # mov r8b, [rsi+rax]
    "44880407"  # mov [rdi+rax], r8b
    "48ffc0"  # inc rax
    "ebee"  # jmp loop
    "c3"  # done: ret
)
_STUB_LEN = len(_COPY_CODE)
#   void handler(int sig /*rdi*/, siginfo_t * /*rsi*/, ucontext_t *uc /*rdx*/)
#   uc->uc_mcontext.gregs starts at offset 40: R9 is gregs[1] (+0x30), RCX gregs[14]
#   (+0x98), RIP gregs[16] (+0xa8).
_HANDLER_HEAD = bytes.fromhex(
    "488b82a8000000"  # mov rax, [rdx+0xa8]        faulting rip
    "49ba"  # mov r10, imm64 (stub start, patched in)
)
_RESTORER_CODE = bytes.fromhex("b80f0000000f05")  # mov eax, 15 (rt_sigreturn); syscall


def _handler_code(stub: int) -> bytes:
    """The handler, with the stub's address patched in.  ``bad:`` is
    exit_group(139): a fault outside the stub must not be resumed."""
    mid = bytes.fromhex(
        "4c39d0"  # cmp rax, r10
        "721f"  # jb bad
        f"4983c2{_STUB_LEN:02x}"  # add r10, stub length
        "4c39d0"  # cmp rax, r10
        "7316"  # jae bad
        "488b8298000000"  # mov rax, [rdx+0x98]
        "488938"  # mov [rax], rdi
        "488b4230"  # mov rax, [rdx+0x30]
        "488982a8000000"  # mov [rdx+0xa8], rax
        "c3"  # ret
        "b8e7000000"  # bad: mov eax, 231 (exit_group)
        "bf8b000000"  # mov edi, 139
        "0f05"  # syscall
    )
    return _HANDLER_HEAD + struct.pack("<Q", stub) + mid


class _KSigaction(ctypes.Structure):
    """struct sigaction as the kernel's rt_sigaction takes it (x86-64)."""

    _fields_ = [
        ("handler", ctypes.c_void_p),
        ("flags", ctypes.c_ulong),
        ("restorer", ctypes.c_void_p),
        ("mask", ctypes.c_ulong),
    ]


class Accessor:
    """Real user-mode loads and stores that report SIGSEGV/SIGBUS instead of
    dying.  Built once per process image (its code page is inherited by fork)."""

    def __init__(self) -> None:
        code = _COPY_CODE
        page, err = mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        if page is None:
            raise OSError(f"mmap for the access stub failed: {err}")
        handler_at = page + 64
        restorer_at = page + 256
        handler = _handler_code(page)
        # sanity: the jumps above are computed for these exact lengths
        assert handler.index(bytes.fromhex("b8e7000000")) == 53, "handler layout"
        ctypes.memmove(page, code, len(code))
        ctypes.memmove(handler_at, handler, len(handler))
        ctypes.memmove(restorer_at, _RESTORER_CODE, len(_RESTORER_CODE))
        ret, err = call(libc.mprotect, page, PAGE_SIZE, PROT_READ | PROT_EXEC)
        if ret:
            raise OSError(f"mprotect of the access stub failed: {err}")
        self._copy = ctypes.CFUNCTYPE(
            ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long, ctypes.c_void_p
        )(page)
        self._act = _KSigaction(handler_at, SA_SIGINFO | SA_RESTORER, restorer_at, 0)
        self._old = {SIGSEGV: _KSigaction(), SIGBUS: _KSigaction()}
        self._sig = ctypes.c_long(0)
        self.buf = ctypes.create_string_buffer(1 << 16)

    def _install(self) -> None:
        for sig, old in self._old.items():
            if (
                libc.syscall(SYS_rt_sigaction, sig, ctypes.byref(self._act), ctypes.byref(old), 8)
                != 0
            ):
                raise OSError("rt_sigaction failed")

    def _restore(self) -> None:
        for sig, old in self._old.items():
            libc.syscall(SYS_rt_sigaction, sig, ctypes.byref(old), None, 8)

    def _run(self, dst: int, src: int, n: int) -> tuple[int, str | None]:
        self._sig.value = 0
        self._install()
        try:
            done = self._copy(dst, src, n, ctypes.addressof(self._sig))
        finally:
            self._restore()
        return done, SIGNAL_NAMES.get(self._sig.value) if self._sig.value else None

    def ensure(self, n: int) -> None:
        if len(self.buf) < n:
            self.buf = ctypes.create_string_buffer(n)

    def load(self, addr: int, n: int) -> tuple[bytes, str | None]:
        """Read n bytes at addr: (bytes read before any signal, signal)."""
        self.ensure(n)
        done, sig = self._run(ctypes.addressof(self.buf), addr, n)
        return self.buf.raw[:done], sig

    def store(self, addr: int, data: bytes) -> tuple[int, str | None]:
        """Write data at addr: (bytes written before any signal, signal)."""
        self.ensure(len(data))
        ctypes.memmove(self.buf, data, len(data))
        return self._run(addr, ctypes.addressof(self.buf), len(data))


# --- perf_event_open: the CPU page-fault log ----------------------------------------
PERF_TYPE_SOFTWARE = 1
PERF_COUNT_SW_PAGE_FAULTS = 2
PERF_SAMPLE_ADDR = 1 << 3
PERF_RECORD_SAMPLE = 9
PERF_RECORD_LOST = 2
_HDR = struct.Struct("<IHH")
_U64 = struct.Struct("<Q")
_RING_PAGES = 16  # data pages (a power of two) after the control page


class _PerfAttr(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("size", ctypes.c_uint32),
        ("config", ctypes.c_uint64),
        ("sample_period", ctypes.c_uint64),
        ("sample_type", ctypes.c_uint64),
        ("read_format", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
        ("wakeup_events", ctypes.c_uint32),
        ("bp_type", ctypes.c_uint32),
        ("config1", ctypes.c_uint64),
        ("config2", ctypes.c_uint64),
        ("branch_sample_type", ctypes.c_uint64),
        ("sample_regs_user", ctypes.c_uint64),
        ("sample_stack_user", ctypes.c_uint32),
        ("clockid", ctypes.c_int32),
        ("sample_regs_intr", ctypes.c_uint64),
        ("aux_watermark", ctypes.c_uint32),
        ("sample_max_stack", ctypes.c_uint16),
        ("reserved", ctypes.c_uint16),
    ]


class FaultLog:
    """Every page fault exception of this thread, with its address, in order
    (software event PERF_COUNT_SW_PAGE_FAULTS, sample_period 1, kernel-mode
    faults on user addresses included).  GUP faults have no registers and give
    no sample: they are min_flt + maj_flt minus the samples."""

    def __init__(self) -> None:
        attr = _PerfAttr()
        attr.type = PERF_TYPE_SOFTWARE
        attr.size = ctypes.sizeof(_PerfAttr)
        attr.config = PERF_COUNT_SW_PAGE_FAULTS
        attr.sample_period = 1
        attr.sample_type = PERF_SAMPLE_ADDR
        attr.flags = 0  # enabled, user and kernel, no inherit
        fd = libc.syscall(SYS_perf_event_open, ctypes.byref(attr), 0, -1, -1, 0)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "perf_event_open failed")
        self.fd = fd
        size = (1 + _RING_PAGES) * PAGE_SIZE
        base, err = mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        if base is None:
            os.close(fd)
            raise OSError(f"mmap of the perf ring failed: {err}")
        self.base = base
        self.size = size
        self.data = base + PAGE_SIZE
        self.data_size = _RING_PAGES * PAGE_SIZE
        for off in range(0, size, PAGE_SIZE):  # pre-fault the ring (no phantom faults later)
            ctypes.c_uint8.from_address(base + off).value  # noqa: B018
        self._raw = bytearray(self.data_size)
        self._raw_addr = ctypes.addressof((ctypes.c_char * self.data_size).from_buffer(self._raw))
        self._head = ctypes.c_uint64.from_address(base + 1024)
        self._tail = ctypes.c_uint64.from_address(base + 1032)
        self.lost = 0  # fault events perf reported lost (PERF_RECORD_LOST)

    def drain(self) -> list[int]:
        """Addresses of the samples since the last drain (and frees the ring).
        Works in a buffer allocated once: no fresh memory, no fault of its own."""
        head = self._head.value
        tail = self._tail.value
        out: list[int] = []
        if head != tail:
            raw = self._raw
            ctypes.memmove(self._raw_addr, self.data, self.data_size)
            size_total = self.data_size
            pos = tail
            while pos < head:
                off = pos % size_total
                rtype, _misc, size = _HDR.unpack_from(self._record(raw, off, 8))
                if size == 0:
                    break
                if rtype == PERF_RECORD_SAMPLE:
                    out.append(_U64.unpack_from(self._record(raw, (pos + 8) % size_total, 8))[0])
                elif rtype == PERF_RECORD_LOST:  # {header, u64 id, u64 lost}
                    self.lost += _U64.unpack_from(self._record(raw, (pos + 16) % size_total, 8))[0]
                pos += size
            self._tail.value = head
        return out

    def _record(self, raw: bytearray, off: int, n: int):
        if off + n <= self.data_size:
            return memoryview(raw)[off : off + n]
        return bytes(raw[off:]) + bytes(raw[: n - (self.data_size - off)])

    def count(self, buf: bytearray) -> None:
        """The event's count (every fault exception so far) into ``buf``, by read(2)."""
        os.readv(self.fd, [buf])

    def close(self) -> None:
        libc.munmap(self.base, self.size)
        os.close(self.fd)


class LostSamples(RuntimeError):
    """perf dropped fault samples: the step's CPU faults are unknown, so the
    host run cannot be compared (a host error, never a mismatch)."""


class Rusage(ctypes.Structure):
    _fields_ = [
        ("utime", ctypes.c_long * 2),
        ("stime", ctypes.c_long * 2),
        ("maxrss", ctypes.c_long),
        ("ixrss", ctypes.c_long),
        ("idrss", ctypes.c_long),
        ("isrss", ctypes.c_long),
        ("minflt", ctypes.c_long),
        ("majflt", ctypes.c_long),
        ("nswap", ctypes.c_long),
        ("inblock", ctypes.c_long),
        ("oublock", ctypes.c_long),
        ("msgsnd", ctypes.c_long),
        ("msgrcv", ctypes.c_long),
        ("nsignals", ctypes.c_long),
        ("nvcsw", ctypes.c_long),
        ("nivcsw", ctypes.c_long),
    ]


RUSAGE_THREAD = 1


# --- can this host run the oracle? ---------------------------------------------------
def host_problem() -> str | None:
    """None if the oracle can run here, else why not."""
    if LIBC_PROBLEM:
        return LIBC_PROBLEM
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        return f"needs Linux on x86-64 (this is {platform.system()} {platform.machine()})"
    if os.geteuid() != 0:
        return "needs root (PFNs in /proc/PID/pagemap, /proc/kpageflags, /proc/kpagecount)"
    try:
        with (
            open("/proc/self/pagemap", "rb") as f,
            open("/proc/kpagecount", "rb") as c,
            open("/proc/kpageflags", "rb"),
        ):
            probe = ctypes.create_string_buffer(b"x", 16)
            f.seek((ctypes.addressof(probe) >> 12) * 8)
            entry = struct.unpack("<Q", f.read(8))[0]
            pfn = entry & ((1 << 55) - 1)
            if not entry >> 63 or pfn == 0:
                return "PFNs are not visible in /proc/self/pagemap"
            c.seek(pfn * 8)
            c.read(8)
    except OSError as err:
        return f"cannot read pagemap/kpagecount/kpageflags: {err}"
    if not hasattr(os, "pidfd_open"):
        return "needs os.pidfd_open (Linux 5.3+)"
    if not os.path.isdir("/dev/shm") or not os.access("/dev/shm", os.W_OK):
        return "no writable tmpfs at /dev/shm"
    try:
        fl = FaultLog()
        fl.close()
    except OSError as err:
        return f"perf_event_open (page-fault log) unavailable: {err}"
    return None
