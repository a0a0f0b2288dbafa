"""Compare the model's and the host's observations of one step.

Every observable ends up ``equal``, an ``era difference`` (a behaviour that a
named kernel commit changed between 2.6.15 and the host kernel, see
:data:`RULES` and docs/oracle.md) or a ``mismatch``.

Era differences are not guessed from the values: each rule *predicts* what
the host does differently from the model in one situation, and an observable
is an era difference only when the host shows exactly the predicted value.
A rule names the semantics switch that models its change; under a profile
that has the switch the rule predicts nothing and explains nothing (an era
row it would make is a mismatch), so under ``6.18`` only a rule without a
switch can still apply.

* Faults.  For every fault the model took in the step (``model_side``'s
  events, in order) the host is predicted to take the same fault, except
  where a rule says otherwise (the page is already mapped on the host by
  fault-around or by a /proc/PID/mem read; a forced COW finishes in one
  fault; mprotect made the pte writable; a forced write into a shared
  mapping is refused).  A host read fault on a file page is predicted to map
  the fault-around window.  The host's CPU fault list and GUP fault count
  must equal the model's, or else the prediction.
* Pages.  The rules that leave a page mapped differently on the two sides
  ("diverged" pages) are remembered from step to step, each with a
  predicate that must keep holding (e.g. *fault-around*: the host maps a
  page-cache page, the model nothing).  A diverged page's differing
  observables are that rule's era difference; the mapcount of any page is
  the model's corrected by the diverged mappings of the same frame on each
  side; the zero page has no mapcount on the host.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..kernel.constants import VM_EXEC, VM_READ, VM_SHARED, VM_WRITE
from .model_side import FaultEvent, ModelStep
from .observe import PAGE, PageObs, Snapshot, content_text, same_content

EQUAL = "equal"
ERA = "era difference"
MISMATCH = "mismatch"
NOT_COMPARABLE = "not comparable"


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    commit: str
    applies_to: str
    #: the semantics switch that models the change (kernel/semantics.py): a
    #: rule explains a difference only under a profile without it.  None: no
    #: profile models it (see docs/oracle.md, "Under 6.18").
    switch: str | None = None


RULES: dict[str, Rule] = {
    r.id: r
    for r in [
        Rule(
            "zero-page-mapcount",
            "the zero page is not refcounted or rmap'd: no mapcount, never exclusively mapped",
            'a13ea5b75964 "mm: reinstate ZERO_PAGE" (v2.6.32; vm_normal_page() skips the zero pfn)',
            "mapcount and excl of a page that is the zero page on both sides",
            switch="zero_page_special",
        ),
        Rule(
            "fault-around",
            "a read fault on a file page also maps the cached pages of its 16-page window",
            '8c6e50b0290c "mm: introduce vm_ops->map_pages()" (v3.15-rc1, series "mm: map few '
            'pages around fault address if they are in page cache"); tmpfs: d7c1755179b8 '
            '"mm: implement ->map_pages for shmem/tmpfs" (version UNVERIFIED)',
            "pages the host maps and the model does not after a file read fault (state), the "
            "mapcount/excl of those frames elsewhere, and the faults no longer taken on them",
            switch="fault_around",
        ),
        Rule(
            "foll-dump",
            "/proc/PID/mem reads of untouched anonymous memory map the zero page "
            "(FOLL_ANON's no-page-table shortcut is gone)",
            '8e4b9a607189 "mm: FOLL_DUMP replace FOLL_ANON" (v2.6.32)',
            "the GUP fault and zero-page pte the host gets where the model's FOLL_ANON "
            "returned the zero page without a page table, and the later read fault avoided",
            switch="gup_foll_dump",
        ),
        Rule(
            "locked-zero-page",
            "mlock() of read-only anonymous memory maps the zero page into every pte "
            "(profile 2.6.14 only: untouched_anonymous_page() skipped VM_LOCKED vmas' ptes)",
            'deceb6cd17e6 "mm: follow_page with inner ptlock" (v2.6.15-rc1, the seed patch)',
            "under --semantics 2.6.14: the pages mlock leaves unmapped in the model, their GUP "
            "faults, and the read faults later avoided",
            switch="foll_anon_respects_vm_locked",
        ),
        Rule(
            "force-shared",
            "a forced (ptrace, /proc/PID/mem) write into a read-only MAP_SHARED mapping is "
            "refused instead of COWing an anonymous page into it",
            'cda540ace6a1 "mm: get_user_pages(write,force) refuse to COW in shared areas" (v3.15)',
            "mem_write's value (host EIO), its GUP faults, and the anonymous page the model "
            "left in the shared mapping",
            switch="gup_refuses_cow_in_shared",
        ),
        Rule(
            "force-cow-once",
            "a forced write into a read-only private mapping writes an exclusive anonymous "
            "page through its read-only pte: no do_wp_page reuse fault, neither after the "
            "COW that made the page (one fault instead of two) nor for a page that was "
            "exclusive already (none instead of one)",
            '5535be309971 "mm/gup: fix FOLL_FORCE COW security issue and remove FOLL_COW" (v6.0)',
            "the GUP fault of the model's do_wp_page reuse in a forced write (after "
            "do_no_page's early COW, or on an exclusive anonymous page)",
            switch="foll_force_anon_exclusive",
        ),
        Rule(
            "ptracer-past-eof",
            "a /proc/PID/mem read by another process of a file page wholly past EOF fails "
            "like the owner's own access (SIGBUS -> EIO) instead of reading a zero-filled "
            "page into the page cache",
            "2.6.15's filemap_nopage() let \"an external ptracer\" read past EOF; the host's "
            "files are on tmpfs, whose shmem fault handler refused it in 2.6.15 too, and the "
            "exception is gone from today's filemap_fault() (removing commit UNVERIFIED)",
            "mem_read's value and data (host: the bytes before that page), its GUP fault, and "
            "the page the model maps past EOF",
            switch="no_ptracer_past_eof",
        ),
        Rule(
            "populate",
            "MAP_POPULATE populates every mapping through get_user_pages (write faults for a "
            "writable private one, read faults otherwise); 2.6.15 only pre-mapped shared "
            "file mappings, with install_page() and no fault",
            '54cb8821de07 "mm: merge populate and nopage into fault (fixes nonlinear)" '
            "(v2.6.23; its mm/mmap.c hunk replaces sys_remap_file_pages() by "
            "make_pages_present())",
            "the pages the host maps at mmap and the model does not (state, and the mapcount "
            "of their frames elsewhere), the mmap's GUP faults, and the faults later avoided",
            switch="populate_via_gup",
        ),
        Rule(
            "mlock-shared-read",
            "mlock() and MAP_LOCKED read-fault shared mappings instead of write-faulting them",
            '5ecfda041e4b "mlock: avoid dirtying pages and triggering writeback" (v2.6.38)',
            "the GUP fault count of mlock/mmap over a shared writable mapping (read faults "
            "map the fault-around window)",
            switch="populate_reads_shared",
        ),
        Rule(
            "mlock-errno",
            "mlock() reports a failure to fault pages in as ENOMEM (EFAULT, and 2.6.15's -1, "
            "EPERM, for a range faulted in part) or EAGAIN (ENOMEM), as POSIX asks, and no "
            "longer populates PROT_NONE mappings",
            '9978ad583e10 "mlock: make mlock error return Posixly Correct" (v2.6.28, the '
            "unevictable-mlock series)",
            "mlock's errno",
            switch="mlock_posix_errno",
        ),
        Rule(
            "willneed-anon",
            "MADV_WILLNEED on anonymous memory is accepted (swap-in prefetch) instead of EBADF",
            '1998cc048901 "mm: make madvise(MADV_WILLNEED) support swap file prefetch" (v3.9-rc1)',
            "madvise(WILLNEED)'s result over an anonymous vma",
            switch="willneed_anon",
        ),
        Rule(
            "cow-refcount",
            "a write fault on an anonymous page mapped once but not known exclusive (it was "
            "shared by fork) copies it when the page has other references (here: the "
            "per-CPU activation batch that a /proc/PID/mem read queued it in); 2.6.15 reused "
            "every anonymous page with mapcount 1",
            '09854ba94c6a "mm: do_wp_page() simplification" (v5.9: reuse only when '
            "page_count() is 1); exclusive pages are reused again since 6c287605fd56 "
            '"mm: remember exclusively mapped anonymous pages with PG_anon_exclusive" (v5.18 or '
            "v5.19, UNVERIFIED)",
            "the frame of that page after the write (the host's copy takes the place of the "
            "model's reused page from then on)",
        ),
        Rule(
            "mprotect-writable",
            "mprotect() giving write permission back maps exclusive anonymous pages writable "
            "at once: no write fault",
            '64fe24a3e05e "mm/mprotect: try avoiding write faults for exclusive anonymous '
            'pages when changing protection" (2022, v6.0 UNVERIFIED)',
            "the write fault the model takes (do_wp_page reuse) on an exclusive anonymous "
            "page after an mprotect of its range",
            switch="mprotect_exclusive_writable",
        ),
    ]
}


def active_rules(sem) -> frozenset[str]:
    """The rules that may explain a difference under the profile ``sem``: a
    rule stands for a change the model makes with a switch, so it explains
    nothing once the profile has that switch (the model then behaves so)."""
    return frozenset(r.id for r in RULES.values() if r.switch is None or not getattr(sem, r.switch))


@dataclass
class Row:
    observable: str
    model: str
    host: str
    verdict: str
    rule: str | None = None
    note: str | None = None
    group: str | None = None  # rows of one page share a group (human output folds them)

    def as_json(self) -> dict:
        out = {
            "observable": self.observable,
            "model": self.model,
            "host": self.host,
            "verdict": self.verdict,
        }
        if self.rule:
            out["rule"] = self.rule
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class HostOp:
    """What the host did for one operation."""

    value: int | None = None
    errno: str | None = None
    signal: str | None = None
    data: bytes | None = None
    cpu: list[int] = field(default_factory=list)  # fault addresses, in order
    gup: int = 0
    faults_measured: bool = True


DIV_RULES = (
    "fault-around",
    "foll-dump",
    "locked-zero-page",
    "force-shared",
    "force-shared-fork",
    "ptracer-past-eof",
    "populate",
)
#: the rule a set of diverged pages stands for, where the set is not named after it
_SET_RULE = {"force-shared-fork": "force-shared"}
#: rules that leave a page mapped by the host only
_HOST_ONLY_RULES = ("fault-around", "foll-dump", "locked-zero-page", "populate")


class Classifier:
    """Carries what must be remembered between steps of one scenario."""

    def __init__(self, proc_order, name_of, resolve) -> None:
        self.proc_order = proc_order  # callable: the live process order
        self.name_of = name_of  # callable: address -> "name+0x..." for reports
        self.resolve = resolve  # callable: OpSpec -> its address operand (model's), or None
        self.div: dict[str, set[tuple[str, int]]] = {r: set() for r in DIV_RULES}
        self.mprotected: dict[str, list[tuple[int, int]]] = {}
        self.pop_kind: dict[tuple[str, int], str] = {}  # populate: "anon", "zero" or "file"
        self._labels: tuple[dict[int, str], dict[int, str]] = ({}, {})
        self._copied: set[tuple[str, int]] = set()
        self._next_label = [0, 0]
        self.arena: list[tuple[int, int]] = []
        self.active: frozenset[str] = frozenset(RULES)  # set from the model's profile

    # -- helpers -----------------------------------------------------------------------
    def div_rule(self, key: tuple[str, int]) -> str | None:
        for name, keys in self.div.items():
            if key in keys:
                return _SET_RULE.get(name, name)
        return None

    def was_mprotected(self, proc: str, addr: int) -> bool:
        return any(a <= addr < b for a, b in self.mprotected.get(proc, ()))

    def in_arena(self, addr: int) -> bool:
        return any(a <= addr < b for a, b in self.arena)

    # -- one step ------------------------------------------------------------------------
    def compare(
        self,
        mstep: ModelStep,
        host: HostOp,
        prev_m: Snapshot,
        prev_h: Snapshot,
        m: Snapshot,
        h: Snapshot,
        k,
    ) -> list[Row]:
        """The rows of one step (``host`` is what the host did for the operation),
        each era row gated by the profile's switches (:meth:`_gate`)."""
        self.active = active_rules(k.semantics)
        op = mstep.op
        rows: list[Row] = self._result_rows(mstep, host, k)
        if host.faults_measured and op.op not in ("fork", "exit"):
            rows += self._fault_rows(mstep, host, prev_m, prev_h, m, k)
        if op.op == "mprotect" and mstep.result is not None and mstep.result.errno is None:
            start = self.resolve(op)
            if start is not None:
                end = start + ((op.args["length"] + PAGE - 1) & ~(PAGE - 1))
                self.mprotected.setdefault(op.process, []).append((start, end))
        if op.op == "fork" and mstep.result is not None and mstep.result.errno is None:
            child = op.as_name
            self.mprotected[child] = list(self.mprotected.get(op.process, []))
            for keys in self.div.values():
                keys |= {(child, a) for p, a in keys if p == op.process}
            self.pop_kind.update(
                {(child, a): v for (p, a), v in list(self.pop_kind.items()) if p == op.process}
            )
            self._fork_shared_copies(op.process, child, m, k)
        self._update_div(m, h)
        self._relabel_copies(prev_h, h)
        rows += self._vma_rows(m, h)
        rows += self._page_rows(m, h)
        rows += self._file_rows(m, h)
        return [self._gate(row, k.semantics) for row in rows]

    def _gate(self, row: Row, sem) -> Row:
        """An era difference whose rule the profile already models is a mismatch."""
        if row.verdict != ERA or not row.rule:
            return row
        had = [r for r in row.rule.split(",") if r not in self.active]
        if had:
            row.verdict = MISMATCH
            row.note = ", ".join(
                f"{r} explains nothing under {sem.name}: it has {RULES[r].switch}" for r in had
            )
            row.rule = None
        return row

    # -- operation results ---------------------------------------------------------------
    def _result_rows(self, mstep: ModelStep, host: HostOp, k) -> list[Row]:
        r = mstep.result
        op = mstep.op
        mtext = _result_text(op.op, r.value, r.errno, r.signal, r.data)
        htext = _result_text(
            op.op,
            host.value,
            host.errno,
            host.signal,
            host.data,
            host_errno=op.op in ("mem_read", "mem_write"),
        )
        if _result_key(op.op, r.value, r.errno, r.signal, r.data) == _result_key(
            op.op,
            host.value,
            host.errno if op.op not in ("mem_read", "mem_write") else None,
            host.signal,
            host.data,
        ):
            return [Row("result", mtext, htext, EQUAL)]
        if op.op == "mlock" and (r.errno, host.errno) in (
            ("EFAULT", "ENOMEM"),
            ("EPERM", "ENOMEM"),  # 2.6.15's -1 from make_pages_present
            ("ENOMEM", "EAGAIN"),
        ):
            return [Row("result", mtext, htext, ERA, "mlock-errno")]
        if (
            op.op == "madvise"
            and op.args["advice"] == "willneed"
            and r.errno == "EBADF"
            and host.errno is None
            and self._covers_anon(op, k)
        ):
            return [Row("result", mtext, htext, ERA, "willneed-anon")]
        if op.op == "mem_write" and host.value == 0 and host.errno == "EIO" and r.value:
            addr = self.resolve(op)
            vma = _model_vma(k, op.process, addr) if addr is not None else None
            if vma is not None and vma.vm_flags & VM_SHARED and not vma.vm_flags & VM_WRITE:
                return [Row("result", mtext, htext, ERA, "force-shared")]
        if (
            op.op in ("read", "mem_read")
            and r.data is not None
            and host.data is not None
            and len(r.data) == len(host.data)
            and r.signal == host.signal
            and (op.op == "read" or r.value == host.value)
        ):
            rules = self._data_diff_rules(op, k, r.data, host.data)
            if rules:
                return [
                    Row(
                        "result",
                        mtext,
                        htext,
                        ERA,
                        ",".join(sorted(rules)),
                        note="the bytes differ only on pages a rule left different",
                    )
                ]
        if op.op == "mem_read" and r.value and host.value is not None and host.value < r.value:
            expected = self._foreign_eof_limit(op, k, r.value)
            if expected == host.value and (host.data or b"") == (r.data or b"")[:expected]:
                return [Row("result", mtext, htext, ERA, "ptracer-past-eof")]
        return [Row("result", mtext, htext, MISMATCH)]

    def _covers_anon(self, op, k) -> bool:
        start = self.resolve(op)
        if start is None:
            return False
        end = start + op.args["length"]
        tsk = k.tasks.get(op.process)
        vma = None if tsk is None or tsk.mm is None else tsk.mm.mmap
        while vma is not None:
            if vma.vm_start < end and start < vma.vm_end and vma.vm_file is None:
                return True
            vma = vma.vm_next
        return False

    def _data_diff_rules(self, op, k, mdata: bytes, hdata: bytes) -> set[str] | None:
        """The rules of the diverged pages the differing bytes of a read lie
        on; None if a differing byte lies on a page no rule covers."""
        start = self.resolve(op)
        if start is None:
            return None
        rules: set[str] = set()
        for i, (a, b) in enumerate(zip(mdata, hdata, strict=True)):
            if a != b:
                rule = self.div_rule((op.process, (start + i) & ~(PAGE - 1)))
                if rule is None:
                    return None
                rules.add(rule)
        return rules or None

    def _foreign_eof_limit(self, op, k, n: int) -> int | None:
        """For a mem_read by another process: the bytes before the first page
        of the range that lies wholly past EOF in a file mapping, else None."""
        by = op.args.get("by")
        if by is None or by == op.process:
            return None
        start = self.resolve(op)
        if start is None:
            return None
        for x in range(start & ~(PAGE - 1), start + n, PAGE):
            vma = _model_vma(k, op.process, x)
            f = None if vma is None else vma.vm_file
            if f is not None and f.i_nlink and not f.hugetlb:
                index = vma.vm_pgoff + ((x - vma.vm_start) >> 12)
                if index >= (f.i_size + PAGE - 1) // PAGE:
                    return max(0, x - start)
        return None

    # -- faults -------------------------------------------------------------------------------
    def _accessed_range(self, op) -> tuple[int, int]:
        """The pages a read or write step touches, as [start, end); empty otherwise."""
        if op.op not in ("read", "write"):
            return (0, 0)
        start = self.resolve(op)
        if start is None:
            return (0, 0)
        length = op.args["length"] if op.op == "read" else len(op.args["data"])
        return (start & ~(PAGE - 1), (start + length + PAGE - 1) & ~(PAGE - 1))

    def _fault_rows(
        self, mstep: ModelStep, host: HostOp, prev_m: Snapshot, prev_h: Snapshot, m: Snapshot, k
    ) -> list[Row]:
        events = mstep.events
        pred = self._predict(mstep, prev_m, prev_h, m, k)
        m_cpu = [e.addr for e in events if e.kind == "cpu"]
        # The interpreter's own faults lie outside the arena; an access the
        # step itself made outside it (below mmap_min_addr, say) is the step's.
        accessed = self._accessed_range(mstep.op)
        h_cpu = [
            a & ~(PAGE - 1) for a in host.cpu if self.in_arena(a) or accessed[0] <= a < accessed[1]
        ]
        m_gup = sum(1 for e in events if e.kind == "gup" and e.ok)
        rows = []
        if m_cpu or h_cpu or mstep.op.op in ("read", "write"):
            rows.append(
                self._verdict(
                    "cpu faults",
                    self._fault_list(m_cpu),
                    self._fault_list(h_cpu),
                    m_cpu == h_cpu,
                    h_cpu == pred.cpu,
                    pred.cpu_rules,
                    self._fault_list(pred.cpu),
                )
            )
        if m_gup or host.gup:
            rows.append(
                self._verdict(
                    "gup faults",
                    str(m_gup),
                    str(host.gup),
                    m_gup == host.gup,
                    host.gup == pred.gup,
                    pred.gup_rules,
                    str(pred.gup),
                )
            )
        # what the prediction says the host mapped that the model did not
        self._fa_new = pred.fa_new
        self._zero_new = pred.zero_new
        self._force_new = pred.force_new
        self._eof_new = pred.eof_new
        self._pop_new = pred.pop_new
        self._maycopy = pred.maycopy
        return rows

    def _verdict(self, name, mtext, htext, equal, predicted, rules, ptext) -> Row:
        if equal:
            return Row(name, mtext, htext, EQUAL)
        if predicted and rules:
            return Row(
                name,
                mtext,
                htext,
                ERA,
                ",".join(sorted(rules)),
                note=f"predicted for the host: {ptext}",
            )
        return Row(
            name, mtext, htext, MISMATCH, note=f"predicted for the host: {ptext}" if rules else None
        )

    def _fault_list(self, addrs: list[int]) -> str:
        if not addrs:
            return "none"
        return " ".join(self.name_of(a) for a in addrs)

    def _predict(
        self, mstep: ModelStep, prev_m: Snapshot, prev_h: Snapshot, m: Snapshot, k
    ) -> _Prediction:
        """The faults the host should take for this step: the model's, each
        passed through the rules below (a rule may skip a fault and name
        itself, or predict pages the host maps that the model does not)."""
        pred = _Prediction()
        op = mstep.op
        mapped = {p: set(ps.pages) for p, ps in prev_h.procs.items()}
        prev: FaultEvent | None = None
        for ev in self._with_host_only(mstep, prev_m, prev_h, k):
            f = self._fault(ev, op, mapped, pred, prev, prev_h)
            skip = self._first_rule(_DIVERGENCE_RULES, f, pred, None)
            f.skip = skip
            skip = self._first_rule(_GUP_RULES, f, pred, skip)
            self._count(f, skip, pred)
            prev = ev
        self._predict_zero_page_reads(mstep, prev_m, m, k, mapped, pred)
        return pred

    def _fault(self, ev: FaultEvent, op, mapped, pred: _Prediction, prev, prev_h) -> _Fault:
        p, x = ev.proc, ev.addr
        host_mapped = mapped.setdefault(p, set())
        f = _Fault(
            ev=ev,
            proc=p,
            addr=x,
            host_mapped=host_mapped,
            host_has=x in host_mapped,
            rule=self.div_rule((p, x)) or ("fault-around" if (p, x) in pred.fa_new else None),
            vma=ev.vma,
            write=ev.write,
            prev=prev,
            prev_h=prev_h,
            caller=op.args.get("by") or op.process,
        )
        self._rule_mlock_shared_read(f, pred, populating=op.op in ("mlock", "mmap"))
        return f

    def _first_rule(self, rules, f: _Fault, pred: _Prediction, skip: str | None) -> str | None:
        """The first rule that applies decides (an if/elif chain): its skip,
        or ``skip`` unchanged when no rule applies."""
        for rule in rules:
            applies, result = rule(self, f, pred)
            if applies and (result is None or _SET_RULE.get(result, result) in self.active):
                return result
        return skip

    # -- the rules: each says whether it applies, and the fault's skip if so --------------
    def _rule_mlock_shared_read(self, f: _Fault, pred: _Prediction, populating: bool) -> None:
        """mlock/MAP_LOCKED read-fault shared mappings on the host (5ecfda041e4b):
        the model's write fault is a read fault there."""
        vma = f.vma
        if (
            f.ev.kind == "gup"
            and f.write
            and populating
            and "mlock-shared-read" in self.active
            and not f.ev.host_only
            and vma is not None
            and vma.flags & VM_SHARED
        ):
            f.write = False
            pred.gup_rules.add("mlock-shared-read")

    def _rule_host_only(self, f: _Fault, pred: _Prediction) -> tuple[bool, str | None]:
        """A fault only the host takes (populate, or a page only the model
        maps): none if the host maps the page already for a read."""
        if not f.ev.host_only:
            return False, None
        if f.host_has and not f.write:
            return True, f.rule or "fault-around"
        (pred.cpu_rules if f.ev.kind == "cpu" else pred.gup_rules).add(f.ev.host_only)
        return True, None

    def _rule_host_mapped_it_already(self, f: _Fault, pred: _Prediction) -> tuple[bool, str | None]:
        """A page a host-only rule (fault-around, populate, ...) mapped: no
        fault for a read, nor for a write where the host's pte is writable."""
        ev = f.ev
        if ev.pre_present or not f.host_has or f.rule not in _HOST_ONLY_RULES:
            return False, None
        if not f.write:
            return True, f.rule
        writable = (f.vma is not None and f.vma.flags & VM_SHARED and f.vma.flags & VM_WRITE) or (
            f.rule == "populate" and self.pop_kind.get((f.proc, f.addr)) == "anon"
        )
        return True, f.rule if writable else None

    def _rule_populated_anon(self, f: _Fault, pred: _Prediction) -> tuple[bool, str | None]:
        """The model's zero page where the host populated a writable page."""
        ev = f.ev
        if (
            f.rule == "populate"
            and f.write
            and ev.pre_present
            and not ev.pre_anon
            and self.pop_kind.get((f.proc, f.addr)) == "anon"
        ):
            return True, f.rule
        return False, None

    def _rule_mprotect_writable(self, f: _Fault, pred: _Prediction) -> tuple[bool, str | None]:
        """An exclusive anonymous page mprotect()ed writable again: the host
        makes its pte writable at once, the model COW-faults (and reuses)."""
        ev, vma = f.ev, f.vma
        if (
            f.write
            and ev.pre_present
            and not ev.pre_rw
            and ev.pre_anon
            and ev.pre_mapcount == 1
            and ev.post_pfn == ev.pre_pfn
            and vma is not None
            and vma.flags & VM_WRITE
            and not vma.flags & VM_SHARED
            and self.was_mprotected(f.proc, f.addr)
            and _host_excl_anon(f.prev_h, f.proc, f.addr)
        ):
            return True, "mprotect-writable"
        return False, None

    def _rule_may_copy(self, f: _Fault, pred: _Prediction) -> tuple[bool, str | None]:
        """The model reused an anonymous page the host does not hold
        exclusively: the host may copy it instead (no skip)."""
        ev = f.ev
        if (
            f.skip is None
            and f.write
            and ev.pre_present
            and ev.pre_anon
            and ev.pre_mapcount == 1
            and ev.post_pfn == ev.pre_pfn
            and _host_anon_not_excl(f.prev_h, f.proc, f.addr)
        ):
            pred.maycopy.add((f.proc, f.addr))
            return True, f.skip
        return False, None

    def _rule_ptracer_past_eof(self, f: _Fault, pred: _Prediction) -> tuple[bool, str | None]:
        """Another process reading past EOF: the host's fault fails (SIGBUS,
        not counted) -- after mapping the fault-around window."""
        ev = f.ev
        if not (
            ev.kind == "gup"
            and not f.write
            and ev.ok
            and f.proc != f.caller
            and _past_eof(f.addr, f.vma)
        ):
            return False, None
        pred.eof_new.add((f.proc, f.addr))
        if not f.host_has:
            for y in _fault_around_window(f.addr, f.vma):
                if y not in f.host_mapped:
                    f.host_mapped.add(y)
                    pred.fa_new.add((f.proc, y))
        return True, "ptracer-past-eof"

    def _rule_force_shared(self, f: _Fault, pred: _Prediction) -> tuple[bool, str | None]:
        """A forced write into a read-only shared mapping: 2.6.15 COWs it, the
        host refuses."""
        vma = f.vma
        if (
            f.ev.kind == "gup"
            and f.write
            and vma is not None
            and vma.flags & VM_SHARED
            and not vma.flags & VM_WRITE
        ):
            pred.force_new.add((f.proc, f.addr))
            return True, "force-shared"
        return False, None

    def _rule_force_cow_once(self, f: _Fault, pred: _Prediction) -> tuple[bool, str | None]:
        """do_wp_page's reuse of a page GUP may now write through its read-only
        pte: one this forced write just COWed, or an exclusive anonymous page."""
        ev, vma, prev = f.ev, f.vma, f.prev
        if not (
            ev.kind == "gup"
            and f.write
            and ev.pre_present
            and ev.pre_anon
            and ev.post_pfn == ev.pre_pfn
            and vma is not None
            and not vma.flags & VM_WRITE
        ):
            return False, None
        just_cowed = (
            prev is not None
            and prev.kind == "gup"
            and prev.write
            and prev.proc == f.proc
            and prev.addr == f.addr
            and not prev.pre_present
        )
        if just_cowed or (ev.pre_mapcount == 1 and _host_excl_anon(f.prev_h, f.proc, f.addr)):
            return True, "force-cow-once"
        return False, None

    def _rule_gup_read_fault_around(self, f: _Fault, pred: _Prediction) -> tuple[bool, str | None]:
        """A GUP read of a page this step's fault-around already mapped."""
        ev = f.ev
        if (
            ev.kind == "gup"
            and not f.write
            and f.host_has
            and not ev.pre_present
            and (f.proc, f.addr) in pred.fa_new
        ):
            return True, "fault-around"
        return False, None

    # -- the prediction ------------------------------------------------------------------
    def _count(self, f: _Fault, skip: str | None, pred: _Prediction) -> None:
        """A skipped fault names its rule; any other is predicted, and a read
        fault of a file page maps its fault-around window on the host."""
        ev, vma = f.ev, f.vma
        if skip is not None:
            (pred.cpu_rules if ev.kind == "cpu" else pred.gup_rules).add(skip)
            return
        if ev.kind == "cpu":
            pred.cpu.append(f.addr)
        elif ev.ok:
            pred.gup += 1
        if ev.host_only == "populate":
            pred.pop_new[(f.proc, f.addr)] = ev.pop_kind
        if (
            not f.write
            and not f.host_has
            and vma is not None
            and vma.path is not None
            and ev.signal != "SIGSEGV"
            and "fault-around" in self.active
        ):
            for y in _fault_around_window(f.addr, vma):
                if y not in f.host_mapped and y != f.addr:
                    f.host_mapped.add(y)
                    pred.fa_new.add((f.proc, y))
        if ev.ok:
            f.host_mapped.add(f.addr)

    def _predict_zero_page_reads(
        self, mstep: ModelStep, prev_m: Snapshot, m: Snapshot, k, mapped, pred: _Prediction
    ) -> None:
        """Pages a model GUP read answered with the zero page without mapping
        it (FOLL_ANON's no-page-table shortcut; before deceb6cd17e6 also
        untouched_anonymous_page() for mlock): the host faults the zero page in."""
        op, r = mstep.op, mstep.result
        if op.op == "mem_read" and r is not None and r.value:
            rule, n = "foll-dump", r.value
        elif op.op == "mlock" and r is not None:  # active without foll_anon_respects_vm_locked
            rule, n = "locked-zero-page", op.args["length"]
        else:
            return
        start = self.resolve(op) if rule in self.active else None
        if start is None:
            return
        target = op.process
        touched = {(e.proc, e.addr) for e in mstep.events}
        prev_pages = prev_m.procs.get(target)
        now_pages = m.procs.get(target)
        hm = mapped.setdefault(target, set())
        for x in range(start & ~(PAGE - 1), start + n, PAGE):
            vma = _model_vma(k, target, x)
            if (
                vma is not None
                and vma.vm_file is None
                and (target, x) not in touched
                and (op.op == "mem_read" or not vma.vm_flags & VM_WRITE)
                and (prev_pages is None or x not in prev_pages.pages)
                and (now_pages is None or x not in now_pages.pages)
                and x not in hm
            ):
                pred.gup += 1
                pred.gup_rules.add(rule)
                pred.zero_new[rule].add((target, x))
                hm.add(x)

    def _with_host_only(self, mstep: ModelStep, prev_m: Snapshot, prev_h: Snapshot, k):
        """The model's fault events, with the faults only the host takes merged
        in, in address order: a user access or /proc/PID/mem access reaching a
        page that a rule left mapped by the model only (force-shared,
        ptracer-past-eof) faults on the host."""
        from .model_side import _vma_info

        op, r = mstep.op, mstep.result
        if op.op == "mmap" and r is not None and r.errno is None and "populate" in self.active:
            return list(mstep.events) + self._populate_events(op, r.value, k)
        if op.op not in ("read", "write", "mem_read", "mem_write") or r is None:
            return mstep.events
        start = self.resolve(op)
        if start is None:
            return mstep.events
        length = op.args["length"] if op.op in ("read", "mem_read") else len(op.args["data"])
        if op.op == "read" and r.signal:
            length = len(r.data or b"") + 1
        elif op.op in ("mem_read", "mem_write"):
            length = r.value or 0
        p = op.process
        mp = prev_m.procs.get(p)
        hp = prev_h.procs.get(p)
        extra = []
        for x in range(start & ~(PAGE - 1), start + length, PAGE):
            rule = self.div_rule((p, x))
            if (
                rule in ("force-shared", "ptracer-past-eof")
                and mp is not None
                and x in mp.pages
                and (hp is None or x not in hp.pages)
            ):
                ev = FaultEvent(
                    "cpu" if op.op in ("read", "write") else "gup",
                    p,
                    x,
                    op.op in ("write", "mem_write"),
                    ok=True,
                )
                ev.vma = _vma_info(_model_vma(k, p, x))
                ev.host_only = rule
                extra.append(ev)
        if not extra:
            return mstep.events
        return sorted(list(mstep.events) + extra, key=lambda e: e.addr)

    def _populate_events(self, op, addr: int, k) -> list[FaultEvent]:
        """MAP_POPULATE on the host: get_user_pages over the whole new vma --
        write faults for a writable private vma, read faults otherwise, none
        for PROT_NONE, stopping at EOF (__mm_populate ignores the error).  The
        2.6.15 model populates only shared file mappings, with install_page()
        and no fault.  Skipped with MAP_LOCKED, whose population the model
        does through make_pages_present (its own events)."""
        from .model_side import _vma_info

        flags = op.args["flags"]
        if "populate" not in flags or "locked" in flags:
            return []
        vma = _model_vma(k, op.process, addr)
        if vma is None or not vma.vm_flags & (VM_READ | VM_WRITE | VM_EXEC):
            return []
        info = _vma_info(vma)
        write = bool(vma.vm_flags & VM_WRITE and not vma.vm_flags & VM_SHARED)
        events = []
        length = (op.args["length"] + PAGE - 1) & ~(PAGE - 1)
        for x in range(addr, min(addr + length, vma.vm_end), PAGE):
            if info.path not in (None, "[shmem]") and _past_eof(x, info):
                break
            ev = FaultEvent("gup", op.process, x, write, ok=True, vma=info)
            ev.host_only = "populate"
            ev.pop_kind = "anon" if write else ("zero" if info.path is None else "file")
            events.append(ev)
        return events

    # -- diverged pages -----------------------------------------------------------------------
    def _update_div(self, m: Snapshot, h: Snapshot) -> None:
        self.div["fault-around"] |= getattr(self, "_fa_new", set())
        for rule, keys in getattr(self, "_zero_new", {}).items():
            self.div[rule] |= keys
        self._zero_new = {}
        self.div["force-shared"] |= getattr(self, "_force_new", set())
        self.div["ptracer-past-eof"] |= getattr(self, "_eof_new", set())
        self.pop_kind.update(getattr(self, "_pop_new", {}))
        self.div["populate"] |= set(getattr(self, "_pop_new", {}))
        self._fa_new, self._force_new, self._eof_new = set(), set(), set()
        self._pop_new = {}

        def mo(key):
            ps = m.procs.get(key[0])
            return None if ps is None else ps.pages.get(key[1])

        def ho(key):
            ps = h.procs.get(key[0])
            return None if ps is None else ps.pages.get(key[1])

        self.div["fault-around"] = {
            key
            for key in self.div["fault-around"]
            if mo(key) is None and (o := ho(key)) is not None and not o.zero and not o.anon
        }
        for rule in ("foll-dump", "locked-zero-page"):
            self.div[rule] = {
                key
                for key in self.div[rule]
                if mo(key) is None and (o := ho(key)) is not None and o.zero
            }
        self.div["force-shared"] = {
            key
            for key in self.div["force-shared"]
            if (o := mo(key)) is not None
            and o.anon
            and not o.zero
            and ((g := ho(key)) is None or not g.anon)
        }
        self.div["force-shared-fork"] = {
            key for key in self.div["force-shared-fork"] if mo(key) is not None and ho(key) is None
        }
        self.div["ptracer-past-eof"] = {
            key
            for key in self.div["ptracer-past-eof"]
            if (o := mo(key)) is not None and not o.anon and ho(key) is None
        }
        self.div["populate"] = {
            key
            for key in self.div["populate"]
            if (o := ho(key)) is not None
            and _kind(o) == self.pop_kind.get(key)
            and ((g := mo(key)) is None or (not g.anon and _kind(o) == "anon"))
        }
        self.pop_kind = {key: v for key, v in self.pop_kind.items() if key in self.div["populate"]}

    def _fork_shared_copies(self, parent: str, child: str, m: Snapshot, k) -> None:
        """A force-shared COW gave a shared vma of the model an anon_vma, so the
        model's fork copied all its ptes; the host's vma has none and fork
        copied nothing: the child's pages of that vma are the model's only."""
        keys = self.div["force-shared"]
        cps = m.procs.get(child)
        if cps is None:
            return
        for x in cps.pages:
            vma = _model_vma(k, child, x)
            if vma is None or not vma.vm_flags & VM_SHARED:
                continue
            if any(p == parent and vma.vm_start <= a < vma.vm_end for p, a in keys):
                self.div["force-shared-fork"].add((child, x))

    def _relabel_copies(self, prev_h: Snapshot, h: Snapshot) -> None:
        """Where the model reused a page on a write fault and the host copied it
        (cow-refcount), the host's copy continues the old page: it inherits its
        label, and the frame row of this step says why."""
        self._copied = set()
        h_label = self._labels[1]
        for p, x in getattr(self, "_maycopy", set()):
            before = prev_h.procs.get(p)
            after = h.procs.get(p)
            old = None if before is None else before.pages.get(x)
            new = None if after is None else after.pages.get(x)
            if (
                old is not None
                and new is not None
                and old.anon
                and new.anon
                and old.frame != new.frame
                and old.frame in h_label
            ):
                h_label[new.frame] = h_label.pop(old.frame)
                self._copied.add((p, x))
        self._maycopy = set()

    # -- vmas, pages, files -----------------------------------------------------------------
    def _vma_rows(self, m: Snapshot, h: Snapshot) -> list[Row]:
        rows = []
        for p in self._procs(m, h):
            mv = [v.text() for v in m.procs[p].vmas] if p in m.procs else ["(no process)"]
            hv = [v.text() for v in h.procs[p].vmas] if p in h.procs else ["(no process)"]
            rows.append(
                Row(
                    f"{p} vmas",
                    "; ".join(mv) or "none",
                    "; ".join(hv) or "none",
                    EQUAL if mv == hv else MISMATCH,
                )
            )
        return rows

    def _procs(self, m: Snapshot, h: Snapshot) -> list[str]:
        order = [p for p in self.proc_order() if p in m.procs or p in h.procs]
        return order + [p for p in list(m.procs) + list(h.procs) if p not in order]

    def _page_rows(self, m: Snapshot, h: Snapshot) -> list[Row]:
        rows: list[Row] = []
        keys = []
        for p in self._procs(m, h):
            mp = m.procs[p].pages if p in m.procs else {}
            hp = h.procs[p].pages if p in h.procs else {}
            keys += [(p, a) for a in sorted(set(mp) | set(hp))]

        def obs(snap, key):
            ps = snap.procs.get(key[0])
            return None if ps is None else ps.pages.get(key[1])

        # diverged mappings per frame, on each side
        div_keys = {key: _SET_RULE.get(name, name) for name, ks in self.div.items() for key in ks}
        m_div: Counter[int] = Counter()
        h_div: Counter[int] = Counter()
        frame_rules: dict[tuple[str, int], set[str]] = {}
        for key, rule in div_keys.items():
            mo, ho = obs(m, key), obs(h, key)
            if mo is not None and not mo.zero:
                m_div[mo.frame] += 1
                frame_rules.setdefault(("m", mo.frame), set()).add(rule)
            if ho is not None and not ho.zero:
                h_div[ho.frame] += 1
                frame_rules.setdefault(("h", ho.frame), set()).add(rule)
        # Canonical frame labels over the pages both sides map and no rule
        # diverged, kept from step to step (so a COW copy that should have been a
        # reuse shows); a frame no longer seen loses its label, and labels are
        # never reused.
        m_label, h_label = self._labels
        seen_m: set[int] = set()
        seen_h: set[int] = set()
        for key in keys:
            mo, ho = obs(m, key), obs(h, key)
            if mo is None or ho is None or mo.zero or ho.zero or key in div_keys:
                continue
            seen_m.add(mo.frame)
            seen_h.add(ho.frame)
        for label, seen in ((m_label, seen_m), (h_label, seen_h)):
            for frame in [f for f in label if f not in seen]:
                del label[frame]
        for key in keys:
            mo, ho = obs(m, key), obs(h, key)
            if mo is None or ho is None or mo.zero or ho.zero or key in div_keys:
                continue
            for label, frame, side in ((m_label, mo.frame, 0), (h_label, ho.frame, 1)):
                if frame not in label:
                    self._next_label[side] += 1
                    label[frame] = f"f{self._next_label[side]}"

        for key in keys:
            p, a = key
            where = f"{p} {self.name_of(a)}"
            mo, ho = obs(m, key), obs(h, key)
            drule = div_keys.get(key)
            mstate = "none" if mo is None else mo.state
            hstate = "none" if ho is None else ho.state
            if mstate != hstate:
                rows.append(
                    Row(
                        f"{where}: state",
                        mstate,
                        hstate,
                        ERA if drule else MISMATCH,
                        drule,
                        group=where,
                    )
                )
                if mo is None or ho is None:
                    continue
            else:
                rows.append(Row(f"{where}: state", mstate, hstate, EQUAL, group=where))
            if mo.zero or ho.zero:
                if mo.zero and ho.zero:
                    rows += self._zero_rows(where, mo, ho)
                continue

            def row(name, mv, hv, eq, era_rule=None, note=None, where=where):
                if eq:
                    return Row(f"{where}: {name}", mv, hv, EQUAL, group=where)
                if era_rule:
                    return Row(f"{where}: {name}", mv, hv, ERA, era_rule, note, group=where)
                return Row(f"{where}: {name}", mv, hv, MISMATCH, note=note, group=where)

            rows.append(
                row(
                    "anon",
                    _yn(mo.anon, "anon", "file"),
                    _yn(ho.anon, "anon", "file"),
                    mo.anon == ho.anon,
                    drule,
                )
            )
            if not drule:  # a diverged page has no counterpart frame to compare
                ml, hl = m_label[mo.frame], h_label[ho.frame]
                if key in self._copied and ml == hl:
                    rows.append(
                        row("frame", f"{ml} (reused)", f"{hl} (a copy)", False, "cow-refcount")
                    )
                else:
                    rows.append(row("frame", ml, hl, ml == hl))
            rules = frame_rules.get(("m", mo.frame), set()) | frame_rules.get(
                ("h", ho.frame), set()
            )
            expected = mo.mapcount - m_div[mo.frame] + h_div[ho.frame]
            mc_rule = drule or (
                ",".join(sorted(rules)) if ho.mapcount == expected and rules else None
            )
            note = (
                None
                if mo.mapcount == ho.mapcount or not rules
                else f"expected on the host: {expected}"
            )
            rows.append(
                row(
                    "mapcount",
                    str(mo.mapcount),
                    str(ho.mapcount),
                    mo.mapcount == ho.mapcount,
                    mc_rule,
                    note,
                )
            )
            mx, hx = mo.mapcount == 1, ho.excl
            x_rule = drule or (mc_rule if hx == (expected == 1) else None)
            rows.append(
                row(
                    "excl",
                    _yn(mx, "exclusive", "shared"),
                    _yn(hx, "exclusive", "shared"),
                    mx == hx,
                    x_rule,
                )
            )
            if not ho.unread:  # a page of a vma without PROT_READ is not read on the host
                rows.append(
                    row(
                        "content",
                        mo.content_text(),
                        ho.content_text(),
                        same_content(mo.content, ho.content),
                        drule,
                    )
                )
        return rows

    def _zero_rows(self, where: str, mo: PageObs, ho: PageObs) -> list[Row]:
        rows = []
        if mo.mapcount == ho.mapcount:
            rows.append(
                Row(f"{where}: mapcount", str(mo.mapcount), str(ho.mapcount), EQUAL, group=where)
            )
        else:
            rows.append(
                Row(
                    f"{where}: mapcount",
                    str(mo.mapcount),
                    str(ho.mapcount),
                    ERA if ho.mapcount == 0 else MISMATCH,
                    "zero-page-mapcount" if ho.mapcount == 0 else None,
                    group=where,
                )
            )
        mx = mo.mapcount == 1
        if mx == ho.excl:
            rows.append(
                Row(
                    f"{where}: excl",
                    _yn(mx, "exclusive", "shared"),
                    _yn(ho.excl, "exclusive", "shared"),
                    EQUAL,
                    group=where,
                )
            )
        else:
            rows.append(
                Row(
                    f"{where}: excl",
                    _yn(mx, "exclusive", "shared"),
                    _yn(ho.excl, "exclusive", "shared"),
                    ERA if not ho.excl else MISMATCH,
                    "zero-page-mapcount" if not ho.excl else None,
                    group=where,
                )
            )
        return rows

    def _file_rows(self, m: Snapshot, h: Snapshot) -> list[Row]:
        rows = []
        for path in m.files:
            mc, hc = m.files[path], h.files.get(path)
            rows.append(
                Row(
                    f"file {path}",
                    f"{len(mc)} bytes, {content_text(mc)}",
                    "missing" if hc is None else f"{len(hc)} bytes, {content_text(hc)}",
                    EQUAL if mc == hc else MISMATCH,
                )
            )
        return rows


