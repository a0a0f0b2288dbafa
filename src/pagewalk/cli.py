"""The ``pagewalk`` command line.

Exit codes (spec): 0 every check holds, 1 a check failed (including a kernel
BUG or a broken invariant), 2 bad input.  Bad input is reported as one line
naming the file and field; a Python traceback is always a pagewalk bug.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .errors import InputError
from .kernel.semantics import PROFILES


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"pagewalk: error: {message} (see 'pagewalk --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pagewalk", description="An executable model of the Linux 2.6.15 "
                     "memory-management core.")
    parser.add_argument("--version", action="version", version=f"pagewalk {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run a scenario once and evaluate its checks")
    run.add_argument("file", help="scenario file (TOML)")
    run.add_argument("--semantics", metavar="S",
                     help=f"kernel profile, overrides the file ({', '.join(sorted(PROFILES))})")
    run.add_argument("--schedule", metavar="STR",
                     help="replay one interleaving of the threads (needs the explorer)")
    run.add_argument("--json", action="store_true", help="machine-readable output")
    run.add_argument("--output-dir", metavar="DIR", default=".",
                     help="where relative output paths (core files) go")
    run.add_argument("--check", action="store_true",
                     help="check the model's invariants after every operation")
    show = sub.add_parser("show", help="run a scenario, then print a process's /proc views "
                          "and page tables")
    show.add_argument("file", help="scenario file (TOML)")
    show.add_argument("--process", metavar="P", help="the process (default: the first one)")
    show.add_argument("--view", choices=VIEWS, help="one view only, exactly as the kernel "
                      "prints it (default: all, with headers)")
    show.add_argument("--semantics", metavar="S", help="kernel profile, overrides the file")
    show.add_argument("--output-dir", metavar="DIR", default=".",
                      help="where relative output paths (core files) go")
    return parser


VIEWS = ("maps", "smaps", "numa_maps", "pagetables")


def cmd_show(args: argparse.Namespace) -> int:
    from .kernel.semantics import get_semantics
    from .scenario.loader import load_scenario
    from .scenario.runner import run_scenario

    scenario = load_scenario(args.file)
    if args.semantics is not None:
        get_semantics(args.semantics)
    result = run_scenario(scenario, args.semantics, output_dir=args.output_dir)
    k = result.kernel
    name = args.process or scenario.processes[0].name
    if name not in k.tasks:
        known = ", ".join(k.tasks)
        raise InputError(f"no process named {name!r} (processes: {known})", "--process")
    if k.tasks[name].mm is None:
        raise InputError(f"process {name!r} has exited by the end of the scenario", "--process")
    if result.failure is not None:
        print(f"pagewalk: note: the run stopped early: {result.failure}", file=sys.stderr)
    if args.view:
        sys.stdout.write(k.proc_view(name, args.view))
        return 0
    for view in VIEWS:
        print(f"==> /proc/{name}/{view} <==" if view != "pagetables" else
              f"==> page tables of {name} <==")
        sys.stdout.write(k.proc_view(name, view))
        print()
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .kernel.semantics import get_semantics
    from .scenario.loader import load_scenario
    from .scenario.report import render_json, render_text
    from .scenario.runner import run_scenario

    scenario = load_scenario(args.file)
    if args.semantics is not None:
        get_semantics(args.semantics)
    if args.schedule is not None:
        raise InputError("--schedule needs the interleaving explorer, which this version of "
                         "pagewalk does not have yet")
    result = run_scenario(scenario, args.semantics, check_invariants=args.check,
                          output_dir=args.output_dir)
    print(render_json(result) if args.json else render_text(scenario, result))
    return 0 if result.status == "ok" else 1


COMMANDS = {"run": cmd_run, "show": cmd_show}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except InputError as err:
        print(f"pagewalk: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pagewalk: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
