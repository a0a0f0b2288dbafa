"""Explorer throughput (issue 13): executions per second of a complete dfs,
each execution re-running setup (the old path) against each starting from
the snapshot taken after setup, in the same run.

Usage::

    python benchmarks/bench_explore.py [--repeat N] [--json]
    python benchmarks/bench_explore.py --against DIR [--repeat N] [--json]
    python benchmarks/bench_explore.py --scaling [--repeat N] [--json]
    python benchmarks/bench_explore.py --reduction [--semantics LIST] [--strategy S]
        [--max-executions N] [--repeat N] [--json]

Cases: ``examples/dirty_cow.toml`` under 4.8.3 (400 executions, no
violation) and ``examples/concurrent/gup_pin_vs_dontneed.toml`` under 4.8.3,
each a full dfs (stop at nothing).  Paths: ``setup`` (re-run setup every
execution), ``restore`` (always restore the snapshot) and ``auto`` (what
``explore`` does: whichever of the two the snapshot measured as faster).
Each figure is the min / median / max over ``--repeat`` runs (wall clock):
the machine is shared, so give ranges.

``--against DIR``: the same complete dfs of each case, run alternately by
this tree and by the pagewalk source tree at DIR (a checkout of main, say),
each in a fresh process, ``--repeat`` times: executions per second of wall
clock and of CPU time, and this tree's ratio to DIR's (medians).  On a
shared machine only figures measured back to back like this compare.

``--scaling``: a complete dfs of ``examples/concurrent/gup_vs_fault.toml``
under 2.6.15 (36,700 executions) in one process, with ``--workers 2``, with
``--cluster local:2`` (whose time includes starting and closing the
cluster) and on a warm cluster (a local cluster of two started once, in a
process of its own, as ``local:2`` starts it, that has served a search
before: how a cluster is used, started once for many searches), the four
taking turns in each of ``--repeat`` rounds; each one's speed-up over one
process (medians); also the CPU time of the process, of its worker
processes and of the warm cluster's processes, and one process's CPU time
over half the spread search's: the speed-up two CPUs would give if the
spread search ran there as it ran here.  Then the seconds to start a local
cluster of two (workers connected, pagewalk imported on them) and to close
it, once a round.  On a loaded machine neither figure settles what two idle
CPUs give (docs/explore.md, "Speed").

``--reduction`` (issue 13, fewer executions): a complete search (every
violation, no shortening) of every example (``examples/*.toml``,
``examples/*/*.toml``) and of ``benchmarks/inputs/dirty_cow_reader.toml``
under each profile of ``--semantics`` (default 2.6.15, 2.6.22, 4.8.3, 6.18;
``all`` for every profile), with ``--strategy`` (default dpor): executions,
those pruned by sleep sets, distinct final states, verdict, seconds.  Then
the three-thread Dirty COW under 4.8.3, ``--repeat`` times (min / median /
max seconds: the machine is shared).  ``--max-executions`` caps each search
(a dfs of some cells runs to tens of thousands).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from pagewalk.explore import explore
from pagewalk.explore import snapshot as snap
from pagewalk.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parent.parent
CASES = [
    ("dirty_cow", ROOT / "examples" / "dirty_cow.toml", "4.8.3"),
    ("gup_pin_vs_dontneed", ROOT / "examples" / "concurrent" / "gup_pin_vs_dontneed.toml", "4.8.3"),
]
PATHS = {"setup": False, "restore": True, "auto": None}


def rate(path: Path, sem: str, restore: bool | None) -> tuple[float, int]:
    """Executions per second of one complete dfs, and its executions."""
    original = snap.Snapshot.__init__

    def forced(self: snap.Snapshot, scenario: object, semantics: str | None, _: object = None):
        original(self, scenario, semantics, restore)

    snap.Snapshot.__init__ = forced  # type: ignore[method-assign]
    try:
        scenario = load_scenario(path)
        start = time.perf_counter()
        res = explore(scenario, sem, "dfs", stop_first=False, shorten=False)
        elapsed = time.perf_counter() - start
    finally:
        snap.Snapshot.__init__ = original  # type: ignore[method-assign]
    return res.executions / elapsed, res.executions


#: run in a fresh process by --against: one complete dfs, timed
CHILD = """
import json, sys, time
from pagewalk.explore import explore
from pagewalk.scenario.loader import load_scenario
scenario = load_scenario(sys.argv[1])
cpu, wall = time.process_time(), time.perf_counter()
res = explore(scenario, sys.argv[2], "dfs", stop_first=False, shorten=False)
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
print(json.dumps({"executions": res.executions, "cpu": cpu, "wall": wall}))
"""


def child_rate(src: Path, path: Path, sem: str) -> dict:
    """One complete dfs by the pagewalk source tree at ``src``, in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), sem],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def against(other: Path, repeat: int) -> list[dict]:
    """This tree's dfs rates beside ``other``'s, alternately, ``repeat`` times."""
    trees = {"this tree": ROOT / "src", str(other): other / "src"}
    rows = []
    for name, path, sem in CASES:
        runs: dict[str, list[dict]] = {label: [] for label in trees}
        for _ in range(repeat):
            for label, src in trees.items():
                runs[label].append(child_rate(src, path, sem))
        row: dict = {"case": name, "semantics": sem}
        for label, rs in runs.items():
            row[label] = {
                "executions": rs[0]["executions"],
                "per_s_wall": round(statistics.median(r["executions"] / r["wall"] for r in rs)),
                "per_s_cpu": round(statistics.median(r["executions"] / r["cpu"] for r in rs)),
            }
        mine, theirs = row["this tree"], row[str(other)]
        row["ratio_wall"] = round(mine["per_s_wall"] / theirs["per_s_wall"], 2)
        row["ratio_cpu"] = round(mine["per_s_cpu"] / theirs["per_s_cpu"], 2)
        rows.append(row)
    return rows


