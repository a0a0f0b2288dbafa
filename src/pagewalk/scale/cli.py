"""``pagewalk scale``: page faults on N simulated CPUs in virtual time."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ..errors import InputError, ModelFailure
from ..kernel.semantics import PROFILES, get_semantics
from .costs import default_costs
from .plot import check_plot, write_plot
from .report import text, to_json
from .workloads import LAYOUTS, MAX_CPUS, WORKLOADS, Point, simulate, split_default

DEFAULT_CPUS = "1,2,4,8,16,32,64,128,256,512"
DEFAULT_SEMANTICS = "seed^-ptl-pushdown,2.6.15"
#: One pte page's worth: 2 MiB per CPU.
DEFAULT_PAGES = 512


def add_parser(sub: Any) -> None:
    """Register ``scale`` on the main parser's subcommands."""
    sc = sub.add_parser(
        "scale",
        help="page-fault throughput on N simulated CPUs: global page_table_lock "
        "against split ptlock, in virtual time",
    )
    sc.add_argument(
        "--workload",
        choices=sorted(WORKLOADS),
        default="pft",
        help="pft (default): Lameter's, each thread its anonymous region; page_fault1: "
        "anonymous private; page_fault2: private file (COW); page_fault3: shared file",
    )
    sc.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="private",
        help="private (default): a region per thread; shared: one region, pages dealt "
        "round-robin, so the threads share pte pages",
    )
    sc.add_argument(
        "--cpus",
        metavar="LIST",
        default=DEFAULT_CPUS,
        help=f"comma-separated CPU counts, 1..{MAX_CPUS} (default {DEFAULT_CPUS})",
    )
    sc.add_argument(
        "--semantics",
        metavar="S",
        default=DEFAULT_SEMANTICS,
        help="kernel profile, or a comma-separated list of them "
        f"({', '.join(sorted(PROFILES))}; default {DEFAULT_SEMANTICS})",
    )
    sc.add_argument(
        "--split-ptlock",
        choices=("on", "off"),
        help="default: as CONFIG_SPLIT_PTLOCK_CPUS=4 gives for the CPU count",
    )
    sc.add_argument(
        "--pages-per-cpu",
        type=_pages,
        metavar="N",
        default=DEFAULT_PAGES,
        help=f"pages each CPU faults (default {DEFAULT_PAGES}: 2 MiB, one pte page)",
    )
    sc.add_argument("--json", action="store_true", help="machine-readable output")
    sc.add_argument("--plot", metavar="FILE", help="write an SVG or PNG plot (needs matplotlib)")


def _pages(text_: str) -> int:
    try:
        value = int(text_)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a page count: {text_!r}") from None
    if not 1 <= value <= 1 << 16:
        raise argparse.ArgumentTypeError(f"must be 1..65536, got {text_}")
    return value


def parse_cpus(spec: str) -> list[int]:
    """``1,2,4`` -> [1, 2, 4]; anything else is a one-line input error."""
    out: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if not part.isdigit() or not 1 <= int(part) <= MAX_CPUS:
            raise InputError(f"--cpus {spec}: {part!r} is not a CPU count (1..{MAX_CPUS})")
        out.append(int(part))
    return sorted(set(out))


def parse_semantics(spec: str, split: str | None) -> list[str]:
    names = [s.strip() for s in spec.split(",")]
    for name in names:
        sem = get_semantics(name)  # an unknown name is an input error
        if split == "on" and not sem.split_ptlock_available:
            raise InputError(
                f"--split-ptlock on: profile {name} predates the split page-table lock "
                "(4c21e2f2441d)"
            )
    return list(dict.fromkeys(names))


#: Pages one run may fault (2 GiB): page_fault2 adds as many page-cache
#: pages, and the model's one node holds 4 GiB.
MAX_PAGES = 1 << 19


def check_size(cpus: list[int], pages: int) -> None:
    if cpus[-1] * pages > MAX_PAGES:
        raise InputError(
            f"--cpus {cpus[-1]} x --pages-per-cpu {pages} = {cpus[-1] * pages} pages: "
            f"at most {MAX_PAGES} (2 GiB) in one run"
        )


def run_points(args: argparse.Namespace) -> tuple[list[Point], float]:
    cpus = parse_cpus(args.cpus)
    check_size(cpus, args.pages_per_cpu)
    profiles = parse_semantics(args.semantics, args.split_ptlock)
    costs = default_costs()
    points: list[Point] = []
    started = time.perf_counter()
    for sem in profiles:
        for n in cpus:
            split = (
                split_default(sem, n) if args.split_ptlock is None else args.split_ptlock == "on"
            )
            points.append(
                simulate(args.workload, args.layout, n, sem, split, args.pages_per_cpu, costs)
            )
    return points, time.perf_counter() - started


def scale_command(args: argparse.Namespace) -> int:
    check_size(parse_cpus(args.cpus), args.pages_per_cpu)  # input errors before any work
    parse_semantics(args.semantics, args.split_ptlock)
    if args.plot:
        check_plot(args.plot)
    try:
        points, elapsed = run_points(args)
    except ModelFailure as err:  # a kernel BUG() in some CPU's fault: report, as `run` does
        print(f"pagewalk scale: {err}", file=sys.stderr)
        return 1
    if args.plot:
        write_plot(args.plot, points, args)
    if args.json:
        print(json.dumps(to_json(args, points, default_costs().describe(), elapsed), indent=2))
    else:
        print(text(args, points, elapsed))
    return 0
