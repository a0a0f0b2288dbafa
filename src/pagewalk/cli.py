"""The ``pagewalk`` command line.

Exit codes (spec, and EXIT_CODES below): 0 every check holds, 1 a check
failed (including a kernel BUG or a broken invariant), 2 bad input, 3 a
bound or the timeout stopped the work first, 70 an internal error of
pagewalk (never a kernel bug: the schedule and traceback are printed),
130/143 interrupted by SIGINT/SIGTERM (a search prints what it found so far).
Bad input is reported as one line naming the file and field.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from . import __version__
from .errors import EXIT_INTERNAL, InputError, InternalError
from .kernel.semantics import ALIASES, PROFILES

EXIT_CODES = f"""exit status:
  0    the run or search finished and every check holds
  1    a check failed: a violation, a kernel BUG() or a broken invariant
  2    bad input: the scenario file or an argument (one line names it)
  3    a bound (--max-executions, --timeout, --preemption-bound) stopped it first
  {EXIT_INTERNAL}   internal error: pagewalk itself failed (a pagewalk bug, not a kernel bug)
  130  interrupted (SIGINT, Ctrl-C); 143: terminated (SIGTERM)"""

_PROFILES_HELP = (
    f"kernel profile, overrides the file's `semantics` ({', '.join(PROFILES)}; "
    f"old names {', '.join(ALIASES)}): `pagewalk profiles` lists them with their commits"
)
_SCHEDULE_HELP = (
    "a schedule: the thread that moves at each step, run-length encoded: "
    "'0*3.1*2.0' is thread 0 for 3 steps, thread 1 for 2, then thread 0 (threads "
    "numbered in file order from 0); when it ends the execution goes on without "
    "preemption; every step given must be taken"
)


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered like Ctrl-C so that a search stops the same way."""

    signal_name = "SIGTERM"


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"pagewalk: error: {message} (see 'pagewalk --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pagewalk",
        description="An executable model of the Linux 2.6.15 memory-management core.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pagewalk {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    common = {"epilog": EXIT_CODES, "formatter_class": argparse.RawDescriptionHelpFormatter}
    run = sub.add_parser("run", help="run a scenario once and evaluate its checks", **common)
    run.add_argument("file", help="scenario file (TOML)")
    run.add_argument("--semantics", metavar="S", help=_PROFILES_HELP)
    run.add_argument(
        "--schedule",
        metavar="STR",
        help="run the threads in this interleaving instead of one after another: " + _SCHEDULE_HELP,
    )
    run.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SEC",
        help="stop after SEC seconds of work (exit 3)",
    )
    _max_steps(run)
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
    ex = sub.add_parser(
        "explore", help="explore the interleavings of a scenario's threads", **common
    )
    ex.add_argument("file", help="scenario file (TOML)")
    ex.add_argument("--semantics", metavar="S", help=_PROFILES_HELP)
    ex.add_argument(
        "--strategy",
        choices=("dpor", "dfs", "random"),
        default="dpor",
        help="dpor: partial-order reduction with sleep sets (default); dfs: every "
        "interleaving; random: seeded PCT sampling",
    )
    ex.add_argument(
        "--max-executions",
        type=_positive,
        metavar="N",
        help="stop after N executions (exit 3 if the search was not complete)",
    )
    ex.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SEC",
        help="stop starting executions after SEC seconds (exit 3 if not complete)",
    )
    _max_steps(ex)
    ex.add_argument(
        "--preemption-bound",
        type=_natural,
        metavar="K",
        help="skip interleavings with more than K preemptions",
    )
    ex.add_argument(
        "--workers",
        type=_workers,
        metavar="N",
        default=1,
        help="processes, at most this machine's CPU count (dfs and random; dpor runs "
        "in one); the verdict and the interleavings explored are those of one "
        "worker, computed ahead in parallel",
    )
    ex.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="run dfs subtrees and random seeds on a Dask cluster: tcp://HOST:PORT, or "
        "local:N to start one of N workers (pip install 'pagewalk[cluster]')",
    )
    ex.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="save the search's state in FILE (JSON) when it starts, every 5 s and when it "
        "ends or is interrupted",
    )
    ex.add_argument(
        "--resume",
        metavar="FILE",
        help="continue the search a --checkpoint FILE saved (same scenario file content, "
        "profile, strategy and bounds, else exit 2) to the result of an uninterrupted run; "
        "give --checkpoint too to keep saving; --max-executions counts the whole search; "
        "a dfs saved with --workers/--cluster resumes with one of them",
    )
    ex.add_argument("--seed", type=int, default=0, help="random strategy seed")
    ex.add_argument(
        "--all",
        action="store_true",
        help="do not stop at the first violation: count them, and list each distinct one",
    )
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
    ex.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress on stderr (by default: a live line on a terminal, "
        "a line every 5 s elsewhere)",
    )
    ex.add_argument(
        "--output-dir",
        metavar="DIR",
        help="write the files (core dumps) of the reported violation's execution here "
        "(default: no execution writes any)",
    )
    from .explore.matrix import add_parser as add_matrix_parser

    checkers = {"positive": _positive, "natural": _natural, "seconds": _seconds}
    add_matrix_parser(sub, common, {**checkers, "workers": _workers})
    rp = sub.add_parser("replay", help="re-run one interleaving and print its trace", **common)
    rp.add_argument("file", help="scenario file (TOML)")
    rp.add_argument("schedule", help=_SCHEDULE_HELP + " (explore prints one for a violation)")
    rp.add_argument("--semantics", metavar="S", help=_PROFILES_HELP)
    _max_steps(rp)
    rp.add_argument("--json", action="store_true", help="machine-readable output")
    rp.add_argument("--trace-html", metavar="FILE", help="also write an HTML swimlane diagram")
    rp.add_argument(
        "--output-dir",
        metavar="DIR",
        help="write the execution's files (core dumps) here (default: none are written)",
    )
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
    show.add_argument("--semantics", metavar="S", help=_PROFILES_HELP)
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
    bn.add_argument(
        "--profile",
        nargs="?",
        type=_positive,
        const=15,
        metavar="TOP",
        help="cProfile the model's timed regions only; print the TOP (15) functions on stderr",
    )
    bn.add_argument(
        "--no-memory", action="store_true", help="skip the tracemalloc bytes-per-page pass"
    )
    orc = sub.add_parser(
        "oracle",
        help="run a scenario on the model and on this machine's "
        "kernel and classify every difference (needs root)",
    )
    orc.add_argument("file", help="scenario file (TOML)")
    orc.add_argument("--semantics", metavar="S", help=_PROFILES_HELP)
    orc.add_argument("--json", action="store_true", help="machine-readable output")
    from .scale.cli import add_parser as add_scale_parser

    add_scale_parser(sub)
    prof = sub.add_parser(
        "profiles",
        help="list the kernel profiles: base tree, switches and their commits, old names",
        **common,
    )
    prof.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


