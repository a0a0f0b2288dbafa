"""The runner after ``setup``, taken once per search, so that an execution
can start from a copy of it instead of re-running setup.

The copy is a pickle round trip (the C unpickler restores a small kernel
several times faster than ``copy.deepcopy``).  What is not state is shared,
not copied: the scenario, the semantics profile (frozen) and the
module-level ``vm_operations_struct`` tables.  Each allocator has its own
``Page`` subclass (its per-frame arrays are class attributes): the copy gets
one of its own, bound to the copy's arrays once loaded.  Making a class costs
about as much as a small setup, so :meth:`Snapshot.runner` retires the
runner it gave before (the explorer is done with an execution when it asks
for the next) and the next allocator takes its class over.

Every copy is the same state setup leaves -- the same pids, lock names,
allocator free lists and frame numbers, setup's results and ``as`` names --
because it is one state, pickled once.  Restoring is not always cheaper than
re-running a setup of one or two operations, so the snapshot measures both
once and restores only when that is faster; either way an execution starts
from an identical state.
"""

from __future__ import annotations

import io
import pickle
import time
from typing import Any

from ..errors import InputError, InternalError, ModelFailure, PagewalkError
from ..kernel.filemap import generic_file_vm_ops, shmem_vm_ops
from ..kernel.hugetlb import hugetlb_vm_ops
from ..kernel.page import spare_page_type
from ..scenario.model import Scenario
from ..scenario.runner import Runner

_PAGE_TYPE = -1  # the persistent id of the allocator's Page subclass
#: executions timed on each path before choosing the faster
_TRIALS = 5


def run_setup(scenario: Scenario, semantics: str | None, output_dir: str | None) -> Runner:
    """A runner that has run the scenario's setup.  A setup that fails is
    bad input: the scenario cannot be explored."""
    runner = Runner(scenario, semantics, output_dir=output_dir)
    try:
        runner.run_ops(scenario.setup)
    except ModelFailure as failure:
        raise InputError(f"the setup itself fails: {failure}") from None
    except PagewalkError:
        raise
    except Exception as err:
        raise InternalError.of(err, "setup") from None
    return runner


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, shared: dict[int, int], page_type: type) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.shared = shared
        self.page_type = page_type

    def persistent_id(self, obj: Any) -> int | None:
        if obj is self.page_type:
            return _PAGE_TYPE
        return self.shared.get(id(obj))


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, shared: list[Any]) -> None:
        super().__init__(io.BytesIO(data))
        self.shared = shared
        self.page_type: type | None = None

    def persistent_load(self, pid: int) -> Any:
        if pid != _PAGE_TYPE:
            return self.shared[pid]
        if self.page_type is None:  # persistent ids are not memoized: take it once
            self.page_type = spare_page_type()
        return self.page_type


class Snapshot:
    """The state after setup; :meth:`runner` gives each execution its own.

    Taken at the first execution (whose setup is the one pickled); the next
    executions time restoring and re-running setup in turn, ``_TRIALS``
    each, in CPU time, and the rest use the faster.  A search of a few
    executions thus never pays for more than it runs."""

    __slots__ = ("data", "last", "restores", "scenario", "semantics", "shared", "taken", "times")

    def __init__(
        self, scenario: Scenario, semantics: str | None, restore: bool | None = None
    ) -> None:
        """``restore``: always restore (True), always re-run setup (False), or
        whichever is faster here (None)."""
        self.scenario = scenario
        self.semantics = semantics
        self.restores = restore
        self.data = b""
        self.taken = False
        self.shared: list[Any] = []
        self.times: dict[bool, list[float]] = {False: [], True: []}
        self.last: Runner | None = None  # the runner given last

    def runner(self) -> Runner:
        """A runner in the state setup left, ready for the threads.  The one
        given before is finished with: its frames are retired
        (``PageAllocator.retire``), and reading their index or node raises."""
        if self.last is not None:
            last, self.last = self.last, None
            last.k.alloc.retire()
        self.last = runner = self._runner()
        return runner

    def _runner(self) -> Runner:
        if not self.taken:
            return self._take()
        if self.restores is not None:
            return self.restore() if self.restores else self._setup()
        # the two paths alternate, and are timed in CPU time, so that a
        # load that comes and goes does not decide for one of them
        restoring = len(self.times[True]) < len(self.times[False])
        begin = time.process_time()
        runner = self.restore() if restoring else self._setup()
        self.times[restoring].append(time.process_time() - begin)
        if min(len(self.times[True]), len(self.times[False])) >= _TRIALS:
            self.restores = min(self.times[True]) < min(self.times[False])
        return runner

    def restore(self) -> Runner:
        """A copy of the snapshot (whatever it costs)."""
        if not self.taken:
            self._take()
        if not self.data:  # the state could not be pickled
            return self._setup()
        loader = _Unpickler(self.data, self.shared)
        runner: Runner = loader.load()
        alloc = runner.k.alloc
        page_type = alloc.Page
        page_type._allocator = alloc
        page_type._index = alloc.index
        page_type._node = alloc.node
        return runner

    def _setup(self) -> Runner:
        return run_setup(self.scenario, self.semantics, None)

    def _take(self) -> Runner:
        """Run setup (timed) and pickle the state it leaves."""
        begin = time.process_time()
        runner = self._setup()
        self.times[False].append(time.process_time() - begin)
        self.shared = [self.scenario, runner.k.semantics, generic_file_vm_ops, shmem_vm_ops]
        self.shared.append(hugetlb_vm_ops)
        ids = {id(obj): i for i, obj in enumerate(self.shared)}
        buf = io.BytesIO()
        try:
            _Pickler(buf, ids, runner.k.alloc.Page).dump(runner)
        except (pickle.PicklingError, TypeError, AttributeError):
            # a state pickle cannot copy (a model object holding a closure):
            # every execution re-runs setup, as before snapshots
            self.restores = False
            self.taken = True
            return runner
        self.data = buf.getvalue()
        self.taken = True
        return runner
