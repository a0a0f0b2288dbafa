"""Per-page cost of the pagewalk model, next to the real kernel's.

Usage::

    python benchmarks/bench_model.py [--pages N] [--repeat R] [--json]
                                     [--only NAME[,NAME...]] [--profile] [--no-memory]

Each benchmark builds a fresh :class:`pagewalk.Kernel`, does its setup
untimed, then times only the operation with ``time.perf_counter_ns`` and
divides by the number of pages.  The figure reported is the median of R
repetitions.  The kernel column holds reference figures measured on the real
kernel of this kind of machine (``/work/shared/reference/host-kernel-observables.md``
section 8); they are *not* measured by this script.

The module is importable: ``run_one(name, n)`` returns the elapsed nanoseconds
of one run, ``run_benchmarks()`` / ``measure_memory()`` / ``machine_info()``
build the report, and ``main(argv)`` is the command line.  See
``benchmarks/README.md`` for what each figure means.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from pagewalk import Kernel
from pagewalk.bench.model import _touch

PAGE_SIZE = 4096
ONE = b"\x01"
REFERENCE_SOURCE = "/work/shared/reference/host-kernel-observables.md, section 8"

#: Real-kernel ns per 4 KiB page on this kind of machine (reference, not
#: measured here).  "net" figures where the reference gives one (the C loop
#: cost over mapped memory subtracted), otherwise the median.
KERNEL_REFERENCE_NS: dict[str, float] = {
    "write_fault": 1276,  # write fault, untouched anon (net)
    "read_fault": 413,  # read fault, untouched anon, maps the zero page (net)
    "cow_fault": 2296,  # COW write fault in a fork child (net; 4535 gross in run1)
    "fork": 27,  # fork() per populated page (40 in run1)
    "dontneed": 96,  # MADV_DONTNEED, populated
    "munmap": 96,  # munmap, populated
    "gup": 305,  # process_vm_readv 1 byte per page, GUP per page (net)
    "mem_read": 1181,  # pread /proc/self/mem, populated (GUP + 2 copies)
}

KERNEL_REFERENCE_NOTES: dict[str, str] = {
    "write_fault": "write fault, untouched anon (net)",
    "read_fault": "read fault, untouched anon -> zero page (net)",
    "cow_fault": "COW fault in fork child (net; range 2300-4500 across runs)",
    "fork": "fork(), per populated page (27-40 across runs)",
    "dontneed": "MADV_DONTNEED, populated",
    "munmap": "munmap, populated",
    "gup": "process_vm_readv 1 byte/page, GUP per page (net)",
    "mem_read": "pread /proc/self/mem, populated",
}


# --- setup helpers (never timed) ----------------------------------------------------------
def _mapping(n: int) -> tuple[Kernel, Any, int]:
    """A fresh kernel, one process, an untouched anonymous private rw mapping of n pages."""
    k = Kernel()
    p = k.spawn("p")
    addr = k.mmap(p, n * PAGE_SIZE, "rw")
    if addr < 0:
        raise RuntimeError(f"mmap of {n} pages failed: {addr}")
    return k, p, addr


def _populate(k: Kernel, p: Any, addr: int, n: int) -> None:
    """Write one byte to each page (anonymous pages with materialised contents)."""
    write = k.write
    for a in range(addr, addr + n * PAGE_SIZE, PAGE_SIZE):
        if write(p, a, ONE).signal is not None:
            raise RuntimeError(f"populate: signal at {a:#x}")


def _populated(n: int) -> tuple[Kernel, Any, int]:
    k, p, addr = _mapping(n)
    _populate(k, p, addr, n)
    return k, p, addr


@dataclass
class Case:
    """A prepared benchmark: ``op()`` is the timed part, ``check(result)`` verifies
    its outcome afterwards (untimed) and releases anything it holds."""

    op: Callable[[], Any]
    check: Callable[[Any], None]


def _expect(cond: bool, what: str) -> None:
    if not cond:
        raise RuntimeError(f"benchmark sanity check failed: {what}")


# --- the benchmarks: prepare_<name>(n) -> Case --------------------------------------------
def prepare_write_fault(n: int) -> Case:
    k, p, addr = _mapping(n)
    end = addr + n * PAGE_SIZE
    faults0 = k.pgfault

    def check(bad: int) -> None:
        _expect(bad == 0, "write_fault: a write got a signal")
        _expect(k.pgfault - faults0 == n, f"write_fault: {k.pgfault - faults0} faults, not {n}")
        _expect(k.page(p, end - PAGE_SIZE) is not k.zero_page, "write_fault: zero page mapped")

    return Case(partial(_touch, k, p, addr, n, True), check)


def prepare_read_fault(n: int) -> Case:
    k, p, addr = _mapping(n)
    end = addr + n * PAGE_SIZE
    faults0 = k.pgfault

    def check(bad: int) -> None:
        _expect(bad == 0, "read_fault: a read got a signal")
        _expect(k.pgfault - faults0 == n, f"read_fault: {k.pgfault - faults0} faults, not {n}")
        _expect(k.page(p, addr) is k.zero_page, "read_fault: zero page not mapped")
        _expect(k.page(p, end - PAGE_SIZE) is k.zero_page, "read_fault: zero page not mapped")

    return Case(partial(_touch, k, p, addr, n, False), check)


def prepare_cow_fault(n: int) -> Case:
    k, p, addr = _populated(n)
    _expect(k.fork(p, "c") > 0, "cow_fault: fork failed")
    c = k.tasks["c"]
    end = addr + n * PAGE_SIZE
    faults0 = k.pgfault

    def check(bad: int) -> None:
        _expect(bad == 0, "cow_fault: a write got a signal")
        _expect(k.pgfault - faults0 == n, f"cow_fault: {k.pgfault - faults0} faults, not {n}")
        for a in (addr, end - PAGE_SIZE):
            _expect(k.page(c, a) is not k.page(p, a), "cow_fault: page still shared")

    return Case(partial(_touch, k, c, addr, n, True), check)


def prepare_fork(n: int) -> Case:
    k, p, addr = _populated(n)

    def op() -> int:
        return k.fork(p, "c")

    def check(pid: int) -> None:
        _expect(pid > 0, f"fork returned {pid}")
        _expect(k.page("c", addr) is k.page(p, addr), "fork: child does not share the page")

    return Case(op, check)


def prepare_dontneed(n: int) -> Case:
    k, p, addr = _populated(n)

    def op() -> int:
        return k.madvise(p, addr, n * PAGE_SIZE, "dontneed")

    def check(ret: int) -> None:
        _expect(ret == 0, f"madvise returned {ret}")
        _expect(k.page(p, addr) is None, "dontneed: page still mapped")

    return Case(op, check)


def prepare_munmap(n: int) -> Case:
    k, p, addr = _populated(n)

    def op() -> int:
        return k.munmap(p, addr, n * PAGE_SIZE)

    def check(ret: int) -> None:
        _expect(ret == 0, f"munmap returned {ret}")
        _expect(k.vma(p, addr) is None, "munmap: vma still there")

    return Case(op, check)


def prepare_gup(n: int) -> Case:
    k, p, addr = _populated(n)

    def op() -> tuple[int, list]:
        return k.gup(p, addr, n, write=False, force=False)

    def check(result: tuple[int, list]) -> None:
        ret, pages = result
        _expect(ret == n and len(pages) == n, f"gup returned {ret}")
        k.put_pages(pages)  # release the pins (untimed)
        _expect(not k.pins, "gup: pins left behind")

    return Case(op, check)


def prepare_mem_read(n: int) -> Case:
    k, p, addr = _populated(n)
    end = addr + n * PAGE_SIZE

    def op() -> int:
        mem_read = k.mem_read
        bad = 0
        for a in range(addr, end, PAGE_SIZE):
            if mem_read(p, a, 1) != (1, ONE):
                bad += 1
        return bad

    def check(bad: int) -> None:
        _expect(bad == 0, "mem_read: a read returned the wrong bytes")

    return Case(op, check)


PREPARE: dict[str, Callable[[int], Case]] = {
    "write_fault": prepare_write_fault,
    "read_fault": prepare_read_fault,
    "cow_fault": prepare_cow_fault,
    "fork": prepare_fork,
    "dontneed": prepare_dontneed,
    "munmap": prepare_munmap,
    "gup": prepare_gup,
    "mem_read": prepare_mem_read,
}


def time_case(case: Case, profiler: cProfile.Profile | None = None) -> int:
    """Run ``case.op`` once; the elapsed ns of the op alone (check excluded)."""
    gc.collect()  # start each timed region from the same collector state
    if profiler is not None:
        profiler.enable()
    t0 = time.perf_counter_ns()
    result = case.op()
    t1 = time.perf_counter_ns()
    if profiler is not None:
        profiler.disable()
    case.check(result)
    return t1 - t0


def run_one(name: str, n: int, profiler: cProfile.Profile | None = None) -> int:
    """One repetition of benchmark ``name`` on a fresh Kernel: elapsed ns."""
    return time_case(PREPARE[name](n), profiler)


def run_benchmarks(
    n: int, repeat: int, names: list[str] | None = None, profiler: cProfile.Profile | None = None
) -> list[dict[str, Any]]:
    """Median ns/page over ``repeat`` fresh-Kernel runs of each benchmark."""
    results = []
    for name in names or list(PREPARE):
        runs = [run_one(name, n, profiler) / n for _ in range(repeat)]
        model = statistics.median(runs)
        ref = KERNEL_REFERENCE_NS[name]
        results.append(
            {
                "name": name,
                "pages": n,
                "model_ns_per_page": round(model, 1),
                "kernel_ns_per_page_reference": ref,
                "ratio": round(model / ref, 2),
                "model_ns_per_page_runs": [round(r, 1) for r in runs],
            }
        )
    return results


# --- memory -------------------------------------------------------------------------------
def _traced_delta(setup: Callable[[], tuple], action: Callable[..., None]) -> int:
    """Bytes still allocated after ``action(*setup())`` (tracemalloc), setup excluded."""
    state = setup()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        action(*state)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del state
    return after - before


def measure_memory(n: int) -> dict[str, Any]:
    """Bytes per page of the model's resident-page bookkeeping (tracemalloc)."""

    def setup() -> tuple:
        return _mapping(n)

    def write_each(k: Kernel, p: Any, addr: int) -> None:
        _populate(k, p, addr, n)

    pin_residue: list[int] = []

    def gup_write(k: Kernel, p: Any, addr: int) -> None:
        pins0 = sys.getsizeof(k.pins)
        ret, pages = k.gup(p, addr, n, write=True, force=False)
        _expect(ret == n, f"gup(write=1) returned {ret}")
        _expect(all(page.data is None for page in pages), "gup(write=1) materialised contents")
        k.put_pages(pages)  # the pages stay mapped: only the pins go
        # Kernel.pins (a dict) keeps the capacity it grew to while n pins were
        # held; that is not per-resident-page state, so it is reported apart.
        pin_residue.append(sys.getsizeof(k.pins) - pins0)

    def read_each(k: Kernel, p: Any, addr: int) -> None:
        _touch(k, p, addr, n, False)

    with_contents = _traced_delta(setup, write_each) / n
    without_contents = (_traced_delta(setup, gup_write) - pin_residue[0]) / n
    zero_page = _traced_delta(setup, read_each) / n
    return {
        "pages": n,
        "anon_page_with_contents_bytes_per_page": round(with_contents, 1),
        "anon_page_without_contents_bytes_per_page": round(without_contents, 1),
        "contents_bytes_per_page": round(with_contents - without_contents, 1),
        "zero_page_pte_bytes_per_page": round(zero_page, 1),
        "gup_pin_table_residue_bytes_per_page": round(pin_residue[0] / n, 1),
        "method": (
            "tracemalloc, traced bytes after minus before, divided by pages. "
            "with_contents: k.write of 1 byte per page (includes the 4 KiB contents "
            "bytearray a written page materialises). without_contents: "
            "k.gup(write=True, force=False) then put_pages, which faults anon pages in "
            "with write access but leaves contents unmaterialised (data=None): struct "
            "page + PTE + page-table pages + mem_map slot, minus the capacity the emptied "
            "Kernel.pins dict keeps (gup_pin_table_residue, sys.getsizeof). "
            "zero_page_pte: read fault per page, zero page mapped (PTEs and page tables only)."
        ),
    }


