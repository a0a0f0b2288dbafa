"""``pagewalk explore`` and ``pagewalk replay``."""

from __future__ import annotations

import argparse
import json
import sys

from ..scenario.model import Scenario
from .api import explore, replay
from .report import render_html, render_result, render_trace

EXIT = {"ok": 0, "violation": 1, "incomplete": 3}


class Progress:
    """A live one-line status on stderr, only when it is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, executions: int, violations: int, elapsed: float) -> None:
        if not self.enabled or elapsed - self.last < 0.2:
            return
        self.last = elapsed
        rate = executions / elapsed if elapsed else 0
        sys.stderr.write(
            f"\r  {executions:,} executions  {rate:,.0f}/s  {elapsed:.1f} s  "
            f"violations {violations} "
        )
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled and self.last:
            sys.stderr.write("\r" + " " * 70 + "\r")


def explore_command(args: argparse.Namespace, scenario: Scenario) -> int:
    if args.compare:
        from .compare import compare_command

        return compare_command(args, scenario)
    progress = Progress(not args.no_progress and not args.json)
    res = explore(
        scenario,
        args.semantics,
        args.strategy,
        args.max_executions,
        args.timeout,
        args.preemption_bound,
        stop_first=not args.all,
        seed=args.seed,
        progress=progress,
        workers=args.workers,
        output_dir=args.output_dir,
    )
    progress.done()
    tasks = [t.name for t in scenario.threads]
    if args.trace_html and res.violation is not None:
        with open(args.trace_html, "w") as f:
            f.write(
                render_html(
                    f"{scenario.name} under {res.semantics}",
                    res.violation.trace,
                    tasks,
                    render_result(res, tasks, args.file).split("\n\n")[0],
                )
            )
    if args.json:
        print(json.dumps(res.as_json(), indent=2))
    else:
        print(render_result(res, tasks, args.file))
    return EXIT[res.status]


def replay_command(args: argparse.Namespace, scenario: Scenario) -> int:
    ex = replay(scenario, args.schedule, args.semantics, output_dir=args.output_dir)
    tasks = [t.name for t in scenario.threads]
    checks = ex.result.checks
    ok = all(c.ok for c in checks)
    if args.json:
        print(
            json.dumps(
                {
                    "scenario": scenario.name,
                    "semantics": args.semantics or scenario.semantics,
                    "schedule": args.schedule,
                    "status": "ok" if ok else "violation",
                    "trace": [{"task": e["task"], "event": e["event"]} for e in ex.trace],
                    "results": [r.as_json() for r in ex.result.results],
                    "checks": [c.as_json() for c in checks],
                },
                indent=2,
            )
        )
    else:
        print(
            f"replay {scenario.name!r} ({args.file}), profile "
            f"{args.semantics or scenario.semantics}, schedule {args.schedule}\n"
        )
        print(render_trace(ex.trace, tasks))
        print("\nchecks:")
        for c in checks:
            print(f"  {'ok  ' if c.ok else 'FAIL'}  {c.kind}  {c.message}")
        print(f"result: {'ok' if ok else 'violation'}")
    if args.trace_html:
        with open(args.trace_html, "w") as f:
            f.write(
                render_html(
                    f"{scenario.name}: schedule {args.schedule}",
                    ex.trace,
                    tasks,
                    "\n".join(f"{c.kind}: {c.message}" for c in checks),
                )
            )
    return 0 if ok else 1