VIEWS = ("maps", "smaps", "numa_maps", "pagetables")


def _max_steps(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-steps",
        type=_positive,
        metavar="N",
        default=10_000,
        help="schedule points a thread may take beyond what its operations ask for "
        "(16 a page they name); past it the execution is reported as nontermination "
        "(default 10000)",
    )


def _workers(text: str) -> int:
    value = _positive(text)
    cpus = os.cpu_count() or 1
    if value > cpus:
        raise argparse.ArgumentTypeError(
            f"at most {cpus} (this machine's CPUs; more processes only compete for them), "
            f"got {text}"
        )
    return value


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
    try:
        with _alarm(args.timeout):
            if args.schedule is not None:
                from .explore.api import replay

                result = replay(
                    scenario,
                    args.schedule,
                    args.semantics,
                    args.max_steps,
                    output_dir=args.output_dir,
                ).result
            else:
                result = run_scenario(
                    scenario,
                    args.semantics,
                    check_invariants=args.check,
                    output_dir=args.output_dir,
                )
    except TimedOut:
        message = f"the run stopped: --timeout {args.timeout:g} s reached"
        _report_error(args, message, "incomplete")
        return 3
    print(render_json(result) if args.json else render_text(scenario, result))
    return 0 if result.status == "ok" else 1


class TimedOut(BaseException):
    """``run --timeout``: raised by SIGALRM wherever the run is, like an
    interrupt (a BaseException, so no ``except Exception`` of the model
    mistakes it for its own error)."""


@contextmanager
def _alarm(seconds: float | None) -> Iterator[None]:
    if not seconds:
        yield
        return

    def fire(signum: int, frame: object) -> None:
        raise TimedOut()

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


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


def cmd_profiles(args: argparse.Namespace) -> int:
    from .profiles_cli import cmd_profiles as profiles_command

    return profiles_command(args)


COMMANDS["profiles"] = cmd_profiles


def cmd_matrix(args: argparse.Namespace) -> int:
    from .explore.matrix import matrix_command

    return matrix_command(args)


COMMANDS["matrix"] = cmd_matrix


def main(argv: Sequence[str] | None = None) -> int:
    args = argparse.Namespace(json=False)  # what the handlers see if Ctrl-C comes first
    old_term = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except InputError as err:
        return _report_error(args, str(err))
    except InternalError as err:
        return _report_internal(args, err)
    except KeyboardInterrupt as sig:
        name = getattr(sig, "signal_name", "SIGINT")
        _report_error(args, f"interrupted by {name}", "interrupted")
        return 143 if name == "SIGTERM" else 130
    except BrokenPipeError:  # e.g. `pagewalk run --json x.toml | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stay quiet at exit
        return 0
    except Exception as err:  # anything else is pagewalk's own defect
        return _report_internal(args, InternalError.of(err))
    finally:
        signal.signal(signal.SIGTERM, old_term)


def _report_error(args: argparse.Namespace, message: str, status: str = "error") -> int:
    """One line on stderr; with --json also the spec's error object on stdout."""
    print(f"pagewalk: {'error: ' if status == 'error' else ''}{message}", file=sys.stderr)
    if getattr(args, "json", False):
        extra = {} if status == "error" else {"reason": status}
        print(json.dumps({"status": "error", "error": message, **extra}))
    return 2


def _report_internal(args: argparse.Namespace, err: InternalError) -> int:
    """An internal error: what failed, the schedule that reaches it, the
    traceback.  Never reported as a kernel bug or a violation."""
    lines = [f"pagewalk: internal error: {err} (a defect of pagewalk, not of the kernel)"]
    if err.schedule is not None:
        semantics = getattr(args, "semantics", None)
        again = f"pagewalk replay {args.file} '{err.schedule}'" + (
            f" --semantics {semantics}" if semantics else ""
        )
        lines.append(f"schedule: {err.schedule or '(before any step)'}   reproduce: {again}")
    print("\n".join(lines), file=sys.stderr)
    if err.traceback:
        print(err.traceback.rstrip(), file=sys.stderr)
    if getattr(args, "json", False):
        out = {"status": "error", "error": str(err), "internal": True, "schedule": err.schedule}
        print(json.dumps({**out, "traceback": err.traceback}))
    return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