# --- report -------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }


def format_table(
    results: list[dict[str, Any]],
    n: int,
    repeat: int,
    memory: dict[str, Any] | None,
    machine: dict[str, Any],
) -> str:
    out = io.StringIO()
    w = out.write
    w(
        f"pagewalk model cost per 4 KiB page: {n} pages ({n * PAGE_SIZE / 2**20:g} MiB), "
        f"median of {repeat} runs, fresh Kernel per run, setup not timed\n\n"
    )
    w(
        f"{'name':<12} {'pages':>7} {'model ns/page':>14} {'kernel ns/page*':>16} "
        f"{'model/kernel':>13}  {'model runs (ns/page)'}\n"
    )
    w("-" * 100 + "\n")
    for r in results:
        runs = " ".join(f"{x:.0f}" for x in r["model_ns_per_page_runs"])
        w(
            f"{r['name']:<12} {r['pages']:>7} {r['model_ns_per_page']:>14.1f} "
            f"{r['kernel_ns_per_page_reference']:>16g} {r['ratio']:>12.1f}x  {runs}\n"
        )
    w(
        "\n* kernel ns/page: REFERENCE, NOT MEASURED HERE -- the real Linux kernel on this kind\n"
        f"  of machine, from {REFERENCE_SOURCE} (1 GiB, medians):\n"
    )
    for r in results:
        w(f"    {r['name']:<12} {KERNEL_REFERENCE_NOTES[r['name']]}\n")
    if memory is not None:
        m = memory
        w(f"\nmemory per resident anonymous page (tracemalloc, {m['pages']} pages):\n")
        w(
            f"  written page, contents included (1-byte write materialises 4 KiB): "
            f"{m['anon_page_with_contents_bytes_per_page']:>8.1f} B/page\n"
        )
        w(
            f"  faulted with write access, no contents (gup write=1; struct page + "
            f"PTE + tables): {m['anon_page_without_contents_bytes_per_page']:>6.1f} B/page\n"
        )
        w(
            f"  of which page contents: {m['contents_bytes_per_page']:.1f} B/page;  "
            f"zero-page mapping (read fault): {m['zero_page_pte_bytes_per_page']:.1f} B/page\n"
        )
        w(
            f"  (not counted above: the emptied Kernel.pins dict keeps "
            f"{m['gup_pin_table_residue_bytes_per_page']:.1f} B/page of capacity after gup)\n"
        )
    w(
        f"\nmachine: Python {machine['python']} ({machine['implementation']}), "
        f"{machine['platform']}, {machine['cpu_count']} CPUs\n"
    )
    return out.getvalue()


