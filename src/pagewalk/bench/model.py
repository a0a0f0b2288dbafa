"""The model's side of ``pagewalk bench``: what the pagewalk model spends per
4 KiB page for the same operations, through the fastest public entry that
still runs the modelled kernel path for every page (:data:`ENTRY` names it).

Each repetition builds fresh :class:`~pagewalk.Kernel` objects; only the
measured operation runs between two ``time.perf_counter_ns()`` calls, after a
``gc.collect()``.  To keep a 1 GiB run affordable, operations that need the
same starting state share one kernel per repetition, in an order where each
finds exactly the state it needs:

* ``write_fault`` (N stores into an untouched mapping) *is* the populating of
  the mapping; then ``gup`` (pins and releases every page) and ``mem_read``
  (reads every page) leave the populated state as they found it; then
  ``fork`` (N populated pages), then ``cow_fault`` (the child of that fork
  writes every page).  An operation that is not selected still runs, untimed,
  when a later one needs its state.
* ``read_fault``, ``dontneed`` and ``munmap`` each get their own kernel
  (``dontneed`` and ``munmap`` after an untimed populating by stores).

After each timed region a few untimed checks make sure the operation did what
it should (one fault per page, the zero page or a private copy mapped, pins
released), so a broken model cannot report fast nonsense.
"""

from __future__ import annotations

import cProfile
import gc
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from typing import Any

from ..kernel.kernel import Kernel
from .host import MEM_CHUNK_PAGES

PAGE = 4096
ONE = b"\x01"

#: The public entry timed for each operation.
ENTRY = {
    "write_fault": "Kernel.write(p, addr, b'\\x01') per page",
    "read_fault": "Kernel.read(p, addr, 1) per page",
    "cow_fault": "Kernel.write(child, addr, b'\\x01') per page after Kernel.fork",
    "fork": "Kernel.fork(p, 'c'), minus Kernel.fork of the same process before populating, / N",
    "dontneed": "Kernel.madvise(p, addr, N pages, 'dontneed')",
    "munmap": "Kernel.munmap(p, addr, N pages)",
    "gup": "Kernel.gup(p, addr, N) + Kernel.put_pages(pages)",
    "mem_read": "Kernel.mem_readinto(p, addr, 1 MiB buffer) per 256 pages, one reused buffer as "
    "the kernel side's preadv (access_process_vm: one GUP and a copy per page)",
}

#: Chains of operations sharing one kernel per repetition, in order.
CHAINS = (
    ("write_fault", "gup", "mem_read", "fork", "cow_fault"),
    ("read_fault",),
    ("dontneed",),
    ("munmap",),
)

Progress = Callable[[str], None]


class ModelCheckFailed(RuntimeError):
    """An operation did not do what it should: the figure would be meaningless."""


def _expect(cond: bool, what: str) -> None:
    if not cond:
        raise ModelCheckFailed(f"model sanity check failed: {what}")


#: A cProfile.Profile enabled around the timed regions only (``--profile``).
_profiler: cProfile.Profile | None = None


def profile_timed_regions(profiler: cProfile.Profile | None) -> None:
    """Profile every later timed region with ``profiler`` (None: stop)."""
    global _profiler
    _profiler = profiler


def _timed(op: Callable[[], Any]) -> tuple[int, Any]:
    gc.collect()  # every timed region starts from the same collector state
    profiler = _profiler
    if profiler is not None:
        profiler.enable()
    t0 = time.perf_counter_ns()
    result = op()
    t1 = time.perf_counter_ns()
    if profiler is not None:
        profiler.disable()
    return t1 - t0, result


def _fresh(n: int) -> tuple[Kernel, Any, int]:
    k = Kernel()
    p = k.spawn("p")
    addr = k.mmap(p, n * PAGE, "rw")
    _expect(addr > 0, f"mmap of {n} pages returned {addr}")
    return k, p, addr


def _touch(k: Kernel, proc: Any, addr: int, n: int, write: bool) -> int:
    """One 1-byte store (``write``) or load per page of the ``n`` pages at
    ``addr``, through ``Kernel.write`` / ``Kernel.read``; returns how many got
    a signal."""
    access, arg = (k.write, ONE) if write else (k.read, 1)
    bad = 0
    for a in range(addr, addr + n * PAGE, PAGE):
        if access(proc, a, arg).signal is not None:
            bad += 1
    return bad