@dataclass
class _Fault:
    """One model fault event as the prediction rules see it."""

    ev: FaultEvent
    proc: str
    addr: int
    host_mapped: set[int]  # the host's mapped pages of proc, as predicted so far
    host_has: bool
    rule: str | None  # the divergence rule the page is under, if any
    vma: object
    write: bool  # the fault's access, as the host takes it
    prev: FaultEvent | None
    prev_h: Snapshot
    caller: str  # the process doing the operation
    skip: str | None = None  # what the divergence rules decided


@dataclass
class _Prediction:
    cpu: list[int] = field(default_factory=list)
    gup: int = 0
    cpu_rules: set[str] = field(default_factory=set)
    gup_rules: set[str] = field(default_factory=set)
    fa_new: set[tuple[str, int]] = field(default_factory=set)
    zero_new: dict[str, set[tuple[str, int]]] = field(
        default_factory=lambda: {"foll-dump": set(), "locked-zero-page": set()}
    )
    force_new: set[tuple[str, int]] = field(default_factory=set)
    eof_new: set[tuple[str, int]] = field(default_factory=set)
    pop_new: dict[tuple[str, int], str] = field(default_factory=dict)
    maycopy: set[tuple[str, int]] = field(default_factory=set)


def _fault_around_window(x: int, vma) -> list[int]:
    """The pages do_fault_around() maps for a read fault at x (fault_around_bytes
    64 KiB, as measured on the host): 16-page aligned in the page table,
    clamped to the vma and to the pte page, and only pages of the page cache
    (below EOF; for shmem, the indexes cached when the fault started)."""
    nr = 16
    pte_off = (x >> 12) & 511
    vma_off = (x - vma.start) >> 12
    vma_pages = (vma.end - vma.start) >> 12
    from_pte = max(pte_off & ~(nr - 1), pte_off - min(pte_off, vma_off))
    to_pte = min(from_pte + nr, 512, pte_off + vma_pages - vma_off) - 1
    eof = (vma.i_size + PAGE - 1) // PAGE
    out = []
    for t in range(from_pte, to_pte + 1):
        y = x + ((t - pte_off) << 12)
        index = vma.pgoff + ((y - vma.start) >> 12)
        if index >= eof:
            continue
        if vma.cached is not None and index not in vma.cached:
            continue
        out.append(y)
    return out


