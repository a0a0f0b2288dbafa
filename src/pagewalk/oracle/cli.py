"""``pagewalk oracle FILE [--json] [--semantics S]``."""

from __future__ import annotations

import argparse
import signal
import sys

from ..kernel.semantics import get_semantics
from ..scenario.loader import load_scenario
from .report import render_json, render_text
from .run import run_oracle


def oracle_command(args: argparse.Namespace) -> int:
    """Exit status: 0 no mismatch, 1 a mismatch (or the host run failed or is
    unavailable), 2 bad input (raised as InputError to the caller)."""
    scenario = load_scenario(args.file)
    if args.semantics is not None:
        get_semantics(args.semantics)
    # SIGTERM unwinds like Ctrl-C, so the run's cleanup (workers, tmpfs
    # directory) happens on that exit path too.
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        report = run_oracle(scenario, args.semantics)
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(render_json(report) if args.json else render_text(report))
    return report.exit_status


def _terminate(signum, frame) -> None:
    sys.exit(128 + signum)
