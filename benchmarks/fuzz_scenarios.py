"""Robustness of the command line against fuzzed scenario files.

Usage::

    python benchmarks/fuzz_scenarios.py [--cases N] [--seed S] [--jobs J]
                                        [--explore-every K] [--max-executions M]
                                        [--limit SEC] [--keep DIR] [--mode fork|spawn]
                                        [--json]

Draws N scenario files (``tests/fuzz_cases.py``: Hypothesis over the schema
and mutations of ``examples/*.toml``), writes each to a scratch directory and
runs ``pagewalk run FILE`` on it in a child process -- every K-th one
``pagewalk explore FILE --max-executions M`` instead -- with a time limit,
J at a time.  A child is a fork of this interpreter running
``pagewalk.cli.main`` (``--mode fork``, the default) or a fresh
``python -m pagewalk`` (``--mode spawn``).  Each child's peak resident
memory comes from ``os.wait4``.  Counted: cases, tracebacks, hangs (killed at the limit),
bad errors (exit 2 with other than one line on stderr), unexpected exit
statuses, and the peak memory of any run.  ``--keep DIR`` copies every case
that is not fine there, for replaying.  See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fuzz_cases import Case, Verdict, arguments, command_for, draw_cases, judge

# Imported here, once: forked children start warm.
from pagewalk.cli import main as pagewalk_main

FINDINGS = ("traceback", "hang", "bad-error", "unexpected-exit")


@dataclass
class Result:
    case: Case
    command: str
    verdict: Verdict
    seconds: float
    maxrss_kb: int


class Job:
    """One case being run: its scratch directory and its child process."""

    def __init__(self, case: Case, scratch: Path, args: argparse.Namespace) -> None:
        self.case = case
        self.work = scratch / f"case-{case.index:05d}"
        self.work.mkdir()
        path = self.work / "scenario.toml"
        path.write_bytes(case.data)
        self.command = command_for(case, args.explore_every)
        self.argv = arguments(self.command, str(path), str(self.work), args.max_executions)
        self.pid = 0
        self.start = 0.0
        self.killed = False

    def launch(self, mode: str) -> None:
        self.start = time.monotonic()
        if mode == "spawn":
            self.pid = self._spawn()
        else:
            self.pid = _fork_main(self.argv, self.work)

    def _spawn(self) -> int:
        with (self.work / "stdout").open("wb") as fo, (self.work / "stderr").open("wb") as fe:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pagewalk", *self.argv],
                stdout=fo,
                stderr=fe,
                stdin=subprocess.DEVNULL,
                cwd=self.work,
            )
        proc.returncode = 0  # reaped by os.wait4 below, not by Popen
        return proc.pid

    def finish(self, wait_status: int, maxrss_kb: int) -> Result:
        seconds = time.monotonic() - self.start
        status = None if self.killed else os.waitstatus_to_exitcode(wait_status)
        err = (self.work / "stderr").read_bytes().decode("utf-8", "replace")
        out = (self.work / "stdout").read_bytes().decode("utf-8", "replace")
        shutil.rmtree(self.work)
        return Result(
            self.case, self.command, judge(self.command, status, err, out), seconds, maxrss_kb
        )


def _fork_main(argv: list[str], work: Path) -> int:
    """Run ``pagewalk ARGV`` in a forked child of this (warm) interpreter, as
    ``python -m pagewalk`` would: output to files, an uncaught exception
    printed as a traceback with status 1."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.chdir(work)
        for fd, name in ((1, "stdout"), (2, "stderr")):
            target = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(target, fd)
            os.close(target)
        try:
            code = pagewalk_main(argv)
        except SystemExit as exc:  # argparse errors
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def run_all(cases: list[Case], args: argparse.Namespace, on_result: Any) -> None:
    """Keep ``args.jobs`` children running; kill any at the time limit."""
    pending = list(reversed(cases))
    running: dict[int, Job] = {}
    with tempfile.TemporaryDirectory(prefix="pagewalk-fuzz-") as tmp:
        scratch = Path(tmp)
        while pending or running:
            while pending and len(running) < args.jobs:
                job = Job(pending.pop(), scratch, args)
                job.launch(args.mode)
                running[job.pid] = job
            pid, wait_status, usage = os.wait4(-1, os.WNOHANG)
            if pid:
                on_result(running.pop(pid).finish(wait_status, usage.ru_maxrss))
                continue
            now = time.monotonic()
            for job in running.values():
                if not job.killed and now - job.start > args.limit:
                    job.killed = True
                    os.kill(job.pid, signal.SIGKILL)
            time.sleep(0.002)