def _past_eof(x: int, vma) -> bool:
    """x is a page of a regular file mapping wholly beyond EOF."""
    if vma is None or vma.path is None or vma.path == "[shmem]":
        return False
    return vma.pgoff + ((x - vma.start) >> 12) >= (vma.i_size + PAGE - 1) // PAGE


def _kind(o: PageObs) -> str:
    return "zero" if o.zero else ("anon" if o.anon else "file")


def _host_anon_not_excl(h: Snapshot, p: str, x: int) -> bool:
    ps = h.procs.get(p)
    o = None if ps is None else ps.pages.get(x)
    return o is not None and o.anon and not o.zero and o.mapcount == 1 and not o.anon_exclusive


def _host_excl_anon(h: Snapshot, p: str, x: int) -> bool:
    ps = h.procs.get(p)
    o = None if ps is None else ps.pages.get(x)
    return o is not None and o.anon and o.anon_exclusive


def _model_vma(k, proc: str, addr: int):
    tsk = k.tasks.get(proc)
    if tsk is None or tsk.mm is None:
        return None
    from ..kernel.mmap import find_vma

    vma = find_vma(tsk.mm, addr)
    return vma if vma is not None and vma.vm_start <= addr else None


def _yn(flag: bool, yes: str, no: str) -> str:
    return yes if flag else no


