"""``pagewalk matrix``: every scenario of some files or directories explored
under every given profile, in parallel, as a table of verdicts checked
against each scenario's ``[expect]``.

A cell is one (scenario, profile) search, the unit of work: cells run in a
process pool (``--workers``) or on a Dask cluster (``--cluster``), each a
complete ``explore`` in one process.  A scenario that declares
``[expect] violation = [...]`` expects a violation under those profiles and
a search that ends without one (status ``ok``, so a complete one) under the
others; a scenario without ``[expect]`` expects nothing and never fails the
matrix.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import sys
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..kernel.semantics import PROFILES, get_semantics
from ..scenario.loader import load_scenario
from ..scenario.model import Scenario
from .api import explore

#: the explore options a cell takes from the command line
CELL_OPTIONS = ("strategy", "max_executions", "timeout", "preemption_bound", "max_steps")


@dataclass
class Cell:
    """One scenario under one profile: its verdict and what was expected."""

    scenario: str
    file: str
    semantics: str
    status: str  # ok | violation | incomplete
    executions: int
    elapsed_s: float
    check: str | None
    schedule: str | None
    expected: str | None  # ok | violation | None: no [expect]

    @property
    def unexpected(self) -> bool:
        return self.expected is not None and self.status != self.expected

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "semantics": self.semantics,
            "status": self.status,
            "executions": self.executions,
            "schedule": self.schedule,
            "expected": self.expected,
            "file": self.file,
            "check": self.check,
            "elapsed_s": round(self.elapsed_s, 4),
        }

    def verdict(self) -> str:
        """The issue's words: violation, complete (no violation), bounded."""
        return {"ok": "complete", "incomplete": "bounded"}.get(self.status, "violation")


def expected_status(scenario: Scenario, sem: str) -> str | None:
    """What ``[expect]`` says of profile ``sem`` (an old name in either
    place stands for the profile it names)."""
    if scenario.expect_violation is None:
        return None
    want = get_semantics(sem).name
    hit = any(get_semantics(name).name == want for name in scenario.expect_violation)
    return "violation" if hit else "ok"


def scenario_files(paths: list[str]) -> list[str]:
    """The given files, and the ``.toml`` files below the given directories
    (sorted, recursively), each once."""
    files: list[str] = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            found = sorted(str(f) for f in p.rglob("*.toml") if f.is_file())
            if not found:
                raise InputError("no .toml scenario in this directory", path)
            files += found
        elif p.exists():
            files.append(path)
        else:
            raise InputError("no such file or directory", path)
    return list(dict.fromkeys(files))


def profile_list(text: str | None) -> list[str]:
    """``--semantics``: ``all`` (the default) or a comma-separated list."""
    if text is None or text == "all":
        return list(PROFILES)
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise InputError("no profile given", "--semantics")
    for name in names:
        try:
            get_semantics(name)
        except InputError as err:
            raise InputError(err.detail, "--semantics") from None
    return list(dict.fromkeys(names))


def run_cell(file: str, scenario: Scenario, sem: str, options: dict[str, Any]) -> Cell:
    """Explore one cell (in whichever process or machine runs it)."""
    res = explore(scenario, sem, shorten=False, **options)
    if res.interrupted:  # explore ends a search on Ctrl-C; the matrix stops too
        stop = KeyboardInterrupt()
        stop.signal_name = res.interrupted  # type: ignore[attr-defined]
        raise stop
    v = res.violation
    return Cell(
        scenario.name,
        file,
        sem,
        res.status,
        res.executions,
        res.elapsed_s,
        None if v is None else v.check,
        None if v is None else v.schedule,
        expected_status(scenario, sem),
    )


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group: the parent alone stops the matrix.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def local_executor(workers: int) -> Executor:
    ctx = mp.get_context("fork" if os.name == "posix" else "spawn")
    return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_ignore_sigint)


def run_matrix(
    work: list[tuple[str, Scenario, str]],
    options: dict[str, Any],
    executor: Executor | None = None,
) -> list[Cell]:
    """Every cell, in the order of ``work``; in this process without an
    executor.  An interrupt cancels the cells not started and re-raises."""
    if executor is None:
        return [run_cell(f, sc, sem, options) for f, sc, sem in work]
    futures: dict[Future, int] = {
        executor.submit(run_cell, f, sc, sem, options): i for i, (f, sc, sem) in enumerate(work)
    }
    cells: list[Cell | None] = [None] * len(work)
    try:
        for fut in as_completed(futures):
            cells[futures[fut]] = fut.result()
    finally:
        for fut in futures:
            fut.cancel()
    return [c for c in cells if c is not None]


# -- rendering ------------------------------------------------------------------------


def _grid(cells: list[Cell]) -> tuple[list[str], list[tuple[str, str]], dict]:
    profiles = list(dict.fromkeys(c.semantics for c in cells))
    rows = list(dict.fromkeys((c.file, c.scenario) for c in cells))
    at = {(c.file, c.semantics): c for c in cells}
    return profiles, rows, at


def _mark(cell: Cell) -> str:
    return f" (expected {cell.expected})" if cell.unexpected else ""


