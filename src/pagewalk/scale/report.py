"""What ``pagewalk scale`` prints: pft's table, /proc/lock_stat's columns,
the shared lines' transfers, and the JSON of the spec."""

from __future__ import annotations

from typing import Any

from ..kernel.constants import PAGE_SIZE
from ..sched.virtual import LockClass
from .workloads import Point

US = 1_000_000  # ps per microsecond


def _s(ps: int) -> float:
    return ps / 1e12


def pft_table(points: list[Point]) -> list[str]:
    """pft's columns: ``Gb Rep Thr CLine User System Wall flt/cpu/s fault/wsec``
    (seconds to the microsecond: virtual runs are short)."""
    lines = [
        f"{'Gb':>5} {'Rep':>3} {'Thr':>3} {'CLine':>5} {'User':>11} {'System':>13}"
        f" {'Wall':>11} {'flt/cpu/s':>11} {'fault/wsec':>11}  profile, ptlock"
    ]
    for p in points:
        gb = p.faults * PAGE_SIZE / (1 << 30)
        lock = "split" if p.split_ptlock else "global"
        lines.append(
            f"{gb:5.2f} {1:3d} {p.cpus:3d} {1:5d} {_s(p.user_ps):10.6f}s {_s(p.sys_ps):12.6f}s"
            f" {_s(p.wall_ps):10.6f}s {p.faults_per_cpu_s:11.3f} {p.faults_per_wall_s:11.3f}"
            f"  {p.semantics}, {lock}"
        )
    return lines


_HEAD = (
    "class name",
    "con-bounces",
    "contentions",
    "waittime-min",
    "waittime-max",
    "waittime-total",
    "waittime-avg",
    "acq-bounces",
    "acquisitions",
    "holdtime-min",
    "holdtime-max",
    "holdtime-total",
    "holdtime-avg",
)


def _us(ps: int) -> str:
    return f"{ps / US:14.2f}"


def lock_stat(point: Point) -> list[str]:
    """One point's locks in lock_stat version 0.4's columns (times in us)."""
    lock = "split ptlock" if point.split_ptlock else "global page_table_lock"
    rule = "-" * 235
    out = [
        f"lock_stat version 0.4 -- {point.cpus} CPUs, {point.semantics}, {lock} "
        "(virtual time; lock_stat itself came with 2.6.23)",
        rule,
        f"{_HEAD[0]:>40} " + " ".join(f"{h:>14}" for h in _HEAD[1:]),
        rule,
    ]
    for c in point.locks:
        if not c.acquisitions and not c.contentions:
            continue
        wavg = c.wait_total // c.contentions if c.contentions else 0
        havg = c.hold_total // c.acquisitions if c.acquisitions else 0
        out.append(
            f"{c.name + ':':>40} {c.con_bounces:14d} {c.contentions:14d}"
            f" {_us(c.wait_min)} {_us(c.wait_max)} {_us(c.wait_total)} {_us(wavg)}"
            f" {c.acq_bounces:14d} {c.acquisitions:14d}"
            f" {_us(c.hold_min)} {_us(c.hold_max)} {_us(c.hold_total)} {_us(havg)}"
        )
    return out


def line_table(point: Point) -> list[str]:
    """Every shared line: touches, transfers from another CPU, time CPUs
    stalled waiting for it -- where the knee comes from."""
    out = [f"{'shared cache line':>40} {'touches':>12} {'transfers':>12} {'stalled (us)':>14}"]
    for line in point.lines:
        out.append(
            f"{line.name:>40} {line.touches:12d} {line.transfers:12d} {line.wait / US:14.2f}"
        )
    return out


def text(args: Any, points: list[Point], elapsed: float) -> str:
    head = (
        f"pagewalk scale: {args.workload}, layout {args.layout}, "
        f"{args.pages_per_cpu} pages ({args.pages_per_cpu * 4} KiB) per CPU, virtual time"
    )
    out = [head, "", *pft_table(points)]
    for p in points:
        out += ["", *lock_stat(p), "", *line_table(p)]
    faults = sum(p.faults for p in points)
    out += [
        "",
        f"simulated {faults} faults in {elapsed:.1f} s of wall-clock time: "
        f"{faults / elapsed if elapsed else 0:,.0f} faults per second",
    ]
    return "\n".join(out)


def _lock_json(p: Point, c: LockClass) -> dict[str, Any]:
    return {
        "class": c.name,
        "contentions": c.contentions,
        "acquisitions": c.acquisitions,
        "waittime_total_us": c.wait_total / US,
        "holdtime_total_us": c.hold_total / US,
        "cpus": p.cpus,
        "semantics": p.semantics,
        "split_ptlock": p.split_ptlock,
        "con_bounces": c.con_bounces,
        "acq_bounces": c.acq_bounces,
        "waittime_min_us": c.wait_min / US,
        "waittime_max_us": c.wait_max / US,
        "holdtime_min_us": c.hold_min / US,
        "holdtime_max_us": c.hold_max / US,
    }


def to_json(args: Any, points: list[Point], costs: dict[str, Any], elapsed: float) -> dict:
    """The spec's shape; ``locks`` holds every point's classes (each names
    its point), further fields are extras."""
    faults = sum(p.faults for p in points)
    return {
        "workload": args.workload,
        "layout": args.layout,
        "semantics": args.semantics,
        "pages_per_cpu": args.pages_per_cpu,
        "points": [
            {
                "cpus": p.cpus,
                "split_ptlock": p.split_ptlock,
                "faults": p.faults,
                "wall_s": _s(p.wall_ps),
                "faults_per_wall_s": p.faults_per_wall_s,
                "faults_per_cpu_s": p.faults_per_cpu_s,
                "semantics": p.semantics,
                "user_s": _s(p.user_ps),
                "system_s": _s(p.sys_ps),
                "idle_s": _s(p.idle_ps),
            }
            for p in points
        ],
        "locks": [_lock_json(p, c) for p in points for c in p.locks if c.acquisitions],
        "lines": [
            {
                "cpus": p.cpus,
                "semantics": p.semantics,
                "split_ptlock": p.split_ptlock,
                "line": line.name,
                "touches": line.touches,
                "transfers": line.transfers,
                "stalled_us": line.wait / US,
            }
            for p in points
            for line in p.lines
        ],
        "costs": costs,
        "simulation": {
            "elapsed_s": elapsed,
            "faults_per_s": faults / elapsed if elapsed else 0.0,
        },
    }