def _populated_chain(n: int, want: set[str], progress: Progress) -> dict[str, tuple[float, dict]]:
    out: dict[str, tuple[float, dict]] = {}
    k, p, addr = _fresh(n)
    end = addr + n * PAGE
    base_fork = 0
    if "fork" in want:
        base_fork, pid = _timed(lambda: k.fork(p, "base"))
        _expect(pid > 0, f"baseline fork returned {pid}")
        k.exit("base")

    if "write_fault" in want:
        progress("write_fault")
    faults0 = k.pgfault
    elapsed, bad = _timed(partial(_touch, k, p, addr, n, True))
    _expect(bad == 0, "write_fault: a store got a signal")
    _expect(k.pgfault - faults0 == n, f"write_fault: {k.pgfault - faults0} faults, not {n}")
    _expect(k.page(p, end - PAGE) not in (None, k.zero_page), "write_fault: no private page")
    if "write_fault" in want:
        out["write_fault"] = (elapsed / n, {})

    if "gup" in want:
        progress("gup")

        def gup() -> int:
            ret, pages = k.gup(p, addr, n)
            k.put_pages(pages)
            return ret

        elapsed, ret = _timed(gup)
        _expect(ret == n, f"gup returned {ret}, not {n}")
        _expect(not k.pins, "gup: pins left behind")
        out["gup"] = (elapsed / n, {})

    if "mem_read" in want:
        progress("mem_read")
        chunk = min(n, MEM_CHUNK_PAGES) * PAGE

        buf = bytearray(b"\xff" * chunk)  # pre-faulted, as the kernel side's

        def mem_read() -> tuple[int, bytearray]:
            readinto = k.mem_readinto
            done = 0
            for a in range(addr, end, chunk):
                done += readinto(p, a, buf)
            return done, buf

        elapsed, (done, last) = _timed(mem_read)
        _expect(done == n * PAGE, f"mem_read: {done} bytes, not {n * PAGE}")
        _expect(
            last[0] == 1 and last[-PAGE] == 1 and not any(last[1:PAGE]), "mem_read: wrong contents"
        )
        out["mem_read"] = (elapsed / n, {})

    if "fork" in want or "cow_fault" in want:
        if "fork" in want:
            progress("fork")
        elapsed, pid = _timed(lambda: k.fork(p, "c"))
        _expect(pid > 0, f"fork returned {pid}")
        _expect(k.page("c", addr) is k.page(p, addr), "fork: the child does not share the page")
        if "fork" in want:
            out["fork"] = (
                (elapsed - base_fork) / n,
                {"fork_ns": elapsed, "baseline_fork_ns": base_fork},
            )

    if "cow_fault" in want:
        progress("cow_fault")
        c = k.tasks["c"]
        faults0 = k.pgfault
        elapsed, bad = _timed(partial(_touch, k, c, addr, n, True))
        _expect(bad == 0, "cow_fault: a store got a signal")
        _expect(k.pgfault - faults0 == n, f"cow_fault: {k.pgfault - faults0} faults, not {n}")
        for a in (addr, end - PAGE):
            _expect(k.page(c, a) is not k.page(p, a), "cow_fault: page still shared")
        out["cow_fault"] = (elapsed / n, {})
    return out


def _read_fault_chain(n: int, want: set[str], progress: Progress) -> dict[str, tuple[float, dict]]:
    k, p, addr = _fresh(n)
    progress("read_fault")
    faults0 = k.pgfault
    elapsed, bad = _timed(partial(_touch, k, p, addr, n, False))
    _expect(bad == 0, "read_fault: a load got a signal")
    _expect(k.pgfault - faults0 == n, f"read_fault: {k.pgfault - faults0} faults, not {n}")
    _expect(k.page(p, addr + (n - 1) * PAGE) is k.zero_page, "read_fault: zero page not mapped")
    return {"read_fault": (elapsed / n, {})}


def _zap_chain(
    name: str,
    zap: Callable[[Kernel, Any, int, int], int],
    gone: Callable[[Kernel, Any, int], bool],
    n: int,
    want: set[str],
    progress: Progress,
) -> dict[str, tuple[float, dict]]:
    """Populate N pages (untimed), time ``zap(k, p, addr, length)`` over them,
    and check it returned 0 and that ``gone(k, p, addr)``."""
    k, p, addr = _fresh(n)
    _expect(_touch(k, p, addr, n, True) == 0, f"{name}: populating failed")
    progress(name)
    elapsed, ret = _timed(partial(zap, k, p, addr, n * PAGE))
    _expect(ret == 0 and gone(k, p, addr), f"{name} returned {ret}")
    return {name: (elapsed / n, {})}