def render_text(cells: list[Cell], elapsed: float) -> str:
    """A grid of verdicts (``!`` marks an unexpected cell), then each
    violation with its check and schedule, then each unexpected cell."""
    profiles, rows, at = _grid(cells)
    width = max([len(name) for _, name in rows] + [8])
    head = ("scenario".ljust(width) + "".join(f"  {p:<12}" for p in profiles)).rstrip()
    lines = [head, "-" * len(head)]
    for file, name in rows:
        line = name.ljust(width)
        for p in profiles:
            c = at.get((file, p))
            text = "-" if c is None else c.verdict() + ("!" if c.unexpected else "")
            line += f"  {text:<12}"
        lines.append(line.rstrip())
    violations = [c for c in cells if c.status == "violation"]
    if violations:
        lines.append("\nviolations:")
        lines += [
            f"  {c.scenario} under {c.semantics}: {c.check}, "
            f"schedule {c.schedule or '(empty)'}{_mark(c)}"
            for c in violations
        ]
    wrong = [c for c in cells if c.unexpected]
    lines.append(
        f"\n{len(cells)} cells in {elapsed:.1f} s: "
        + (
            f"{len(wrong)} differ from [expect]: "
            + ", ".join(f"{c.scenario} under {c.semantics} is {c.verdict()}" for c in wrong)
            if wrong
            else "every cell as expected"
        )
    )
    return "\n".join(lines)


def render_markdown(cells: list[Cell]) -> str:
    """A Markdown table: one row per scenario, one column per profile."""
    profiles, rows, at = _grid(cells)
    lines = [
        "| scenario | " + " | ".join(f"`{p}`" for p in profiles) + " |",
        "| --- |" + " --- |" * len(profiles),
    ]
    for file, name in rows:
        texts = []
        for p in profiles:
            c = at.get((file, p))
            if c is None:
                texts.append("")
                continue
            runs = f"{c.executions} execution{'s' if c.executions != 1 else ''}"
            text = f"{c.verdict()}, {runs}"
            if c.status == "violation":
                text = f"**violation** `{c.check}` (`{c.schedule or '(empty)'}`), {runs}"
            texts.append(text + (f" -- **expected {c.expected}**" if c.unexpected else ""))
        lines.append(f"| {name} | " + " | ".join(texts) + " |")
    return "\n".join(lines)


# -- command line -------------------------------------------------------------------------


def add_parser(sub: Any, common: dict[str, Any], types: dict[str, Any]) -> None:
    """The ``matrix`` subcommand; ``types`` are cli.py's argument checkers."""
    mx = sub.add_parser(
        "matrix",
        help="explore every scenario of files or directories under every profile",
        description="Explore every scenario under every profile and check each cell\n"
        "against its scenario's [expect].  Exit 0: every cell as expected; 1: one\n"
        "differs (a violation where none is expected, none where one is, or a\n"
        "search a bound stopped); 2: bad input; 130/143: interrupted.",
        **common,
    )
    mx.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or directories")
    mx.add_argument(
        "--semantics",
        metavar="LIST",
        help="comma-separated profiles, or all (the default)",
    )
    mx.add_argument(
        "--strategy", choices=("dpor", "dfs", "random"), default="dpor", help="as explore's"
    )
    mx.add_argument("--max-executions", type=types["positive"], metavar="N", help="per cell")
    mx.add_argument("--timeout", type=types["seconds"], metavar="SEC", help="per cell")
    mx.add_argument("--preemption-bound", type=types["natural"], metavar="K", help="per cell")
    mx.add_argument(
        "--max-steps", type=types["positive"], metavar="N", default=10_000, help="as explore's"
    )
    mx.add_argument(
        "--workers",
        type=types["workers"],
        metavar="N",
        default=os.cpu_count() or 1,
        help="processes exploring cells at once (default and at most: the CPU count)",
    )
    mx.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="run the cells on a Dask cluster: tcp://HOST:PORT, or local:N",
    )
    mx.add_argument("--json", action="store_true", help="machine-readable output")
    mx.add_argument("--markdown", action="store_true", help="a Markdown table")


def matrix_command(args: argparse.Namespace) -> int:
    files = scenario_files(args.paths)
    profiles = profile_list(args.semantics)
    scenarios = [(f, load_scenario(f)) for f in files]  # all input checked before any work
    work = [(f, sc, sem) for f, sc in scenarios for sem in profiles]
    options = {key: getattr(args, key) for key in CELL_OPTIONS}
    start = time.monotonic()
    cells = _run(work, options, args)
    elapsed = time.monotonic() - start
    if args.json:
        print(json.dumps({"cells": [c.as_json() for c in cells]}, indent=2))
    elif args.markdown:
        print(render_markdown(cells))
    else:
        print(render_text(cells, elapsed))
    sys.stdout.flush()
    return 1 if any(c.unexpected for c in cells) else 0


def _run(work: list, options: dict[str, Any], args: argparse.Namespace) -> list[Cell]:
    if args.cluster:
        from .cluster import cluster_executor

        with cluster_executor(args.cluster) as executor:
            return run_matrix(work, options, executor)
    workers = min(args.workers, len(work))
    if workers <= 1:
        return run_matrix(work, options)
    executor = local_executor(workers)
    try:
        return run_matrix(work, options, executor)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
