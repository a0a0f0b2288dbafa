"""The host's libc through ctypes: one binding, shared by the oracle's
workers (``pagewalk.oracle.libc``) and the bench's kernel side
(``pagewalk.bench.host``).

Only the standard library.  Importing this module never fails: where libc
cannot be bound (not Linux, a function missing) :data:`LIBC_PROBLEM` says why
and :data:`libc` is None.
"""

from __future__ import annotations

import ctypes
import errno as _errno
from typing import Any

# --- mman.h / prctl.h, x86-64: what the model's 2.6.15 constants do not have ---------
MAP_FIXED_NOREPLACE = 0x100000  # v4.17
MAP_FAILED = ctypes.c_void_p(-1).value
MADV_NOHUGEPAGE = 15

PR_SET_PDEATHSIG = 1
PR_SET_THP_DISABLE = 41

#: Why libc could not be bound here, or None.
LIBC_PROBLEM: str | None = None
#: The process's libc (``dlopen(NULL)``), errno captured; None if LIBC_PROBLEM.
libc: Any = None


def _bind() -> ctypes.CDLL:
    lib = ctypes.CDLL(None, use_errno=True)
    c_int, c_long, c_size_t, c_ulong, c_void_p = (
        ctypes.c_int,
        ctypes.c_long,
        ctypes.c_size_t,
        ctypes.c_ulong,
        ctypes.c_void_p,
    )
    lib.mmap.restype = c_void_p
    lib.mmap.argtypes = [c_void_p, c_size_t, c_int, c_int, c_int, c_long]
    for name in ("munmap", "mprotect", "madvise", "mlock", "munlock"):
        getattr(lib, name).restype = c_int
    lib.munmap.argtypes = [c_void_p, c_size_t]
    lib.mprotect.argtypes = [c_void_p, c_size_t, c_int]
    lib.madvise.argtypes = [c_void_p, c_size_t, c_int]
    lib.mlock.argtypes = [c_void_p, c_size_t]
    lib.munlock.argtypes = [c_void_p, c_size_t]
    lib.prctl.restype = c_int
    lib.prctl.argtypes = [c_int, c_ulong, c_ulong, c_ulong, c_ulong]
    lib.syscall.restype = c_long
    lib.getrusage.argtypes = [c_int, c_void_p]
    lib.process_vm_readv.restype = ctypes.c_ssize_t
    lib.process_vm_readv.argtypes = [c_int, c_void_p, c_ulong, c_void_p, c_ulong, c_ulong]
    return lib


try:
    libc = _bind()
except (OSError, TypeError) as err:  # TypeError: ctypes.CDLL(None) on Windows
    LIBC_PROBLEM = f"cannot load libc: {err}"
except AttributeError as err:
    LIBC_PROBLEM = f"libc lacks a needed function: {err}"


def errno_name(err: int) -> str:
    return _errno.errorcode.get(err, f"E{err}")


def call(fn, *args) -> tuple[int, str | None]:
    """Call a libc function returning 0/-1: (return value, errno name or None)."""
    ctypes.set_errno(0)
    ret = fn(*args)
    if ret == -1:
        return -1, errno_name(ctypes.get_errno())
    return ret, None


def mmap(
    addr: int, length: int, prot: int, flags: int, fd: int, offset: int
) -> tuple[int | None, str | None]:
    ctypes.set_errno(0)
    ret = libc.mmap(addr or None, length, prot, flags, fd, offset)
    if ret is None or ret == MAP_FAILED:
        return None, errno_name(ctypes.get_errno())
    return ret, None


def prctl(option: int, arg: int) -> int:
    return libc.prctl(option, arg, 0, 0, 0)