def _result_key(op: str, value, errno, signal, data):
    if op in ("mem_read", "mem_write"):
        return (value or 0, signal, data if op == "mem_read" else None)
    if op == "mmap":
        return (value, errno)
    return (value if errno is None else None, errno, signal, data if op == "read" else None)


def _result_text(op: str, value, errno, signal, data, host_errno: bool = False) -> str:
    parts = []
    if signal:
        parts.append(signal)
    elif errno and not (host_errno and value == 0):
        parts.append(errno)
    elif op == "mmap" and isinstance(value, int):
        parts.append(f"{value:#x}")
    else:
        parts.append(str(value))
    if host_errno and errno:
        parts.append(f"({errno})")
    if data is not None and op in ("read", "mem_read"):
        parts.append(repr(bytes(data)[:32].decode("utf-8", "backslashreplace")))
    return " ".join(parts)


#: Faults where the two kernels differ by a documented rule (an if/elif chain).
_DIVERGENCE_RULES = (
    Classifier._rule_host_only,
    Classifier._rule_host_mapped_it_already,
    Classifier._rule_populated_anon,
    Classifier._rule_mprotect_writable,
)
#: Then the GUP-specific rules (a second chain, which may override the first's skip).
_GUP_RULES = (
    Classifier._rule_may_copy,
    Classifier._rule_ptracer_past_eof,
    Classifier._rule_force_shared,
    Classifier._rule_force_cow_once,
    Classifier._rule_gup_read_fault_around,
)