def format_profile(profiler: cProfile.Profile, top: int) -> str:
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Per-page cost of the pagewalk model.")
    ap.add_argument("--pages", type=int, default=16384, help="pages per benchmark (16384)")
    ap.add_argument("--repeat", type=int, default=5, help="repetitions; median reported (5)")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    ap.add_argument(
        "--only",
        default="",
        help="comma-separated benchmark names (default: all): " + ",".join(PREPARE),
    )
    ap.add_argument("--no-memory", action="store_true", help="skip the tracemalloc figures")
    ap.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=15,
        default=0,
        metavar="TOP",
        help="cProfile the timed regions only; print the TOP (15) by cumtime",
    )
    args = ap.parse_args(argv)
    if args.pages < 1 or args.repeat < 1:
        ap.error("--pages and --repeat must be at least 1")
    names = [s for s in args.only.split(",") if s] or list(PREPARE)
    unknown = [s for s in names if s not in PREPARE]
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(unknown)}")

    profiler = cProfile.Profile() if args.profile else None
    results = run_benchmarks(args.pages, args.repeat, names, profiler)
    memory = None if args.no_memory else measure_memory(args.pages)
    machine = machine_info()
    if args.json:
        print(
            json.dumps(
                {
                    "results": results,
                    "memory": memory,
                    "machine": machine,
                    "config": {
                        "pages": args.pages,
                        "repeat": args.repeat,
                        "kernel_reference": REFERENCE_SOURCE + " (reference, not measured here)",
                    },
                },
                indent=2,
            )
        )
    else:
        print(format_table(results, args.pages, args.repeat, memory, machine), end="")
    if profiler is not None:
        print(format_profile(profiler, args.profile), end="", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
