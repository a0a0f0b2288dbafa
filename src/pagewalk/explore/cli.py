"""``pagewalk explore`` and ``pagewalk replay``."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import InputError
from ..scenario.model import Scenario
from .api import explore, replay
from .report import render_html, render_result, render_trace

EXIT = {"ok": 0, "violation": 1, "incomplete": 3}
#: an interrupted search exits as a shell reports a death by that signal
EXIT_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}


class Progress:
    """Progress on stderr: a live line on a terminal (every 0.2 s), a plain
    line every ``every`` seconds elsewhere (CI logs, nohup), so a long search
    shows it is alive."""

    def __init__(self, enabled: bool, every: float = 5.0) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.interval = 0.2 if self.tty else every
        self.last = 0.0

    def __call__(self, executions: int, violations: int, elapsed: float) -> None:
        if not self.enabled or elapsed - self.last < self.interval:
            return
        self.last = elapsed
        rate = executions / elapsed if elapsed else 0
        text = (
            f"  {executions:,} executions  {rate:,.0f}/s  {elapsed:.1f} s  violations {violations} "
        )
        sys.stderr.write(f"\r{text}" if self.tty else f"pagewalk: progress:{text}\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled and self.tty and self.last:
            sys.stderr.write("\r" + " " * 70 + "\r")


def explore_command(args: argparse.Namespace, scenario: Scenario) -> int:
    if args.compare:
        if args.checkpoint or args.resume:
            flag = "--checkpoint" if args.checkpoint else "--resume"
            raise InputError("not with --compare (it runs two complete searches)", flag)
        from .compare import compare_command

        return compare_command(args, scenario)
    progress = Progress(not args.no_progress)
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
        max_steps=args.max_steps,
        cluster=args.cluster,
        output_dir=args.output_dir,
        checkpoint=args.checkpoint,
        resume=args.resume,
    )
    progress.done()
    tasks = [t.name for t in scenario.threads]
    text = render_result(res, tasks, args.file)
    print(json.dumps(res.as_json(), indent=2) if args.json else text)
    if args.trace_html and res.violation is not None:
        title = f"{scenario.name} under {res.semantics}"
        write_output(args.trace_html, render_html(title, res.violation.trace, tasks, text))
    if res.interrupted:
        return EXIT_SIGNAL[res.interrupted]
    return EXIT[res.status]


def write_output(path: str, text: str) -> None:
    """Write a file the user asked for, after the result is printed: a path
    that cannot be written is bad input (one line, exit 2), not a traceback."""
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as err:
        raise InputError(f"cannot write {path}: {err.strerror}", "--trace-html") from None


def replay_command(args: argparse.Namespace, scenario: Scenario) -> int:
    ex = replay(scenario, args.schedule, args.semantics, args.max_steps, args.output_dir)
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
        summary = "\n".join(f"{c.kind}: {c.message}" for c in checks)
        title = f"{scenario.name}: schedule {args.schedule}"
        write_output(args.trace_html, render_html(title, ex.trace, tasks, summary))
    return 0 if ok else 1
