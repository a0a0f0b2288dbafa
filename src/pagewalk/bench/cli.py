"""``pagewalk bench``: the command-line entry (the options are declared in
:mod:`pagewalk.cli`)."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import InputError
from .host import OPERATIONS
from .run import format_text, progress_line, run_bench

DEFAULT_PAGES = 262144  # 1 GiB
QUICK_PAGES = 16384  # 64 MiB
DEFAULT_REPEAT = 5
QUICK_REPEAT = 3


def selected(only: list[str] | None) -> list[str]:
    """The operations named by ``--only`` (space- or comma-separated), in
    report order; all of them by default."""
    if not only:
        return list(OPERATIONS)
    names = {s for item in only for s in item.split(",") if s}
    unknown = sorted(names - set(OPERATIONS))
    if unknown:
        raise InputError(
            f"unknown operation(s) {', '.join(unknown)} (known: {', '.join(OPERATIONS)})", "--only"
        )
    return [name for name in OPERATIONS if name in names]


def bench_command(args: argparse.Namespace) -> int:
    quick = getattr(args, "quick", False)
    pages = getattr(args, "pages", None) or (QUICK_PAGES if quick else DEFAULT_PAGES)
    repeat = getattr(args, "repeat", None) or (QUICK_REPEAT if quick else DEFAULT_REPEAT)
    if pages < 1 or repeat < 1:
        raise InputError("--pages and --repeat must be at least 1")
    names = selected(getattr(args, "only", None))
    profile = getattr(args, "profile", None)  # --profile [TOP]
    show, done = progress_line()
    try:
        report = run_bench(
            pages,
            repeat,
            names,
            show,
            memory=not getattr(args, "no_memory", False),
            profile_top=profile,
        )
    finally:
        done()
    text = report.pop("profile", None)
    if getattr(args, "json", False):
        print(json.dumps(report, indent=2))
    else:
        print(format_text(report), end="")
    if text is not None:
        print(text, end="", file=sys.stderr)
    return 0