def _dontneed(k: Kernel, p: Any, addr: int, length: int) -> int:
    return k.madvise(p, addr, length, "dontneed")


_RUN_CHAIN = {
    CHAINS[0]: _populated_chain,
    CHAINS[1]: _read_fault_chain,
    CHAINS[2]: partial(
        _zap_chain, "dontneed", _dontneed, lambda k, p, addr: k.page(p, addr) is None
    ),
    CHAINS[3]: partial(
        _zap_chain, "munmap", Kernel.munmap, lambda k, p, addr: k.vma(p, addr) is None
    ),
}


def run_model(
    n: int,
    names: list[str],
    repeat: int,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, list[tuple[float, dict]]]:
    """``repeat`` runs of each selected operation: name -> [(ns/page, detail)]."""
    want = set(names)
    runs: dict[str, list[tuple[float, dict]]] = {name: [] for name in names}
    for chain in CHAINS:
        if not want.intersection(chain):
            continue
        for rep in range(repeat):

            def note(name: str, rep: int = rep) -> None:
                if progress is not None:
                    progress(name, rep)

            for name, value in _RUN_CHAIN[chain](n, want, note).items():
                runs[name].append(value)
            gc.collect()  # free the kernel (its structures hold cycles), untimed
    return runs


# --- memory --------------------------------------------------------------------------------
def measure_memory(n: int) -> dict[str, Any]:
    """The model's bytes per resident anonymous page, contents excluded."""
    k, p, addr = _fresh(n)
    pins0 = sys.getsizeof(k.pins)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        ret, pages = k.gup(p, addr, n, write=True, force=False)
        _expect(ret == n, f"gup(write=1) returned {ret}")
        _expect(all(page.data is None for page in pages), "gup(write=1) materialised contents")
        k.put_pages(pages)  # the pages stay mapped: only the pins go
        del pages
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # The emptied Kernel.pins dict keeps the capacity it grew to while the pins
    # were held: not state of a resident page.
    residue = sys.getsizeof(k.pins) - pins0
    return {
        "pages": n,
        "model_bytes_per_page": round((after - before - residue) / n, 1),
        "kernel_bytes_per_page": 72,
        "kernel_breakdown": "64 B struct page + 8 B pte",
        "method": "tracemalloc, traced bytes after minus before / N, over Kernel.gup(write=1) "
        "+ put_pages on an untouched anonymous mapping (pages faulted in through the "
        "write path, contents left unmaterialised): struct page, its mem_map slot, "
        "its pte and the page-table pages amortised; minus the capacity the emptied "
        "Kernel.pins dict keeps",
    }


# --- the sparse core dump --------------------------------------------------------------------
SPARSE_BYTES = 1 << 40
#: The addendum of shared/reference/host-kernel-observables.md (not measured here).
SPARSE_KERNEL_REFERENCE = {
    "seconds": 8.58,
    "disk_bytes": 7 << 20,
    "source": "host-kernel-observables.md, addendum (1 TiB, reference, not measured here)",
}


def measure_sparse_core() -> dict[str, Any]:
    """Core dump of a process with a 1 TiB read-only anonymous mapping and one
    force-written page: time, page tables before/after, core size on disk."""
    k = Kernel()
    p = k.spawn("p")
    addr = k.mmap(p, SPARSE_BYTES, "r")
    _expect(addr > 0, f"mmap of 1 TiB returned {addr}")
    poke = addr + 300 * (1 << 30) + 7 * PAGE
    _expect(k.mem_write(p, poke, b"core") == 4, "forced write failed")
    tables_before = k.page_tables(p)
    with tempfile.TemporaryDirectory(prefix="pagewalk-bench-") as tmp:
        path = os.path.join(tmp, "core")
        elapsed, size = _timed(lambda: k.core_dump(p, path))
        st = os.stat(path)
        _expect(size == st.st_size and size > SPARSE_BYTES, f"core_dump returned {size}")
        disk = st.st_blocks * 512
    return {
        "mapping_bytes": SPARSE_BYTES,
        "model_seconds": round(elapsed / 1e9, 4),
        "page_tables_before": tables_before,
        "page_tables_after": k.page_tables(p),
        "core_apparent_bytes": size,
        "core_disk_bytes": disk,
        "kernel_reference": SPARSE_KERNEL_REFERENCE,
    }
