"""Execute a parsed scenario against the kernel model.

The runner resolves address references, calls the :class:`~pagewalk.kernel.kernel.Kernel`
API for each operation, records every result the way the spec fixes (value,
errno, signal), checks the invariants after every operation when asked, and
evaluates the scenario's checks at the end.  A kernel ``BUG()`` or a broken
invariant stops the execution and is reported as a failed check of kind
``bug`` or ``invariant``; bad input raises :class:`InputError`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError, ModelFailure
from ..kernel.constants import errno_name
from ..kernel.fork import fatal_signal_pending
from ..kernel.kernel import Kernel
from .checks import evaluate_checks
from .model import AddrRef, OpSpec, Scenario, ThreadSpec
from .summary import data_json, mismatch


@dataclass
class OpResult:
    step: str
    op: str
    process: str
    value: int | str | None = None
    errno: str | None = None
    signal: str | None = None
    data: bytes | None = None  # what a read returned

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "step": self.step,
            "op": self.op,
            "value": self.value,
            "errno": self.errno,
            "signal": self.signal,
            "process": self.process,
        }
        if self.data is not None:
            out.update(data_json(self.data))
        return out


@dataclass
class CheckResult:
    kind: str
    ok: bool
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "ok": self.ok, "message": self.message}


@dataclass
class RunResult:
    scenario: str
    semantics: str
    results: list[OpResult] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    failure: ModelFailure | None = None
    kernel: Kernel | None = None

    @property
    def status(self) -> str:
        return "ok" if all(c.ok for c in self.checks) else "violation"

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "semantics": self.semantics,
            "status": self.status,
            "results": [r.as_json() for r in self.results],
            "checks": [c.as_json() for c in self.checks],
            "stats": self.stats,
        }


PAGE = 4096
#: schedule points an operation may take per page it asks for, on top of the
#: explorer's per-task ``max_steps``: the model takes at most 6 (a forced
#: write that faults each page in); the rest is room for retries under
#: contention.  Only a task that loops without end goes past it.
STEPS_PER_PAGE = 16


class Runner:
    """One execution of a scenario: kernel, name bindings and results."""

    def __init__(
        self,
        scenario: Scenario,
        semantics: str | None = None,
        check_invariants: bool = False,
        output_dir: str | None = ".",
    ) -> None:
        self.scenario = scenario
        self.semantics = semantics or scenario.semantics
        self.check = check_invariants
        #: where files the scenario writes go; None: write none (explore)
        self.output_dir = output_dir
        self.k = Kernel(self.semantics, nodes=scenario.nodes, split_ptlock=scenario.split_ptlock)
        self.addrs: dict[str, int | None] = {}  # mmap `as` -> address (None: mmap failed)
        self.pins: dict[str, list] = {}  # gup or pin `as` -> pinned pages
        #: gup or pin `as` -> (the process it pinned in, its first address)
        self.pin_origins: dict[str, tuple[str, int]] = {}
        self.pipes: dict[str, Any] = {}  # vmsplice `as` -> its pipe
        self.result = RunResult(scenario.name, self.semantics, kernel=self.k)
        self.by_step: dict[str, OpResult] = {}
        #: (process, page address) of every address an operation used, in order
        self.touched: dict[tuple[str, int], None] = {}
        for f in scenario.files:
            try:
                self.k.add_file(f.path, f.content, f.mode, f.hugetlb)
            except InputError as err:
                raise InputError(err.detail, f.where) from None
        for p in scenario.processes:
            self.k.spawn(p.name, p.node)
        #: processes a thread's `exit` may end while other threads still run
        self.exited_by_threads = {
            op.process for t in scenario.threads for op in t.ops if op.op == "exit"
        }

    # -- driving ------------------------------------------------------------------
    def run(self, checks: bool = True) -> RunResult:
        """Setup, then the threads one after another in file order, then final
        (then the checks, unless ``checks`` is false: ``show`` wants the state
        before no_leaks exits every process)."""
        try:
            self.run_ops(self.scenario.setup)
            for _, body in [self.start_thread(thread) for thread in self.scenario.threads]:
                body()
            self.run_ops(self.scenario.final)
        except ModelFailure as failure:
            self.fail(failure)
            return self.finish(checks=False)
        return self.finish(checks=checks)

    def start_thread(self, thread: ThreadSpec) -> tuple[Any, Callable[[], None]]:
        """A scenario thread's task_struct and what it does, for a scheduler.  The
        thread is a task of its own in its process's thread group (cloned
        now, so every thread exists before any runs); it does its operations,
        stops at the first one after its group was told to exit (that and
        the rest end with SIGKILL), then exits."""
        try:
            tsk = self.k.clone_thread(thread.process)
        except InputError as err:
            raise InputError(f"cannot start the thread: {err.detail}", thread.where) from None
        # Only an `exit` in a thread can end a group while its threads run;
        # elsewhere the checks (and their schedule points) are not needed.
        watch = thread.process in self.exited_by_threads
        ops = [op for _ in range(thread.repeat) for op in thread.ops]
        k = self.k

        def body() -> None:
            saved, k.current = k.current, tsk
            try:
                for i, op in enumerate(ops):
                    if watch and fatal_signal_pending(tsk):
                        self._killed(ops[i:])
                        break
                    self.run_op(op)
                k.current = tsk
                k.thread_exit(tsk, may_be_last=watch)
            finally:
                k.current = saved

        return tsk, body

    def _killed(self, ops: list[OpSpec]) -> None:
        """Operations a thread never made: its group exited first."""
        for op in ops:
            res = OpResult(op.step, op.op, op.process, signal="SIGKILL")
            self.result.results.append(res)
            self.by_step[op.step] = res

    def who(self, op: OpSpec) -> Any:
        """The task an operation acts as: see :meth:`_actor`."""
        return self._actor(op.process)

    def _actor(self, name: str) -> Any:
        """Who performs an operation of process ``name``: the running thread
        when it belongs to that process, else the process itself."""
        cur = self.k.current
        if cur is not None and cur.group_leader is self.k.tasks.get(name):
            return cur
        return name

    def run_ops(self, ops: list[OpSpec]) -> None:
        for op in ops:
            self.run_op(op)

    def run_op(self, op: OpSpec) -> OpResult:
        if self.k.sched is not None:  # the step bound grows with the work asked for
            self.k.sched.grant(STEPS_PER_PAGE * self._op_pages(op))
        res = OpResult(op.step, op.op, op.process)
        try:
            getattr(self, "op_" + op.op)(op, res)
        except InputError as err:
            if err.where is not None:
                raise
            # The kernel facade's own errors (a process that has exited or
            # already exists) know no file: name the step.
            raise InputError(err.detail, op.where) from None
        self.result.results.append(res)
        self.by_step[op.step] = res
        expect = op.args.get("expect")
        if expect is not None and res.data is not None and res.data != expect:
            self.result.checks.append(
                CheckResult("expect", False, f"{op.step}: read {mismatch(res.data, expect)}")
            )
        if self.check:
            self.k.check_invariants()
        return res

    def _op_pages(self, op: OpSpec) -> int:
        """How many pages an operation may touch: its length, data or page
        count; a walk of the whole address space (numa_maps, a core dump,
        fork's copy) touches every page the process maps."""
        a = op.args
        if "length" in a:
            return -(-a["length"] // PAGE) + 1
        if "data" in a:
            return len(a["data"]) // PAGE + 2
        if "pages" in a:
            return a["pages"]
        tsk = self.k.tasks.get(op.process)
        if op.op in ("numa_maps", "core_dump", "fork") and tsk is not None and tsk.mm:
            return tsk.mm.total_vm
        return 0

    def fail(self, failure: ModelFailure) -> None:
        kind = "invariant" if failure.location.startswith("invariant") else "bug"
        self.result.failure = failure
        self.result.checks.append(CheckResult(kind, False, str(failure)))

    def finish(self, checks: bool = True, with_stats: bool = True) -> RunResult:
        if with_stats:
            self.result.stats = stats(self.k)  # before no_leaks exits the processes
        if checks:
            try:
                self.result.checks.extend(evaluate_checks(self))
            except ModelFailure as failure:
                self.fail(failure)
        return self.result

    # -- operands -------------------------------------------------------------------
    def addr(self, op: OpSpec, key: str = "addr") -> int:
        ref: AddrRef = op.args[key]
        base = 0 if ref.name is None else self.addrs.get(ref.name)
        if base is None:  # not mapped yet, or its mmap failed: resolve() raises, naming the field
            return self.resolve(ref, f"{op.where}.{key}")
        addr = base + ref.offset
        self.touched[(op.process, addr & ~4095)] = None
        return addr

    def resolve(self, ref: AddrRef, where: str) -> int:
        if ref.name is None:
            return ref.offset
        if ref.name not in self.addrs:
            raise InputError(f"mapping {ref.name!r} has not been created yet at this point", where)
        base = self.addrs[ref.name]
        if base is None:
            raise InputError(f"mapping {ref.name!r} has no address: its mmap failed", where)
        return base + ref.offset

    @staticmethod
    def _ret(res: OpResult, ret: int) -> None:
        if ret < 0:
            res.errno = errno_name(ret)
        else:
            res.value = ret

    # -- operations -------------------------------------------------------------------
    def op_mmap(self, op: OpSpec, res: OpResult) -> None:
        a = op.args
        addr = self.resolve(a["addr"], f"{op.where}.addr") if "addr" in a else 0
        ret = self.k.mmap(
            self.who(op),
            a["length"],
            a["prot"],
            a["flags"],
            a.get("file"),
            a.get("offset", 0),
            addr,
        )
        self._ret(res, ret)
        if op.as_name:
            self.addrs[op.as_name] = ret if ret >= 0 else None

    def op_munmap(self, op: OpSpec, res: OpResult) -> None:
        self._ret(res, self.k.munmap(self.who(op), self.addr(op), op.args["length"]))

    def op_mprotect(self, op: OpSpec, res: OpResult) -> None:
        self._ret(
            res,
            self.k.mprotect(self.who(op), self.addr(op), op.args["length"], op.args["prot"]),
        )

    def op_madvise(self, op: OpSpec, res: OpResult) -> None:
        self._ret(
            res,
            self.k.madvise(self.who(op), self.addr(op), op.args["length"], op.args["advice"]),
        )

    def op_mlock(self, op: OpSpec, res: OpResult) -> None:
        self._ret(res, self.k.mlock(self.who(op), self.addr(op), op.args["length"]))

    def op_munlock(self, op: OpSpec, res: OpResult) -> None:
        self._ret(res, self.k.munlock(self.who(op), self.addr(op), op.args["length"]))

    def op_fork(self, op: OpSpec, res: OpResult) -> None:
        ret = self.k.fork(self.who(op), op.as_name)
        self._ret(res, min(ret, 0))  # the spec's result for fork is 0

    def op_exit(self, op: OpSpec, res: OpResult) -> None:
        self._ret(res, self.k.exit(self.who(op)))

    def op_read(self, op: OpSpec, res: OpResult) -> None:
        acc = self.k.read(self.who(op), self.addr(op), op.args["length"])
        res.value, res.signal, res.data = 0, acc.signal, acc.data

    def op_write(self, op: OpSpec, res: OpResult) -> None:
        acc = self.k.write(self.who(op), self.addr(op), op.args["data"])
        res.value, res.signal = 0, acc.signal

    def op_mem_read(self, op: OpSpec, res: OpResult) -> None:
        n, data = self.k.mem_read(*self._mem_target(op), op.args["length"], self._mem_by(op))
        res.value, res.data = n, data

    def op_mem_write(self, op: OpSpec, res: OpResult) -> None:
        res.value = self.k.mem_write(*self._mem_target(op), op.args["data"], self._mem_by(op))

    def _mem_target(self, op: OpSpec) -> tuple[Any, int]:
        """The process /proc/PID/mem is opened on (the thread itself when it
        reads its own memory), and the address."""
        by = op.args.get("by")
        return (op.process if by is not None else self.who(op)), self.addr(op)

    def _mem_by(self, op: OpSpec) -> Any:
        by = op.args.get("by")
        return None if by is None else self._actor(by)

    def op_gup(self, op: OpSpec, res: OpResult) -> None:
        a = op.args
        addr = self.addr(op)
        ret, pages = self.k.gup(self.who(op), addr, a["pages"], a["write"], a["force"])
        self._ret(res, ret)
        self._hold(op, addr, pages)

    def op_pin(self, op: OpSpec, res: OpResult) -> None:
        a = op.args
        addr = self.addr(op)
        ret, pages = self.k.pin(self.who(op), addr, a["pages"], a["write"], a["longterm"])
        self._ret(res, ret)
        self._hold(op, addr, pages)

    def _hold(self, op: OpSpec, addr: int, pages: list) -> None:
        """Keep a gup's or pin's pages under its name, and where they came from."""
        name = op.as_name or op.step
        self.pins[name] = pages
        self.pin_origins[name] = (op.process, addr)

    def op_unpin(self, op: OpSpec, res: OpResult) -> None:
        name = op.args["pins"]
        pages = self.pins.pop(name, None)
        if pages is None:
            raise InputError(
                f"no pages are pinned under {name!r} at this point", f"{op.where}.pins"
            )
        self.k.unpin(pages)
        res.value = 0

    def op_vmsplice(self, op: OpSpec, res: OpResult) -> None:
        ret, pipe = self.k.vmsplice(self.who(op), self.addr(op), op.args["length"])
        self._ret(res, ret)
        self.pipes[op.as_name] = pipe

    def op_pipe_read(self, op: OpSpec, res: OpResult) -> None:
        name = op.args["pipe"]
        pipe = self.pipes.get(name)
        if pipe is None:
            raise InputError(f"pipe {name!r} does not exist at this point", f"{op.where}.pipe")
        data = self.k.pipe_read(pipe, op.args["length"])
        res.value, res.data = len(data), data

    def op_put_pages(self, op: OpSpec, res: OpResult) -> None:
        name = op.args["pins"]
        pages = self.pins.pop(name, None)
        if pages is None:
            raise InputError(
                f"no pages are pinned under {name!r} at this point", f"{op.where}.pins"
            )
        self.k.put_pages(pages)
        res.value = 0

    def op_futex_key(self, op: OpSpec, res: OpResult) -> None:
        key = self.k.futex_key(self.who(op), self.addr(op))
        if isinstance(key, int):
            self._ret(res, key)
        else:
            res.value = key

    def op_numa_maps(self, op: OpSpec, res: OpResult) -> None:
        res.value = self.k.proc_view(self.who(op), "numa_maps")

    def op_core_dump(self, op: OpSpec, res: OpResult) -> None:
        path = None if self.output_dir is None else self.output_path(op, op.args["path"])
        try:
            ret = self.k.core_dump(self.who(op), path)
        except InputError as err:
            raise InputError(err.detail, f"{op.where}.path") from None
        if ret < 0:
            self._ret(res, ret)
        else:
            res.value = op.args["path"]

    def output_path(self, op: OpSpec, name: str) -> str:
        """Where a file the scenario writes goes: ``name`` (checked by the
        loader: relative, no '..') under output_dir, refused if a symbolic
        link on the way leads out of output_dir."""
        path = os.path.join(self.output_dir, name)
        inside = os.path.realpath(self.output_dir)
        if os.path.commonpath([inside, os.path.realpath(path)]) != inside:
            raise InputError(
                f"{name!r} leads out of the output directory {self.output_dir} "
                "through a symbolic link",
                f"{op.where}.path",
            )
        return path


def stats(k: Kernel) -> dict[str, int]:
    from ..kernel.inspect import count_page_tables
    from ..kernel.page import PG_compound, PG_pgtable, PG_reserved

    procs = k.tasks.values()
    tasks = [*procs, *k.threads]  # faults are counted per task, threads too
    in_use = sum(
        512 if p.flags & PG_compound else 1
        for p in k.alloc.mem_map
        if p._count >= 0 and not p.flags & (PG_pgtable | PG_reserved)
    )
    return {
        "minor_faults": sum(t.min_flt for t in tasks),
        "major_faults": sum(t.maj_flt for t in tasks),
        "page_tables": sum(count_page_tables(k, t.mm) for t in procs if t.mm is not None),
        "pages_allocated": k.alloc.allocated_total - k.tables_allocated,
        "pages_in_use": in_use,
        "processes": sum(1 for t in procs if t.mm is not None),
    }


def run_scenario(
    scenario: Scenario,
    semantics: str | None = None,
    check_invariants: bool = False,
    output_dir: str | None = ".",
    checks: bool = True,
) -> RunResult:
    """Run one execution of ``scenario`` and return what happened; files it
    writes go under ``output_dir`` (None: none are written)."""
    return Runner(scenario, semantics, check_invariants, output_dir).run(checks)