def baseline_rss_kb(mode: str) -> int:
    """The peak RSS of a child that does nothing: in fork mode a child starts
    with this interpreter's pages, so a run's peak is at least this."""
    if mode == "spawn":
        return 0
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if not pid:
        os._exit(0)
    return os.wait4(pid, 0)[2].ru_maxrss


class Tally:
    def __init__(self, total: int) -> None:
        self.total = total
        self.kinds: Counter[str] = Counter()
        self.commands: Counter[str] = Counter()
        self.origins: Counter[str] = Counter()
        self.findings: list[Result] = []
        self.peak_kb = 0
        self.baseline_kb = 0
        self.slowest = 0.0
        self.slowest_case = ""
        self.start = time.monotonic()

    def add(self, r: Result) -> None:
        self.kinds[r.verdict.kind] += 1
        self.commands[r.command] += 1
        self.origins[r.case.origin] += 1
        self.peak_kb = max(self.peak_kb, r.maxrss_kb)
        if r.seconds > self.slowest:
            self.slowest = r.seconds
            self.slowest_case = f"case {r.case.index} ({r.case.origin}, {r.command})"
        if r.verdict.kind in FINDINGS:
            self.findings.append(r)

    @property
    def done(self) -> int:
        return sum(self.kinds.values())

    def progress(self) -> str:
        minutes = (time.monotonic() - self.start) / 60
        found = ", ".join(f"{self.kinds[k]} {k}" for k in FINDINGS)
        return (
            f"{self.done}/{self.total} cases, {found}; peak {self.peak_kb / 1024:.0f} MB, "
            f"slowest {self.slowest:.1f} s, {minutes:.1f} min"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "cases": self.done,
            "verdicts": dict(self.kinds),
            "commands": dict(self.commands),
            "origins": dict(self.origins),
            "peak_rss_mb": round(self.peak_kb / 1024, 1),
            "baseline_rss_mb": round(self.baseline_kb / 1024, 1),
            "slowest_s": round(self.slowest, 2),
            "slowest_case": self.slowest_case,
            "elapsed_min": round((time.monotonic() - self.start) / 60, 1),
            "findings": [
                {
                    "case": r.case.index,
                    "origin": r.case.origin,
                    "command": r.command,
                    "kind": r.verdict.kind,
                    "detail": r.verdict.detail,
                    "seconds": round(r.seconds, 2),
                }
                for r in self.findings
            ],
        }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0, help="the Hypothesis seed of the series")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--explore-every", type=int, default=5, metavar="K")
    ap.add_argument("--max-executions", type=int, default=50, metavar="M")
    ap.add_argument("--limit", type=float, default=10.0, metavar="SEC")
    ap.add_argument("--keep", metavar="DIR", help="copy the cases that are findings here")
    ap.add_argument(
        "--mode",
        choices=("fork", "spawn"),
        default="fork",
        help="fork: each run is a fork of this warm interpreter (fast); "
        "spawn: a fresh `python -m pagewalk` (the real start-up, 0.2 s more a run)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    print(f"drawing {args.cases} cases (seed {args.seed}) ...", file=sys.stderr, flush=True)
    cases = draw_cases(args.cases, args.seed)
    tally = Tally(len(cases))
    keep = Path(args.keep) if args.keep else None
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    tally.baseline_kb = baseline_rss_kb(args.mode)

    def on_result(r: Result) -> None:
        tally.add(r)
        if keep is not None and r.verdict.kind in FINDINGS:
            (keep / f"case-{r.case.index:05d}.toml").write_bytes(r.case.data)
        if tally.done % 250 == 0 or tally.done == tally.total:
            print(tally.progress(), file=sys.stderr, flush=True)

    run_all(cases, args, on_result)
    report = tally.as_json()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 1 if tally.findings else 0


def print_report(report: dict[str, Any]) -> None:
    verdicts = report["verdicts"]
    print(f"cases:            {report['cases']}  ({report['commands']})")
    print(f"origins:          {report['origins']}")
    print(f"accepted (0/1/3): {verdicts.get('ok', 0)}")
    print(f"rejected (2):     {verdicts.get('rejected', 0)}, each one line")
    for kind in FINDINGS:
        print(f"{kind + ':':18}{verdicts.get(kind, 0)}")
    print(
        f"peak memory:      {report['peak_rss_mb']} MB (max RSS of one run; "
        f"a child that does nothing: {report['baseline_rss_mb']} MB)"
    )
    print(f"slowest run:      {report['slowest_s']} s, {report['slowest_case']}")
    print(f"elapsed:          {report['elapsed_min']} min")
    for f in report["findings"][:40]:
        print(f"  case {f['case']} ({f['origin']}, {f['command']}): {f['kind']}: {f['detail']}")


if __name__ == "__main__":
    sys.exit(main())
