"""A worker: one real process standing for one scenario process.

It serves commands from the controller over a stream socket, one at a time:
each command is a pickled ``(verb, args)``, each reply a pickled dict.  The
worker only ever touches scenario memory through the operation it was asked
to do; everything it needs for that (the access stub, the fault log, buffers)
exists before the operation starts, and the fault log is drained and the
counters read around the operation only.

A ``fork`` command forks the worker: the child switches to its own,
pre-created socket (inherited from the controller), opens its own fault log,
warms up, and greets the controller; the parent warms up again (fork made
its whole interpreter heap copy-on-write) and answers with the child's pid.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import signal
import socket
import struct
import traceback

from . import libc as L

_LEN = struct.Struct("<I")


def send_msg(sock: socket.socket, obj: object) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_LEN.pack(len(data)) + data)


def recv_msg(sock: socket.socket) -> object:
    head = _recv_exact(sock, _LEN.size)
    return pickle.loads(_recv_exact(sock, _LEN.unpack(head)[0]))


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("peer closed the connection")
        buf += chunk
    return bytes(buf)


class Worker:
    """The command loop of one worker process."""

    def __init__(
        self, sock: socket.socket, sockets: dict[int, socket.socket], accessor: L.Accessor
    ) -> None:
        self.sock = sock
        self.sockets = sockets  # process index -> worker-side socket (for fork children)
        self.acc = accessor
        self.log = L.FaultLog()
        self._ru = []
        for _ in range(2):
            ru = L.Rusage()
            self._ru.append((ru, ctypes.byref(ru)))
        self._c = (bytearray(8), bytearray(8))
        self._check = bytearray(8)
        self.scratch, _ = L.mmap(
            0, 2 * L.PAGE_SIZE, L.PROT_READ | L.PROT_WRITE, L.MAP_PRIVATE | L.MAP_ANONYMOUS, -1, 0
        )
        self.warm_up()

    # -- setup ---------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Run every code path once on scratch memory outside the arena, so the
        pages fork made copy-on-write in the interpreter are faulted already."""
        for _ in range(2):
            self.acc.store(self.scratch, b"warm")
            self.acc.load(self.scratch, 4)
            with open("/proc/self/mem", "r+b", buffering=0) as mem:
                mem.seek(self.scratch + L.PAGE_SIZE)
                mem.write(b"warm")
                mem.seek(self.scratch + L.PAGE_SIZE)
                mem.read(4)
            L.call(L.libc.madvise, self.scratch, 2 * L.PAGE_SIZE, L.MADV["dontneed"])
            L.call(L.libc.mprotect, self.scratch, 2 * L.PAGE_SIZE, L.PROT_READ | L.PROT_WRITE)
            self.measure(lambda: None)
            pickle.dumps(
                {
                    "value": 0,
                    "errno": None,
                    "signal": None,
                    "data": b"x",
                    "cpu": [1],
                    "gup": 0,
                    "host_errno": None,
                }
            )
        self.log.drain()

    def _instant(self, ru, c) -> None:
        """Read this thread's fault counters (min_flt + maj_flt into ``ru``, the
        perf exception count into ``c``) as of one instant: the perf count is
        read before and after getrusage and the reading is retried until no
        exception came in between (the first touch of a copy-on-write page of
        the interpreter, say)."""
        check = self._check
        for _ in range(20):
            self.log.count(c)
            L.libc.getrusage(L.RUSAGE_THREAD, ru)
            self.log.count(check)
            if check == c:
                return
        raise RuntimeError("fault counters never stable")

    def measure(self, fn):
        """Run fn() and return (its result, the CPU fault addresses in order,
        the GUP faults).  GUP faults have no registers, so no perf sample: they
        are min_flt + maj_flt minus the fault exceptions perf counted over the
        same instants (the interpreter's own faults are both, and cancel)."""
        (ru0, ref0), (ru1, ref1) = self._ru
        c0, c1 = self._c
        self.log.drain()
        lost = self.log.lost
        self._instant(ref0, c0)
        result = fn()
        self._instant(ref1, c1)
        samples = self.log.drain()
        if self.log.lost != lost:
            raise L.LostSamples(
                f"perf lost {self.log.lost - lost} page-fault sample(s) during the step"
            )
        flt = (ru1.minflt + ru1.majflt) - (ru0.minflt + ru0.majflt)
        exc = int.from_bytes(c1, "little") - int.from_bytes(c0, "little")
        return result, samples, flt - exc

    # -- the loop --------------------------------------------------------------------------
    def serve(self) -> None:
        while True:
            try:
                verb, args = recv_msg(self.sock)
            except EOFError:
                os._exit(0)
            try:
                reply = getattr(self, "do_" + verb)(**args)
            except Exception:  # report, never die silently
                reply = {"error": traceback.format_exc()}
            if verb == "exit":
                send_msg(self.sock, reply)
                os._exit(0)
            send_msg(self.sock, reply)

    # -- commands ----------------------------------------------------------------------------
    def _result(self, res, samples, gup, *, failed_fault: bool = False) -> dict:
        value, err, sig, data = res
        # A fault that ended in a signal is an exception with a sample but no
        # min_flt: add it back so gup stays the GUP count.
        return {
            "value": value,
            "errno": err,
            "signal": sig,
            "data": data,
            "cpu": samples,
            "gup": gup + (1 if failed_fault else 0),
        }

    def do_peek(self, addrs: list[int]) -> dict:
        """The bytes of present pages of this process, by plain loads (no
        fault: the controller asks only for present, readable pages)."""
        pages = []
        for addr in addrs:
            data, sig = self.acc.load(addr, L.PAGE_SIZE)
            pages.append(None if sig else data)
        return {"pages": pages}

    def do_mmap(
        self,
        addr: int,
        length: int,
        prot: int,
        flags: int,
        fd: int,
        offset: int,
    ) -> dict:
        """mmap through ``fd``: the controller's open file, inherited (-1:
        anonymous)."""

        def op():
            ret, err = L.mmap(addr, length, prot, flags, fd, offset)
            return ret, err, None, None

        res, samples, gup = self.measure(op)
        return self._result(res, samples, gup)

    def _syscall(self, fn, *args) -> dict:
        def op():
            ret, err = L.call(fn, *args)
            return (None if err else ret), err, None, None

        res, samples, gup = self.measure(op)
        return self._result(res, samples, gup)

    def do_munmap(self, addr: int, length: int) -> dict:
        return self._syscall(L.libc.munmap, addr, length)

    def do_mprotect(self, addr: int, length: int, prot: int) -> dict:
        return self._syscall(L.libc.mprotect, addr, length, prot)

    def do_madvise(self, addr: int, length: int, advice: int) -> dict:
        return self._syscall(L.libc.madvise, addr, length, advice)

    def do_mlock(self, addr: int, length: int) -> dict:
        return self._syscall(L.libc.mlock, addr, length)

    def do_munlock(self, addr: int, length: int) -> dict:
        return self._syscall(L.libc.munlock, addr, length)

    def do_read(self, addr: int, length: int) -> dict:
        self.acc.ensure(length)
        res, samples, gup = self.measure(lambda: self.acc.load(addr, length))
        data, sig = res
        return self._result((0, None, sig, data), samples, gup, failed_fault=sig is not None)

    def do_write(self, addr: int, data: bytes) -> dict:
        self.acc.ensure(len(data))
        res, samples, gup = self.measure(lambda: self.acc.store(addr, data))
        _done, sig = res
        return self._result((0, None, sig, None), samples, gup, failed_fault=sig is not None)

    def _mem(self, pid: int, fn) -> dict:
        path = "/proc/self/mem" if pid == os.getpid() else f"/proc/{pid}/mem"
        fd = os.open(path, os.O_RDWR)
        try:

            def op():
                try:
                    return fn(fd)
                except OSError as err:
                    return 0, L.errno_name(err.errno), None, b""

            res, samples, gup = self.measure(op)
        finally:
            os.close(fd)
        return self._result(res, samples, gup)

    def do_mem_read(self, pid: int, addr: int, length: int) -> dict:
        buf = bytearray(length)

        def fn(fd):
            n = os.preadv(fd, [buf], addr)
            return n, None, None, bytes(buf[:n])

        return self._mem(pid, fn)

    def do_mem_write(self, pid: int, addr: int, data: bytes) -> dict:
        def fn(fd):
            return os.pwrite(fd, data, addr), None, None, None

        return self._mem(pid, fn)

    def do_fork(self, child_index: int) -> dict:
        pid = os.fork()
        if pid == 0:
            try:
                os.close(self.log.fd)  # the parent's event; its ring is not mapped here
                self.sock.close()
                _child_setup(self.sockets, child_index, self.acc)
            finally:
                os._exit(1)  # never back into the parent's loop
        self.warm_up()
        return {"child_pid": pid}

    def do_exit(self) -> dict:
        return {}


def _child_setup(sockets: dict[int, socket.socket], index: int, acc: L.Accessor) -> None:
    """Become the worker of process ``index`` and serve (never returns).  A
    fork child has no PR_SET_PDEATHSIG: a scenario parent may exit first; it
    ends when its socket closes or the controller kills it."""
    sock = sockets[index]
    worker = Worker(sock, sockets, acc)
    send_msg(sock, {"pid": os.getpid()})
    worker.serve()


def worker_main(sockets: dict[int, socket.socket], index: int, acc: L.Accessor) -> None:
    """Entry of a worker forked directly by the controller (never returns)."""
    L.prctl(L.PR_SET_PDEATHSIG, signal.SIGKILL)  # dies with the controller
    L.prctl(L.PR_SET_THP_DISABLE, 1)  # inherited by fork children
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the controller's business
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # exited fork children are reaped at once
    _child_setup(sockets, index, acc)


__all__ = ["recv_msg", "send_msg", "worker_main"]
