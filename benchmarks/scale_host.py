"""This machine's side of ``pagewalk scale``: the local costs the model is
calibrated with, and pft on the host kernel with 1 and 2 threads.

    .venv/bin/python benchmarks/scale_host.py            # about 20 s
    .venv/bin/python benchmarks/scale_host.py --json

Calibration (ns per 4 KiB page, median of the runs):

* ``clear_page``: one ``memset`` over a populated 64 MiB region (out of the
  caches), divided by its pages: what clear_page costs the kernel.
* ``copy_page``: one ``memmove`` between two populated 64 MiB regions.
* ``write_fault`` is ``pagewalk bench --only write_fault`` (a 1-byte store per
  page of a fresh anonymous mapping, net of the loop): run that for it.

pft host check: each of T threads (T = 1, then 2) maps its own anonymous
region (``MADV_NOHUGEPAGE``) and then, released together, faults it in with
one ``ctypes`` ``memset`` (which drops the GIL, so the threads fault in
parallel on the host kernel).  A memset writes every byte, not pft's one per
page, so each fault also carries a page of user stores; ``fault/wsec`` is
pages over the wall time from the release to the last thread's end and
``flt/cpu/s`` pages over the process's user+system time in that interval.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import statistics
import sys
import threading
import time

from pagewalk.hostlibc import LIBC_PROBLEM, MADV_NOHUGEPAGE, libc

PAGE = 4096
PROT_RW = 0x3
MAP_PRIVATE_ANON = 0x02 | 0x20

libc_memset = ctypes.CDLL(None).memset if LIBC_PROBLEM is None else None
if libc_memset is not None:
    libc_memset.restype = ctypes.c_void_p
    libc_memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    libc_memmove = ctypes.CDLL(None).memmove
    libc_memmove.restype = ctypes.c_void_p
    libc_memmove.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]


def _map(length: int) -> int:
    addr = libc.mmap(None, length, PROT_RW, MAP_PRIVATE_ANON, -1, 0)
    if addr in (None, ctypes.c_void_p(-1).value):
        raise SystemExit("mmap failed")
    libc.madvise(addr, length, MADV_NOHUGEPAGE)
    return addr


def clear_and_copy(pages: int, runs: int) -> dict[str, float]:
    """ns per page of memset (clear_page) and memmove (copy_page) out of cache."""
    length = pages * PAGE
    a, b = _map(length), _map(length)
    libc_memset(a, 1, length)  # populate both
    libc_memset(b, 1, length)
    clears, copies = [], []
    for _ in range(runs):
        t = time.perf_counter_ns()
        libc_memset(a, 0, length)
        clears.append((time.perf_counter_ns() - t) / pages)
        t = time.perf_counter_ns()
        libc_memmove(b, a, length)
        copies.append((time.perf_counter_ns() - t) / pages)
    libc.munmap(a, length)
    libc.munmap(b, length)
    return {"clear_page_ns": statistics.median(clears), "copy_page_ns": statistics.median(copies)}


def pft(threads: int, pages_per_thread: int) -> dict[str, float]:
    """One pft run on the host: T threads, each faulting its own region."""
    length = pages_per_thread * PAGE
    regions = [_map(length) for _ in range(threads)]
    go = threading.Barrier(threads + 1)
    ends = [0] * threads

    def worker(i: int) -> None:
        go.wait()
        libc_memset(regions[i], ord("r"), length)
        ends[i] = time.perf_counter_ns()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter_ns()
    go.wait()
    for w in workers:
        w.join()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    wall = (max(ends) - start) / 1e9
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    for r in regions:
        libc.munmap(r, length)
    faults = threads * pages_per_thread
    return {
        "threads": threads,
        "faults": faults,
        "wall_s": wall,
        "cpu_s": cpu,
        "fault_per_wsec": faults / wall,
        "flt_per_cpu_s": faults / cpu if cpu > 0 else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=65536, help="pages per thread (default 256 MiB)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if LIBC_PROBLEM is not None:
        print(f"host unavailable: {LIBC_PROBLEM}", file=sys.stderr)
        return 1
    out: dict[str, object] = clear_and_copy(16384, args.runs)
    runs: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    for _ in range(args.runs):
        for t in (1, 2):
            runs[t].append(pft(t, args.pages))
    best = {}
    for t, rs in runs.items():
        best[t] = {
            "threads": t,
            "fault_per_wsec": statistics.median(r["fault_per_wsec"] for r in rs),
            "flt_per_cpu_s": statistics.median(r["flt_per_cpu_s"] for r in rs),
            "runs_fault_per_wsec": [round(r["fault_per_wsec"]) for r in rs],
        }
    out["pft"] = [best[1], best[2]]
    out["ratio_2_to_1"] = best[2]["fault_per_wsec"] / best[1]["fault_per_wsec"]
    out["cpus_online"] = os.cpu_count()
    out["loadavg"] = os.getloadavg()
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"clear_page (memset 4 KiB, out of cache): {out['clear_page_ns']:.1f} ns")
    print(f"copy_page  (memmove 4 KiB, out of cache): {out['copy_page_ns']:.1f} ns")
    print(f"pft on this kernel, {args.pages} pages per thread, median of {args.runs}:")
    print(f"{'Thr':>4} {'flt/cpu/s':>12} {'fault/wsec':>12}  runs (fault/wsec)")
    for r in out["pft"]:
        runs_txt = " ".join(str(x) for x in r["runs_fault_per_wsec"])
        print(
            f"{r['threads']:>4} {r['flt_per_cpu_s']:12.0f} {r['fault_per_wsec']:12.0f}  {runs_txt}"
        )
    print(f"2 threads / 1 thread (fault/wsec): {out['ratio_2_to_1']:.2f}")
    load = ", ".join(f"{x:.2f}" for x in out["loadavg"])
    print(f"{out['cpus_online']} CPUs online, load average {load} (other work shares them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
