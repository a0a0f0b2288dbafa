"""Run one scenario on the model and on the host kernel, step by step, and
classify every observable (``pagewalk oracle``).

Order of a step: the model runs the operation (so the host knows the
address the model chose), the model is observed, the host's worker runs the
same operation at the same address, the host is observed, and the two
observations are compared (``classify.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..errors import InputError
from ..scenario.model import OpSpec, Scenario
from . import libc as L
from .classify import (
    EQUAL,
    ERA,
    MISMATCH,
    NOT_COMPARABLE,
    RULES,
    Classifier,
    HostOp,
    Row,
)
from .host import HostError, HostRun
from .model_side import ModelRun
from .observe import PAGE, Snapshot, model_snapshot

#: operations the host cannot perform the way the model does, and why
NOT_COMPARABLE_OPS = {
    "gup": "get_user_pages() pins have no user-space equivalent (the host would need a "
    "kernel module or io_uring/vfio pinning, whose semantics differ)",
    "put_pages": "drops get_user_pages() pins, which the host run cannot take",
    "futex_key": "the key is made of kernel pointers (mm, inode) that user space cannot see",
    "numa_maps": "/proc/PID/numa_maps of this era and of the host differ in format and "
    "policy fields; not part of the oracle's observables",
    "core_dump": "the host writes a core only for a fatal signal, through core_pattern "
    "(a system setting this oracle does not touch)",
}
#: of those, the ones whose model side never changes what the oracle observes
_STATELESS = {"futex_key", "numa_maps"}


@dataclass
class StepReport:
    label: str
    op: str
    process: str
    text: str
    rows: list[Row] = field(default_factory=list)
    comparable: bool = True
    note: str | None = None

    def as_json(self) -> dict:
        out = {
            "step": self.label,
            "op": self.op,
            "process": self.process,
            "comparable": self.comparable,
            "rows": [r.as_json() for r in self.rows],
        }
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class OracleReport:
    scenario: str
    path: str
    semantics: str
    status: str = "ok"  # ok | mismatch | error | unavailable | not comparable
    steps: list[StepReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        out = {EQUAL: 0, ERA: 0, MISMATCH: 0, NOT_COMPARABLE: 0}
        for s in self.steps:
            for r in s.rows:
                out[r.verdict] = out.get(r.verdict, 0) + 1
        return out

    @property
    def rules_used(self) -> list[str]:
        used: list[str] = []
        for s in self.steps:
            for r in s.rows:
                if r.verdict == ERA and r.rule:
                    for rule in r.rule.split(","):
                        if rule not in used:
                            used.append(rule)
        return used

    @property
    def exit_status(self) -> int:
        return 0 if self.status in ("ok", "not comparable") else 1

    def as_json(self) -> dict:
        return {
            "scenario": self.scenario,
            "semantics": self.semantics,
            "host": {"kernel": os.uname().release, "machine": os.uname().machine},
            "status": self.status,
            "counts": self.counts,
            "rules": {
                r: {"title": RULES[r].title, "commit": RULES[r].commit} for r in self.rules_used
            },
            "notes": self.notes,
            "steps": [s.as_json() for s in self.steps],
        }


class _NotComparable(Exception):
    def __init__(self, reason: str, stateful: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stateful = stateful


def run_oracle(scenario: Scenario, semantics: str | None = None) -> OracleReport:
    """Run ``scenario`` on the model and the host kernel and compare them."""
    model = ModelRun(scenario, semantics)
    report = OracleReport(scenario.name, scenario.path, model.runner.semantics)
    problem = L.host_problem()
    if problem is not None:
        report.status = "unavailable"
        report.notes.append(f"the host kernel cannot be used: {problem}")
        return report
    huge = [f.path for f in scenario.files if f.hugetlb]
    if huge:
        report.status = "not comparable"
        report.notes.append(
            f"hugetlbfs file {huge[0]}: the host has no hugetlbfs pool "
            "configured for this oracle (and creating one is a system "
            "setting); the scenario is not compared"
        )
        return report
    _Oracle(scenario, model, report).run()
    return report


class _Oracle:
    def __init__(self, scenario: Scenario, model: ModelRun, report: OracleReport) -> None:
        self.sc = scenario
        self.model = model
        self.report = report
        self.k = model.k
        self.named: list[tuple[int, int, str]] = []  # model mmaps: (start, end, as name)
        self.classifier = Classifier(self.model.process_order, self.name_of, self.resolve)

    # -- helpers for reports and operands -----------------------------------------------
    def name_of(self, addr: int) -> str:
        for start, end, name in reversed(self.named):
            if start <= addr < end:
                return f"{name}+{addr - start:#x}"
        return f"{addr:#x}"

    def resolve(self, op: OpSpec) -> int | None:
        ref = op.args.get("addr")
        if ref is None:
            return None
        try:
            return self.model.runner.resolve(ref, op.where)
        except InputError:
            return None

    # -- the run --------------------------------------------------------------------------
    def run(self) -> None:
        files = {f.path: (f.content, f.mode) for f in self.sc.files}
        forks = sum(1 for op in self.sc.setup + self.sc.final if op.op == "fork")
        forks += sum(t.repeat for t in self.sc.threads for op in t.ops if op.op == "fork")
        host = HostRun(files, len(self.sc.processes) + forks)
        try:
            for p in self.sc.processes:
                host.spawn(p.name)
            self.host = host
            self.classifier.arena = host.ranges
            order = self.model.process_order()
            prev_m = model_snapshot(self.k, order)
            prev_h = host.snapshot(order)
            with self.model.recording():
                for op, label in self.model.ops():
                    step = self.model.run_op(op, label)
                    rep = StepReport(label, op.op, op.process, _op_text(op))
                    self.report.steps.append(rep)
                    if step.failure is not None:
                        rep.rows.append(
                            Row(
                                "model",
                                step.failure,
                                "(not run)",
                                MISMATCH,
                                note="the model stopped (BUG or invariant)",
                            )
                        )
                        self.report.status = "mismatch"
                        break
                    if op.op == "mmap" and op.as_name and step.result.errno is None:
                        length = (op.args["length"] + PAGE - 1) & ~(PAGE - 1)
                        self.named.append(
                            (step.result.value, step.result.value + length, op.as_name)
                        )
                    order = self.model.process_order()
                    m = model_snapshot(self.k, order)
                    try:
                        hop = self.host_op(op, step.result)
                    except _NotComparable as nc:
                        rep.comparable = False
                        rep.note = f"not comparable: {nc.reason}"
                        rep.rows.append(
                            Row("operation", op.op, "(not run)", NOT_COMPARABLE, note=nc.reason)
                        )
                        if nc.stateful or not _same_state(prev_m, m):
                            self.report.notes.append(
                                f"{label}: {op.op} is not comparable and may change what is "
                                "observed; the steps after it are not compared"
                            )
                            break
                        continue
                    h = host.snapshot(order)
                    rep.rows += self.classifier.compare(step, hop, prev_m, prev_h, m, h, self.k)
                    prev_m, prev_h = m, h
        except HostError as err:
            self.report.status = "error"
            self.report.notes.append(f"the host run failed: {err}")
        finally:
            host.close()
        if self.report.status == "ok" and self.report.counts[MISMATCH]:
            self.report.status = "mismatch"

    # -- one operation on the host ----------------------------------------------------------
    def host_op(self, op: OpSpec, r) -> HostOp:
        kind = op.op
        if kind in NOT_COMPARABLE_OPS:
            raise _NotComparable(NOT_COMPARABLE_OPS[kind], stateful=kind not in _STATELESS)
        host = self.host
        a = op.args
        name = op.process
        if kind == "mmap":
            return self._mmap(op, r)
        if kind == "fork":
            if r.errno is not None:
                raise _NotComparable(f"the model's fork failed ({r.errno})")
            host.fork(name, op.as_name)
            return HostOp(value=0, faults_measured=False)
        if kind == "exit":
            host.exit(name)
            return HostOp(value=0, faults_measured=False)
        addr = self.resolve(op)
        if kind in ("munmap", "mprotect", "madvise", "mlock", "munlock"):
            length = a["length"]
            self._check_range(name, addr, length)
            args = {"addr": addr, "length": length}
            if kind == "mprotect":
                args["prot"] = L.PROTS[a["prot"]]
            if kind == "madvise":
                args["advice"] = L.MADV[a["advice"]]
            reply = host.request(name, kind, **args)
            return HostOp(
                value=reply["value"], errno=reply["errno"], cpu=reply["cpu"], gup=reply["gup"]
            )
        if kind in ("read", "write"):
            length = a["length"] if kind == "read" else len(a["data"])
            self._check_range(name, addr, length)
            if kind == "read":
                reply = host.request(name, "read", addr=addr, length=length)
            else:
                reply = host.request(name, "write", addr=addr, data=a["data"])
            return HostOp(
                value=0,
                signal=reply["signal"],
                data=reply["data"],
                cpu=reply["cpu"],
                gup=reply["gup"],
            )
        if kind in ("mem_read", "mem_write"):
            by = a.get("by") or name
            length = a["length"] if kind == "mem_read" else len(a["data"])
            self._check_range(name, addr, length)
            pid = host.pid(name)
            if kind == "mem_read":
                reply = host.request(by, "mem_read", pid=pid, addr=addr, length=length)
            else:
                reply = host.request(by, "mem_write", pid=pid, addr=addr, data=a["data"])
            return HostOp(
                value=reply["value"],
                errno=reply["errno"],
                data=reply["data"],
                cpu=reply["cpu"],
                gup=reply["gup"],
            )
        raise _NotComparable(f"operation {kind!r} is unknown to the oracle")

    def _check_range(self, name: str, addr: int | None, length: int) -> None:
        """Refuse to let an operation reach memory the scenario did not map
        (the worker's own interpreter)."""
        if addr is None:
            raise _NotComparable("the address could not be resolved", stateful=False)
        end = min(addr + max(length, 1) + PAGE - 1, 1 << 64) & ~(PAGE - 1)
        foreign = self.host.foreign_overlap(name, addr & ~(PAGE - 1), end)
        if foreign is not None:
            raise _NotComparable(
                f"[{addr:#x}, {end:#x}) overlaps the host worker's own "
                f"memory ({foreign.split(None, 1)[0]}); not touched",
                stateful=False,
            )

    def _mmap(self, op: OpSpec, r) -> HostOp:
        host = self.host
        a = op.args
        name = op.process
        length = a["length"]
        rounded = (length + PAGE - 1) & ~(PAGE - 1)
        prot = L.PROTS[a["prot"]]
        flags = 0
        for f in a["flags"]:
            flags |= L.MAP_FLAGS[f]
        path = a.get("file")
        fd = -1
        if path is None:
            flags |= L.MAP_ANONYMOUS
        else:
            fd = host.fds[path]
        fixed = "fixed" in a["flags"]
        if r.errno is None:
            addr = r.value
            if not fixed:
                flags |= L.MAP_FIXED_NOREPLACE
        else:
            addr = self.resolve(op) if "addr" in a else 0
        if fixed:
            self._check_range(name, addr, rounded)
        reply = host.request(
            name,
            "mmap",
            addr=addr or 0,
            length=length,
            prot=prot,
            flags=flags,
            fd=fd,
            offset=a.get("offset", 0),
        )
        if reply["value"] is None and reply["errno"] == "EEXIST" and not fixed and r.errno is None:
            raise _NotComparable(
                f"the host process already has a mapping at {addr:#x}, "
                "where the model placed this one"
            )
        if reply["value"] is None and reply["errno"] == "ENOMEM" and r.errno is None:
            raise _NotComparable(
                "the host refused the mapping with ENOMEM (its overcommit policy); the "
                "model does no overcommit accounting (docs/model.md)"
            )
        if reply["value"] is not None:
            host.add_range(reply["value"], reply["value"] + rounded)
        return HostOp(
            value=reply["value"], errno=reply["errno"], cpu=reply["cpu"], gup=reply["gup"]
        )


def _same_state(a: Snapshot, b: Snapshot) -> bool:
    if a.files != b.files or set(a.procs) != set(b.procs):
        return False
    for p, pa in a.procs.items():
        pb = b.procs[p]
        if pa.vmas != pb.vmas or set(pa.pages) != set(pb.pages):
            return False
        for addr, o in pa.pages.items():
            q = pb.pages[addr]
            if (o.frame, o.mapcount, o.content) != (q.frame, q.mapcount, q.content):
                return False
    return True


def _op_text(op: OpSpec) -> str:
    from ..scenario.report import describe_args

    text = describe_args(op)
    return f"{text} as={op.as_name}" if op.as_name else text
