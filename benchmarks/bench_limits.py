"""What huge-but-empty inputs cost (issue 10): walks over untouched terabytes
and large transfers.

Usage::

    python benchmarks/bench_limits.py [--json]

Figures (each the median of 3 runs, wall clock):

* ``numa_maps_1tib``: /proc/PID/numa_maps of examples/callers/core_dump_sparse.toml
  (a 1 TiB mapping with one pte table), after running the scenario untimed.
* ``munmap_64tib``: munmap of an untouched 64 TiB anonymous mapping.
* ``exit_64tib``: exit of a process holding an untouched 64 TiB mapping.
* ``run_json_64mib``: ``pagewalk run --json`` of a 64 MiB ``read`` plus a 64
  MiB ``mem_read`` in a child process, with the child's peak RSS and the size
  of its output.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pagewalk import Kernel, load_scenario, run_scenario

ROOT = Path(__file__).resolve().parent.parent
TiB = 1 << 40
MiB = 1 << 20

TRANSFERS = f"""
name = "transfers_64mib"
[[setup]]
op = "mmap"
length = {64 * MiB}
as = "m"
[[setup]]
op = "read"
addr = "m"
length = {64 * MiB}
[[setup]]
op = "mem_read"
addr = "m"
length = {64 * MiB}
"""


def _median_s(setup: Callable[[], Callable[[], object]], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        op = setup()
        t = time.perf_counter()
        op()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def numa_maps_1tib() -> Callable[[], object]:
    with tempfile.TemporaryDirectory() as out:
        scenario = load_scenario(ROOT / "examples/callers/core_dump_sparse.toml")
        k = run_scenario(scenario, output_dir=out, checks=False).kernel
    return lambda: k.proc_view("p", "numa_maps")


def munmap_64tib() -> Callable[[], object]:
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, 64 * TiB, "r")
    return lambda: k.munmap(p, a, 64 * TiB)


def exit_64tib() -> Callable[[], object]:
    k = Kernel()
    p = k.spawn("p")
    k.mmap(p, 64 * TiB, "r")
    return lambda: k.exit(p)


def run_json_64mib() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.toml"
        path.write_text(TRANSFERS)
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "pagewalk", "run", "--json", str(path)],
            capture_output=True,
            check=True,
        )
        elapsed = time.perf_counter() - t
        rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "wall_s": round(elapsed, 3),
        # the largest of all children's peaks: this is the only child
        "peak_rss_mb": round(rss_kib / 1024, 1),
        "output_bytes": len(proc.stdout),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report: dict[str, object] = {
        name: round(_median_s(setup), 4)
        for name, setup in (
            ("numa_maps_1tib_s", numa_maps_1tib),
            ("munmap_64tib_s", munmap_64tib),
            ("exit_64tib_s", exit_64tib),
        )
    }
    report["run_json_64mib"] = run_json_64mib()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for name, value in report.items():
            print(f"{name:20} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
