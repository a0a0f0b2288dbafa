"""The ``pagewalk`` command line.

Exit codes (spec): 0 every check holds, 1 a check failed (including a kernel
BUG or a broken invariant), 2 bad input.  Bad input is reported as one line
naming the file and field; a Python traceback is always a pagewalk bug.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import __version__
from .errors import InputError
from .kernel.semantics import PROFILES


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"pagewalk: error: {message} (see 'pagewalk --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pagewalk",
        description="An executable model of the Linux 2.6.15 memory-management core.",
    )
    parser.add_argument("--version", action="version", version=f"pagewalk {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run a scenario once and evaluate its checks")
    run.add_argument("file", help="scenario file (TOML)")
    run.add_argument(
        "--semantics",
        metavar="S",
        help=f"kernel profile, overrides the file ({', '.join(sorted(PROFILES))})",
    )
    run.add_argument(
        "--schedule",
        metavar="STR",
        help="replay one interleaving of the threads (needs the explorer)",
    )
    run.add_argument("--json", action="store_true", help="machine-readable output")
    run.add_argument(
        "--output-dir",
        metavar="DIR",
        default=".",
        help="where relative output paths (core files) go",
    )
    run.add_argument(
        "--check", action="store_true", help="check the model's invariants after every operation"
    )
    ex = sub.add_parser("explore", help="explore the interleavings of a scenario's threads")
    ex.add_argument("file", help="scenario file (TOML)")
    ex.add_argument("--semantics", metavar="S", help="kernel profile, overrides the file")
    ex.add_argument(
        "--strategy",
        choices=("dpor", "dfs", "random"),
        default="dpor",
        help="dpor: partial-order reduction with sleep sets (default); dfs: every "
        "interleaving; random: seeded PCT sampling",
    )
    ex.add_argument("--max-executions", type=_positive, metavar="N")
    ex.add_argument("--timeout", type=_seconds, metavar="SEC")
    ex.add_argument(
        "--preemption-bound",
        type=_natural,
        metavar="K",
        help="skip interleavings with more than K preemptions",
    )
    ex.add_argument(
        "--workers",
        type=_positive,
        metavar="N",
        default=1,
        help="processes; the verdict and the interleavings explored are those "
        "of one worker, computed ahead in parallel",
    )
    ex.add_argument("--seed", type=int, default=0, help="random strategy seed")
    ex.add_argument("--all", action="store_true", help="do not stop at the first violation")
    ex.add_argument("--json", action="store_true", help="machine-readable output")
    ex.add_argument(
        "--trace-html",
        metavar="FILE",
        help="write the failing interleaving as an HTML swimlane diagram",
    )
    ex.add_argument(
        "--compare",
        nargs=2,
        metavar=("A", "B"),
        help="collect the final states reachable under profiles A and B and "
        "report those reachable under one only",
    )
    ex.add_argument("--no-progress", action="store_true", help="no live progress line")
    rp = sub.add_parser("replay", help="re-run one interleaving and print its trace")
    rp.add_argument("file", help="scenario file (TOML)")
    rp.add_argument("schedule", help="a schedule string from explore")
    rp.add_argument("--semantics", metavar="S", help="kernel profile, overrides the file")
    rp.add_argument("--json", action="store_true", help="machine-readable output")
    rp.add_argument("--trace-html", metavar="FILE", help="also write an HTML swimlane diagram")
    show = sub.add_parser(
        "show", help="run a scenario, then print a process's /proc views and page tables"
    )
    show.add_argument("file", help="scenario file (TOML)")
    show.add_argument("--process", metavar="P", help="the process (default: the first one)")
    show.add_argument(
        "--view",
        choices=VIEWS,
        help="one view only, exactly as the kernel prints it (default: all, with headers)",
    )
    show.add_argument("--semantics", metavar="S", help="kernel profile, overrides the file")
    show.add_argument(
        "--output-dir",
        metavar="DIR",
        default=".",
        help="where relative output paths (core files) go",
    )
    bn = sub.add_parser(
        "bench", help="the host kernel's and the model's cost per page, measured side by side"
    )
    bn.add_argument(
        "--quick", action="store_true", help="64 MiB (16384 pages), 3 runs (default: 1 GiB, 5 runs)"
    )
    bn.add_argument("--json", action="store_true", help="machine-readable output")
    bn.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="only these operations: write_fault read_fault cow_fault fork "
        "dontneed munmap gup mem_read",
    )
    bn.add_argument(
        "--repeat",
        type=_positive,
        metavar="R",
        help="repetitions, the median is reported (default 5, --quick 3)",
    )
    bn.add_argument("--pages", type=_positive, metavar="N", help=argparse.SUPPRESS)
    orc = sub.add_parser(
        "oracle",
        help="run a scenario on the model and on this machine's "
        "kernel and classify every difference (needs root)",
    )
    orc.add_argument("file", help="scenario file (TOML)")
    orc.add_argument("--semantics", metavar="S", help="kernel profile, overrides the file")
    orc.add_argument("--json", action="store_true", help="machine-readable output")
    from .scale.cli import add_parser as add_scale_parser

    add_scale_parser(sub)
    return parser


VIEWS = ("maps", "smaps", "numa_maps", "pagetables")


def _positive(text: str) -> int:
    value = _natural(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _natural(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _load(args: argparse.Namespace):
    from .kernel.semantics import get_semantics
    from .scenario.loader import load_scenario

    scenario = load_scenario(args.file)
    for name in [getattr(args, "semantics", None), *(getattr(args, "compare", None) or [])]:
        if name is not None:
            get_semantics(name)
    return scenario


def cmd_show(args: argparse.Namespace) -> int:
    from .scenario.runner import run_scenario

    scenario = _load(args)
    result = run_scenario(scenario, args.semantics, output_dir=args.output_dir, checks=False)
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
        print(
            f"==> /proc/{name}/{view} <=="
            if view != "pagetables"
            else f"==> page tables of {name} <=="
        )
        sys.stdout.write(k.proc_view(name, view))
        print()
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .scenario.report import render_json, render_text
    from .scenario.runner import run_scenario

    scenario = _load(args)
    if args.schedule is not None:
        from .explore.api import replay

        result = replay(scenario, args.schedule, args.semantics).result
    else:
        result = run_scenario(
            scenario, args.semantics, check_invariants=args.check, output_dir=args.output_dir
        )
    print(render_json(result) if args.json else render_text(scenario, result))
    return 0 if result.status == "ok" else 1


def cmd_explore(args: argparse.Namespace) -> int:
    from .explore.cli import explore_command

    return explore_command(args, _load(args))


def cmd_replay(args: argparse.Namespace) -> int:
    from .explore.cli import replay_command

    return replay_command(args, _load(args))


COMMANDS = {"run": cmd_run, "show": cmd_show, "explore": cmd_explore, "replay": cmd_replay}


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench.cli import bench_command

    return bench_command(args)


COMMANDS["bench"] = cmd_bench


def cmd_oracle(args: argparse.Namespace) -> int:
    from .oracle.cli import oracle_command

    return oracle_command(args)


COMMANDS["oracle"] = cmd_oracle


def cmd_scale(args: argparse.Namespace) -> int:
    from .scale.cli import scale_command

    return scale_command(args)


COMMANDS["scale"] = cmd_scale


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
    except BrokenPipeError:  # e.g. `pagewalk run --json x.toml | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stay quiet at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
