#!/usr/bin/env python3
"""pagewalk's interleaving explorer against its Python peers, frontrun and interleave-test.

Run with the peers venv's Python (``benchmarks/peers/setup.sh`` builds it)::

    benchmarks/peers/.venv/bin/python benchmarks/peers/bench_peers.py
    benchmarks/peers/.venv/bin/python benchmarks/peers/bench_peers.py --json

Three workloads (two threads each), written idiomatically for each tool in
``peer_<tool>.py``: ``lost_update`` (unlocked read-then-write increment,
invariant count == 2), ``lock_order`` (two locks taken in opposite orders:
deadlock) and ``check_then_act`` (``if obj is None: obj = create()``,
invariant created once).  Each also has a correct variant (locked / same lock
order / locked).

For every tool x strategy x workload it measures

* executions to the first bug on the buggy variant (stop at the first
  failure; the median over ``--seeds`` seeds for randomized strategies, one
  run for systematic ones), and the wall time of that call;
* executions per second exploring the correct variant with no stop: the
  exploration is repeated (a new seed each time) until ``--target``
  executions, with the target lowered for slow tools so that one cell takes
  about ``--cap`` seconds.  Systematic strategies run unbounded (pagewalk
  dfs/dpor, frontrun dpor with ``preemption_bound=None``) except
  interleave-test's DFS, which keeps its default preemption bound 2 and its
  space still exceeds the budget.

Each tool runs in its own child process (frontrun's under its ``frontrun`` CLI
wrapper, which it requires), one after the other, on the same interpreter.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORKLOADS = ("lost_update", "lock_order", "check_then_act")
EXPECTED = {"lost_update": "invariant", "lock_order": "deadlock", "check_then_act": "invariant"}
TOOLS = {
    "pagewalk": "peer_pagewalk",
    "frontrun": "peer_frontrun",
    "interleave-test": "peer_interleave",
}
# the pagewalk strategy each peer strategy is compared with (pagewalk's random is PCT)
PW_MATCH = {"dpor": "dpor", "dfs": "dfs", "random": "random", "pct": "random"}
WARMUP_SEED = 10_000


# ---------------------------------------------------------------------------
# child: measure one tool


def _unsupported(mod: Any, workload: str, strategy: str) -> str | None:
    return mod.UNSUPPORTED.get((workload, strategy)) or mod.UNSUPPORTED.get(("*", strategy))


def measure_first_bug(
    mod: Any, workload: str, strategy: str, seeds: int, budget: int
) -> dict[str, Any]:
    # A systematic strategy is deterministic: its runs repeat seed 0, for the
    # median wall time only.
    randomized = mod.STRATEGIES[strategy]
    runs = []
    for i in range(seeds):
        seed = i if randomized else 0
        t0 = time.perf_counter()
        out = mod.first_bug(workload, strategy, seed, budget)
        ms = (time.perf_counter() - t0) * 1e3
        runs.append(
            {
                "seed": seed,
                "executions": out["executions"],
                "kind": out["kind"],
                "ms": round(ms, 3),
                "found": out["kind"] == EXPECTED[workload],
            }
        )
    found = [r for r in runs if r["found"]]
    wrong = sorted({r["kind"] for r in runs if r["kind"] and not r["found"]})
    # a run that found nothing counts as `budget` (a lower bound) in the median
    execs = [r["executions"] if r["found"] else budget for r in runs]
    return {
        "runs": runs,
        "n": len(runs),
        "found": len(found),
        "budget": budget,
        "randomized": randomized,
        "median_executions": statistics.median(execs),
        "min_executions": min(execs),
        "max_executions": max(execs),
        "median_ms": round(statistics.median(r["ms"] for r in runs), 3),
        "wrong_kinds": wrong,
    }


def measure_throughput(
    mod: Any, workload: str, strategy: str, target: int, cap: float
) -> dict[str, Any]:
    t0 = time.perf_counter()
    pilot = mod.explore_correct(workload, strategy, min(20, target), WARMUP_SEED)
    pilot_rate = pilot["executions"] / max(time.perf_counter() - t0, 1e-9)
    budget = max(20, min(target, int(pilot_rate * cap)))
    done = calls = 0
    space: set[int] = set()
    exhausted = True
    bad: list[str] = []
    t0 = time.perf_counter()
    while done < budget and time.perf_counter() - t0 < 2 * cap:
        # the full budget each call, so that a small space is never cut short;
        # a space smaller than the budget is explored again (new seed)
        out = mod.explore_correct(workload, strategy, budget, calls)
        done += out["executions"]
        calls += 1
        exhausted = exhausted and bool(out["exhausted"])
        space.add(out["executions"])
        if out["kind"] is not None:
            bad.append(out["kind"])
    seconds = time.perf_counter() - t0
    return {
        "executions": done,
        "seconds": round(seconds, 4),
        "calls": calls,
        "budget": budget,
        "executions_per_s": round(done / seconds, 1),
        "exhausted": exhausted,
        "space": (space.pop() if exhausted and len(space) == 1 else None),
        "ms_per_full_exploration": (round(seconds / calls * 1e3, 3) if exhausted else None),
        "false_alarms": bad,
    }


def child(tool: str, args: argparse.Namespace) -> dict[str, Any]:
    mod = importlib.import_module(TOOLS[tool])
    strategies = list(mod.STRATEGIES) + sorted(
        {s for (_, s) in mod.UNSUPPORTED} - set(mod.STRATEGIES)
    )
    rows = []
    for strategy in mod.STRATEGIES:  # warm up imports and caches, untimed
        mod.first_bug("lost_update", strategy, WARMUP_SEED, args.bug_budget)
    for workload in args.workloads:
        for strategy in strategies:
            row: dict[str, Any] = {
                "tool": tool,
                "version": mod.version(),
                "strategy": strategy,
                "workload": workload,
            }
            reason = _unsupported(mod, workload, strategy)
            if reason:
                row["unsupported"] = reason
            else:
                row["first_bug"] = measure_first_bug(
                    mod, workload, strategy, args.seeds, args.bug_budget
                )
                row["throughput"] = measure_throughput(
                    mod, workload, strategy, args.target, args.cap
                )
            rows.append(row)
            print(f"  {tool} {strategy} {workload} done", file=sys.stderr, flush=True)
    return {"tool": tool, "version": mod.version(), "rows": rows}


# ---------------------------------------------------------------------------
# parent: run each tool in a child process, then compare


def run_child(tool: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        tool,
        "--workloads",
        ",".join(args.workloads),
        "--seeds",
        str(args.seeds),
        "--target",
        str(args.target),
        "--cap",
        str(args.cap),
        "--bug-budget",
        str(args.bug_budget),
    ]
    if tool == "frontrun":
        wrapper = Path(sys.executable).parent / "frontrun"
        if not wrapper.exists():
            return {
                "tool": tool,
                "error": f"no frontrun CLI wrapper at {wrapper} (run benchmarks/peers/setup.sh)",
            }
        cmd = [str(wrapper), *cmd]
    env = dict(os.environ, PYTHONPATH=str(HERE))
    print(f"running {tool} ...", file=sys.stderr, flush=True)
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=HERE, timeout=600, check=False
    )
    if not args.json:
        sys.stderr.write(proc.stderr if args.verbose else "")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        return {"tool": tool, "error": f"exit {proc.returncode}: {tail}"}
    return json.loads(lines[-1])


def _cell_index(results: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {
        (r["tool"], r["strategy"], r["workload"]): r for res in results for r in res.get("rows", [])
    }


def add_ratios(results: list[dict[str, Any]]) -> None:
    """pagewalk's advantage over each peer row, against pagewalk's matching
    strategy: >1 means pagewalk is faster / needs fewer executions."""
    idx = _cell_index(results)
    for res in results:
        for r in res.get("rows", []):
            if r["tool"] == "pagewalk" or "unsupported" in r:
                continue
            pw = idx.get(("pagewalk", PW_MATCH[r["strategy"]], r["workload"]))
            if pw is None or "unsupported" in pw:
                continue
            ratio: dict[str, Any] = {"vs": f"pagewalk {pw['strategy']}"}
            p_tp, o_tp = pw["throughput"], r["throughput"]
            ratio["execs_per_s"] = round(p_tp["executions_per_s"] / o_tp["executions_per_s"], 2)
            p_fb, o_fb = pw["first_bug"], r["first_bug"]
            ratio["execs_to_bug"] = round(o_fb["median_executions"] / p_fb["median_executions"], 2)
            ratio["ms_to_bug"] = round(o_fb["median_ms"] / p_fb["median_ms"], 2)
            r["pagewalk_advantage"] = ratio


def _fmt_bug(fb: dict[str, Any]) -> str:
    med = fb["median_executions"]
    s = f"{med:g}"
    if fb["randomized"]:
        s += f" [{fb['min_executions']}-{fb['max_executions']}]"
    elif fb["min_executions"] != fb["max_executions"]:
        s += " (NONDETERMINISTIC)"
    if fb["found"] < fb["n"]:
        s += f" ({fb['n'] - fb['found']}/{fb['n']} not found in {fb['budget']})"
    if fb["wrong_kinds"]:
        s += f" (WRONG: {', '.join(fb['wrong_kinds'])})"
    return s


def _fmt_space(tp: dict[str, Any]) -> str:
    if tp["exhausted"] and tp["space"] is not None:
        return f"{tp['space']} full, x{tp['calls']}"
    if tp["exhausted"]:
        return f"full, x{tp['calls']}"
    return f"{tp['executions']} (budget)"


def table(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    head = [
        "workload",
        "tool",
        "strategy",
        "execs to 1st bug",
        "ms to 1st bug",
        "correct variant explored",
        "execs/s",
        "ms/full explore",
        "pw x execs/s",
        "pw x fewer execs",
        "pw x faster to bug",
    ]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    idx = _cell_index(results)
    tools = [res["tool"] for res in results]
    for workload in args.workloads:
        for tool in tools:
            for (t, strategy, w), r in idx.items():
                if t != tool or w != workload:
                    continue
                if "unsupported" in r:
                    cells = [workload, tool, strategy, f"cannot express: {r['unsupported']}"]
                    cells += [""] * (len(head) - len(cells))
                else:
                    fb, tp = r["first_bug"], r["throughput"]
                    adv = r.get("pagewalk_advantage")
                    ratios = (
                        ["-"] * 3
                        if adv is None
                        else [
                            f"{adv['execs_per_s']:g}",
                            f"{adv['execs_to_bug']:g}",
                            f"{adv['ms_to_bug']:g}",
                        ]
                    )
                    alarm = " (FALSE ALARM)" if tp["false_alarms"] else ""
                    cells = [
                        workload,
                        tool,
                        strategy,
                        _fmt_bug(fb),
                        f"{fb['median_ms']:.1f}",
                        _fmt_space(tp) + alarm,
                        f"{tp['executions_per_s']:,.0f}",
                        (
                            "-"
                            if tp["ms_per_full_exploration"] is None
                            else f"{tp['ms_per_full_exploration']:.2f}"
                        ),
                        *ratios,
                    ]
                out.append("| " + " | ".join(cells) + " |")
    for res in results:
        if "error" in res:
            out.append(
                f"| * | {res['tool']} | * | unavailable: {res['error']} |" + " |" * (len(head) - 4)
            )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ap.add_argument(
        "--tools", default=",".join(TOOLS), help="comma-separated subset of: " + ", ".join(TOOLS)
    )
    ap.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help="comma-separated subset of: " + ", ".join(WORKLOADS),
    )
    ap.add_argument(
        "--seeds",
        type=int,
        default=5,
        help="runs (seeds) per randomized strategy for the first bug (5)",
    )
    ap.add_argument(
        "--bug-budget",
        type=int,
        default=2000,
        help="executions allowed to find the first bug (2000)",
    )
    ap.add_argument(
        "--target", type=int, default=2000, help="executions per throughput cell (2000)"
    )
    ap.add_argument(
        "--cap",
        type=float,
        default=3.0,
        help="seconds a throughput cell should take at most (3.0); slower tools get a lower target",
    )
    ap.add_argument("--verbose", action="store_true", help="pass the children's stderr on")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.workloads = [w for w in args.workloads.split(",") if w]
    bad = [w for w in args.workloads if w not in WORKLOADS]
    if bad:
        ap.error(f"unknown workload(s): {', '.join(bad)}")
    if args.child:
        print(json.dumps(child(args.child, args)))
        return 0
    tools = [t for t in args.tools.split(",") if t]
    bad = [t for t in tools if t not in TOOLS]
    if bad:
        ap.error(f"unknown tool(s): {', '.join(bad)}")
    if "pagewalk" in tools:  # pagewalk first: the ratios are against it
        tools.remove("pagewalk")
        tools.insert(0, "pagewalk")
    t0 = time.perf_counter()
    results = [run_child(t, args) for t in tools]
    add_ratios(results)
    meta = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "processor": _cpu_model(),
        "seeds": args.seeds,
        "bug_budget": args.bug_budget,
        "target": args.target,
        "cap_s": args.cap,
        "versions": {r["tool"]: r.get("version") for r in results},
        "total_s": round(time.perf_counter() - t0, 1),
    }
    if args.json:
        print(json.dumps({"meta": meta, "results": results}, indent=1))
    else:
        vers = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
        print(
            f"CPython {meta['python']} on {meta['cpus']} x {meta['processor']}; {vers}; "
            f"first bug: {args.seeds} seeds for randomized strategies, budget "
            f"{args.bug_budget}; throughput: up to {args.target} execs or ~{args.cap:g} s "
            f"per cell; total {meta['total_s']} s"
        )
        print()
        print(table(results, args))
        print()
        print(
            "pw x ...: pagewalk's advantage over the row, against pagewalk's matching "
            "strategy (dpor->dpor, dfs->dfs, random/pct->random, which is PCT in "
            "pagewalk); >1 = pagewalk better."
        )
    return 1 if any("error" in r for r in results) else 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