SCALING = ROOT / "examples" / "concurrent" / "gup_vs_fault.toml"
#: the spreads of --scaling; "warm" is the tcp:// address of a local cluster
#: of two started once for all the repeats
SPREADS = {
    "one process": {},
    "--workers 2": {"workers": 2},
    "--cluster local:2": {"cluster": "local:2"},
    "warm cluster of 2": {"cluster": "warm"},
}
#: run in a process of its own by --scaling: a local cluster as ``local:2``
#: starts it, kept until its standard input closes
WARM = """
import sys
from pagewalk.explore.cluster import start_local_cluster
cluster = start_local_cluster(2)
print(cluster.scheduler_address, flush=True)
sys.stdin.read()
cluster.close()
"""


def scaling(repeat: int) -> tuple[list[dict], dict | None]:
    """Seconds and CPU seconds of the same complete dfs, spread four ways
    (two without Dask installed), the spreads taking turns in each repeat so
    that a change of load hits them alike; and a local cluster's start-up."""
    scenario = load_scenario(SCALING)
    spreads = dict(SPREADS)
    if importlib.util.find_spec("distributed") is None:
        spreads = {k: v for k, v in spreads.items() if "cluster" not in v}
        warm = None
    else:
        warm = subprocess.Popen(
            [sys.executable, "-c", WARM], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
    runs: dict[str, list[tuple[float, float, int]]] = {label: [] for label in spreads}
    startup: list[tuple[float, float]] = []
    try:
        if warm is not None:
            address = warm.stdout.readline().strip()
            # the workers' first search imports pagewalk: a used cluster has done it
            explore(load_scenario(CASES[0][1]), "4.8.3", "dfs", cluster=address)
        for _ in range(repeat):
            for label, kw in spreads.items():
                skip = None if warm is None else warm.pid
                if kw.get("cluster") == "warm":
                    kw, skip = {"cluster": address}, None
                runs[label].append(_timed(scenario, kw, skip))
            if warm is not None:
                startup.append(_start_and_stop())
    finally:
        if warm is not None:
            warm.communicate("")
    return _scaling_rows(runs), _startup_row(startup)


def _timed(scenario: object, kw: dict, skip: int | None) -> tuple[float, float, int]:
    """Seconds, CPU seconds (``_cpu``) and executions of one complete dfs."""
    cpu = _cpu(skip)
    start = time.perf_counter()
    res = explore(scenario, "2.6.15", "dfs", stop_first=False, **kw)
    return time.perf_counter() - start, _cpu(skip) - cpu, res.executions


def _scaling_rows(runs: dict[str, list[tuple[float, float, int]]]) -> list[dict]:
    base = statistics.median(t for t, _, _ in runs["one process"])
    base_cpu = statistics.median(c for _, c, _ in runs["one process"])
    out = []
    for label, rs in runs.items():
        seconds, cpus = [t for t, _, _ in rs], [c for _, c, _ in rs]
        out.append(
            {
                "spread": label,
                "executions": rs[0][2],
                "seconds": [round(t, 2) for t in seconds],
                "cpu": [round(c, 2) for c in cpus],
                "speedup_median": round(base / statistics.median(seconds), 2),
                # one process's CPU time over half the spread's (see the module docstring)
                "cpu_speedup_median": round(2 * base_cpu / statistics.median(cpus), 2),
            }
        )
    out[0]["cpu_speedup_median"] = 1.0
    return out


def _start_and_stop() -> tuple[float, float]:
    """Seconds to start a local cluster of two (workers connected and
    pagewalk imported on them), and to close it."""
    import distributed

    from pagewalk.explore.cluster import start_local_cluster

    start = time.perf_counter()
    cluster = start_local_cluster(2)
    with distributed.Client(cluster) as client:
        client.run(importlib.import_module, "pagewalk.explore.parallel")
    up = time.perf_counter()
    cluster.close()
    return up - start, time.perf_counter() - up


def _startup_row(startup: list[tuple[float, float]]) -> dict | None:
    if not startup:
        return None
    return {
        "start_s": [round(t, 2) for t, _ in startup],
        "close_s": [round(t, 2) for _, t in startup],
        "start_median": round(statistics.median(t for t, _ in startup), 2),
        "close_median": round(statistics.median(t for _, t in startup), 2),
    }


REDUCTION_PROFILES = "2.6.15,2.6.22,4.8.3,6.18"
THREE_THREADS = ROOT / "benchmarks" / "inputs" / "dirty_cow_reader.toml"


def reduction_inputs() -> list[Path]:
    examples = ROOT / "examples"
    return sorted(examples.glob("*.toml")) + sorted(examples.glob("*/*.toml")) + [THREE_THREADS]


def reduction(profiles: list[str], strategy: str, cap: int | None) -> list[dict]:
    """One complete search per (input, profile): what it took."""
    rows = []
    for path in reduction_inputs():
        scenario = load_scenario(path)
        for sem in profiles:
            start = time.perf_counter()
            res = explore(
                scenario,
                sem,
                strategy,
                max_executions=cap,
                stop_first=False,
                shorten=False,
                collect=True,
            )
            rows.append(
                {
                    "scenario": str(path.relative_to(ROOT)),
                    "semantics": sem,
                    "status": res.status,
                    "executions": res.executions,
                    "pruned": res.pruned,
                    "states": len(res.observations),
                    "seconds": round(time.perf_counter() - start, 3),
                }
            )
    return rows


def three_threads(repeat: int, strategy: str) -> dict:
    """Seconds for the complete search of the three-thread Dirty COW under 4.8.3."""
    scenario = load_scenario(THREE_THREADS)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        res = explore(scenario, "4.8.3", strategy, stop_first=False, shorten=False)
        times.append(time.perf_counter() - start)
    return {
        "executions": res.executions,
        "pruned": res.pruned,
        "status": res.status,
        "seconds": [round(min(times), 3), round(statistics.median(times), 3), round(max(times), 3)],
    }


def print_reduction(rows: list[dict], timing: dict) -> None:
    print(f"{'scenario':48} {'profile':8} {'status':10} {'execs':>7} {'pruned':>6} states seconds")
    for r in rows:
        print(
            f"{r['scenario']:48} {r['semantics']:8} {r['status']:10} {r['executions']:>7} "
            f"{r['pruned']:>6} {r['states']:>6} {r['seconds']:>7}"
        )
    print(
        f"dirty_cow_reader under 4.8.3: {timing['executions']} executions "
        f"({timing['pruned']} pruned), seconds min/median/max {timing['seconds']}"
    )


def _cpu(skip: int | None = None) -> float:
    """CPU seconds of this process, of its child processes that have exited
    (the workers of ``--workers`` once their pool is shut down) and of the
    processes still running below it, with the exited children each of them
    waited for (the workers a local cluster's fork server started); but not
    of the process ``skip`` and those below it (a warm cluster, idle but for
    its own spread)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    if importlib.util.find_spec("psutil") is None:  # no Dask: no cluster to count
        return total
    import psutil

    skipped = set()
    if skip is not None:
        top = psutil.Process(skip)
        skipped = {top.pid, *(p.pid for p in top.children(recursive=True))}
    for proc in psutil.Process().children(recursive=True):
        if proc.pid in skipped:
            continue
        try:
            t = proc.cpu_times()
        except psutil.Error:  # it has just exited: counted by whoever waited for it
            continue
        total += t.user + t.system + getattr(t, "children_user", 0.0)
        total += getattr(t, "children_system", 0.0)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--scaling", action="store_true")
    parser.add_argument("--reduction", action="store_true")
    parser.add_argument("--semantics", default=REDUCTION_PROFILES)
    parser.add_argument("--strategy", default="dpor")
    parser.add_argument("--max-executions", type=int, default=None)
    parser.add_argument("--against", type=Path, metavar="DIR", help="another pagewalk tree")
    args = parser.parse_args()
    if args.reduction:
        from pagewalk.kernel.semantics import PROFILES

        profiles = list(PROFILES) if args.semantics == "all" else args.semantics.split(",")
        rows = reduction(profiles, args.strategy, args.max_executions)
        timing = three_threads(args.repeat, args.strategy)
        if args.json:
            print(json.dumps({"cells": rows, "dirty_cow_reader_4.8.3": timing}, indent=2))
        else:
            print_reduction(rows, timing)
        return
    if args.against is not None:
        rows = against(args.against, args.repeat)
        if args.json:
            print(json.dumps(rows, indent=2))
        for r in [] if args.json else rows:
            mine, theirs = r["this tree"], r[str(args.against)]
            print(
                f"{r['case']:22} {r['semantics']:6} {mine['executions']:>6} executions  "
                f"this tree {mine['per_s_wall']:,}/s wall {mine['per_s_cpu']:,}/s CPU  "
                f"{args.against}: {theirs['per_s_wall']:,}/s wall {theirs['per_s_cpu']:,}/s CPU  "
                f"ratio {r['ratio_wall']}x wall {r['ratio_cpu']}x CPU"
            )
        return
    if args.scaling:
        rows, startup = scaling(args.repeat)
        if args.json:
            print(json.dumps({"spreads": rows, "local_cluster_start": startup}, indent=2))
            return
        for r in rows:
            print(
                f"{r['spread']:18} {r['executions']:>6} executions  seconds {r['seconds']}  "
                f"CPU {r['cpu']}  speed-up (medians) {r['speedup_median']}x wall, "
                f"{r['cpu_speedup_median']}x by CPU time"
            )
        if startup is not None:
            print(
                f"starting a local cluster of 2 (pagewalk imported on its workers): "
                f"{startup['start_s']} s, closing it: {startup['close_s']} s"
            )
        return
    report = []
    for name, path, sem in CASES:
        for label, restore in PATHS.items():
            runs = [rate(path, sem, restore) for _ in range(args.repeat)]
            rates = [r for r, _ in runs]
            report.append(
                {
                    "case": name,
                    "semantics": sem,
                    "path": label,
                    "executions": runs[0][1],
                    "min": round(min(rates)),
                    "median": round(statistics.median(rates)),
                    "max": round(max(rates)),
                }
            )
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{'case':22} {'profile':8} {'path':8} {'execs':>6} {'executions/s min/median/max':>30}")
    for r in report:
        figures = f"{r['min']:,} / {r['median']:,} / {r['max']:,}"
        print(f"{r['case']:22} {r['semantics']:8} {r['path']:8} {r['executions']:>6} {figures:>30}")


if __name__ == "__main__":
    main()
