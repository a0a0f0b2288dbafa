"""Explorer memory against the number of executions (issue 13): the resident
set of one long dfs, read at growing execution counts.  A search keeps the
current path of its tree, its counts and the violations found, so memory
should stay flat however many executions it runs.

Usage::

    python benchmarks/bench_explore_memory.py [--executions N] [--checkpoint FILE] [--json]

The search: ``benchmarks/explore_memory.toml`` under 2.6.15 (three threads,
far more than a million interleavings), ``--strategy dfs``, stopped by
``--max-executions N`` (default 1,000,000; about 10 minutes at 2,000
executions/s).  At 10^4, 10^5, 2*10^5, 5*10^5 and 10^6 executions (those up
to N) it prints VmRSS (resident now) and VmHWM (the peak so far) from
/proc/self/status, in MiB.  ``--checkpoint FILE`` also writes a checkpoint
every 5 s, as ``pagewalk explore --checkpoint`` does.  Linux only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from pagewalk.explore import explore
from pagewalk.scenario.loader import load_scenario

SCENARIO = Path(__file__).resolve().parent / "explore_memory.toml"
MARKS = (10_000, 100_000, 200_000, 500_000, 1_000_000)


def memory_mib() -> dict[str, float]:
    """VmRSS and VmHWM of this process, in MiB."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024  # kB
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--executions", type=int, default=1_000_000)
    ap.add_argument("--checkpoint", metavar="FILE")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    marks = [m for m in MARKS if m <= args.executions] or [args.executions]
    rows: list[dict] = []

    def progress(executions: int, violations: int, elapsed: float) -> None:
        if executions in marks and (not rows or rows[-1]["executions"] != executions):
            rows.append({"executions": executions, "elapsed_s": round(elapsed, 1), **memory_mib()})
            if not args.json:
                r = rows[-1]
                print(
                    f"{executions:>9,} executions  {elapsed:8.1f} s  "
                    f"VmRSS {r['VmRSS']:7.1f} MiB  VmHWM {r['VmHWM']:7.1f} MiB",
                    flush=True,
                )

    start = time.perf_counter()
    res = explore(
        load_scenario(SCENARIO),
        "2.6.15",
        "dfs",
        max_executions=args.executions,
        stop_first=False,
        shorten=False,
        progress=progress,
        **({"checkpoint": args.checkpoint} if args.checkpoint else {}),
    )
    wall = time.perf_counter() - start
    if args.json:
        print(json.dumps({"executions": res.executions, "wall_s": round(wall, 1), "marks": rows}))
    else:
        print(f"{res.status}: {res.executions:,} executions in {wall:.0f} s")
    first, last = rows[0]["VmHWM"], rows[-1]["VmHWM"]
    if len(rows) > 1 and not args.json:
        print(
            f"peak growth from {rows[0]['executions']:,} to {rows[-1]['executions']:,}: "
            f"{100 * (last - first) / first:+.1f} %"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
