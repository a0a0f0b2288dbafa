"""The model side: run a scenario one operation at a time and record, for
each operation, every page fault the model took.

Faults are recorded by wrapping two functions of the model for the duration
of the run (and restoring them afterwards; nothing in ``pagewalk.kernel`` is
edited): ``mmu.do_page_fault`` (a CPU exception: one entry per exception, as
the host's perf log has one sample per exception) and
``memory.__handle_mm_fault`` outside a CPU exception (a fault taken inside
``get_user_pages``).  Each :class:`FaultEvent` carries what the fault-around
and COW predictions in ``classify.py`` need: the pte before and after, the
vma, and for a shared anonymous (shmem) vma the page-cache indexes present
when the fault started.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..kernel.constants import PAGE_SHIFT, PAGE_SIZE, VM_FAULT_MAJOR, VM_FAULT_MINOR, VM_FAULT_WRITE
from ..kernel.inspect import pte_at
from ..kernel.page import PG_anon
from ..kernel.pgtable import PTE_MASK, PTE_PRESENT_MASK
from ..scenario.model import OpSpec, Scenario
from ..scenario.runner import OpResult, Runner

#: spelled out: inside a class body ``memory.__handle_mm_fault`` would be name-mangled
_HMF = "__handle_mm_fault"


@dataclass
class VmaInfo:
    start: int
    end: int
    pgoff: int
    flags: int
    path: str | None  # scenario file path, "[shmem]", or None (anonymous)
    i_size: int = 0
    cached: frozenset[int] | None = None  # shmem only: indexes in the page cache


@dataclass
class FaultEvent:
    kind: str  # "cpu" or "gup"
    proc: str  # the process whose mm faulted
    addr: int  # page address
    write: bool
    pre_present: bool = False
    pre_pfn: int | None = None
    pre_anon: bool = False
    pre_mapcount: int = 0
    pre_rw: bool = False
    post_pfn: int | None = None
    ok: bool = False  # the fault was handled (counted in min_flt/maj_flt)
    signal: str | None = None  # CPU faults: the signal it ended in
    vma: VmaInfo | None = None
    host_only: str | None = None  # classify.py: a fault only the host takes, and the rule
    pop_kind: str | None = None  # classify.py, populate: the page the host should end with


@dataclass
class ModelStep:
    op: OpSpec
    label: str
    result: OpResult | None
    events: list[FaultEvent] = field(default_factory=list)
    failure: str | None = None  # a ModelFailure (BUG, invariant) stopped the run here


def _vma_info(vma) -> VmaInfo | None:
    if vma is None:
        return None
    f = vma.vm_file
    if f is None:
        return VmaInfo(vma.vm_start, vma.vm_end, vma.vm_pgoff, vma.vm_flags, None)
    shmem = f.i_nlink == 0
    return VmaInfo(
        vma.vm_start,
        vma.vm_end,
        vma.vm_pgoff,
        vma.vm_flags,
        "[shmem]" if shmem else f.path,
        f.i_size,
        frozenset(f.mapping.page_tree) if shmem else None,
    )


def _cache_files(k) -> None:
    """The host writes every scenario file whole into tmpfs before the run, so
    each of its pages is in the page cache, uptodate, when the scenario
    starts: the model's files start the same way (a cached page changes
    which pages fault-around maps, and makes 2.6.15's filemap_nopage a hit
    instead of a read-around, which is a major fault the oracle does not
    tell from a minor one)."""
    from ..kernel.filemap import page_cache_read

    for f in k.files.values():
        if f.hugetlb or not f.i_nlink:
            continue
        for index in range((f.i_size + PAGE_SIZE - 1) >> PAGE_SHIFT):
            page_cache_read(f, index, k.current_node())


class ModelRun:
    """Steps a scenario through :class:`Runner`, one operation at a time."""

    def __init__(self, scenario: Scenario, semantics: str | None) -> None:
        # The host writes no core here (NOT_COMPARABLE_OPS), so neither does the model.
        self.runner = Runner(scenario, semantics, output_dir=None)
        self.k = self.runner.k
        _cache_files(self.k)
        self.events: list[FaultEvent] | None = None
        self._cpu: FaultEvent | None = None

    def ops(self) -> Iterator[tuple[OpSpec, str]]:
        """setup, each thread to completion in file order (``repeat`` times),
        final: the order of ``pagewalk run``."""
        sc = self.runner.scenario
        for op in sc.setup:
            yield op, op.step
        for thread in sc.threads:
            for r in range(thread.repeat):
                for op in thread.ops:
                    yield op, op.step if thread.repeat == 1 else f"{op.step}#{r + 1}"
        for op in sc.final:
            yield op, op.step

    def process_order(self) -> list[str]:
        return list(self.k.tasks)

    def _owner(self, mm) -> str:
        for name, t in self.k.tasks.items():
            if t.mm is mm:
                return name
        return "?"

    def _fill_pre(self, ev: FaultEvent, mm) -> None:
        pte = pte_at(mm, ev.addr)
        if pte & PTE_PRESENT_MASK:
            page = mm.k.alloc.mem_map[(pte & PTE_MASK) >> PAGE_SHIFT]
            ev.pre_present = True
            ev.pre_pfn = page.pfn
            ev.pre_anon = bool(page.flags & PG_anon)
            ev.pre_mapcount = page._mapcount + 1
            ev.pre_rw = bool(pte & 0x2)

    def _fill_post(self, ev: FaultEvent, mm) -> None:
        pte = pte_at(mm, ev.addr)
        if pte & PTE_PRESENT_MASK:
            ev.post_pfn = (pte & PTE_MASK) >> PAGE_SHIFT

    @contextmanager
    def recording(self):
        """Wrap the model's fault entry points while the run lasts."""
        from ..kernel import memory, mmu
        from ..kernel.mmap import find_vma

        orig_dpf = mmu.do_page_fault
        orig_hmf = getattr(memory, _HMF)
        run = self

        def do_page_fault(tsk, address, error_code):
            ev = FaultEvent("cpu", tsk.comm, address & ~4095, bool(error_code & 2))
            vma = find_vma(tsk.mm, address)
            ev.vma = _vma_info(vma if vma is not None and vma.vm_start <= address else None)
            run._fill_pre(ev, tsk.mm)
            if run.events is not None:
                run.events.append(ev)
            run._cpu = ev
            try:
                sig = orig_dpf(tsk, address, error_code)
            finally:
                run._cpu = None
            ev.signal = sig
            ev.ok = sig is None
            run._fill_post(ev, tsk.mm)
            return sig

        def handle_mm_fault(mm, vma, address, write_access):
            if run._cpu is not None:
                return orig_hmf(mm, vma, address, write_access)
            ev = FaultEvent("gup", run._owner(mm), address & ~4095, bool(write_access))
            ev.vma = _vma_info(vma)
            run._fill_pre(ev, mm)
            if run.events is not None:
                run.events.append(ev)
            ret = orig_hmf(mm, vma, address, write_access)
            ev.ok = (ret & ~VM_FAULT_WRITE) in (VM_FAULT_MINOR, VM_FAULT_MAJOR)
            run._fill_post(ev, mm)
            return ret

        mmu.do_page_fault = do_page_fault
        setattr(memory, _HMF, handle_mm_fault)
        try:
            yield self
        finally:
            mmu.do_page_fault = orig_dpf
            setattr(memory, _HMF, orig_hmf)

    def run_op(self, op: OpSpec, label: str) -> ModelStep:
        """Run one operation (inside :meth:`recording`)."""
        from ..errors import ModelFailure

        self.events = []
        step = ModelStep(op, label, None)
        try:
            step.result = self.runner.run_op(op)
        except ModelFailure as failure:
            step.failure = str(failure)
        step.events = self.events
        self.events = None
        return step
