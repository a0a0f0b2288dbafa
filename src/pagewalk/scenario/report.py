"""Human-readable and JSON renderings of a run."""

from __future__ import annotations

import json
from typing import Any

from .model import AddrRef, OpSpec, Scenario
from .runner import OpResult, RunResult
from .summary import data_text


def _arg(value: Any) -> str:
    if isinstance(value, AddrRef):
        return value.text
    if isinstance(value, bytes):
        text = value.decode("utf-8", errors="replace")
        return repr(text if len(text) <= 24 else text[:21] + "...")
    if isinstance(value, frozenset):
        return ",".join(sorted(value)) or "-"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 4096:
        return hex(value)
    return str(value)


def describe_args(op: OpSpec) -> str:
    return " ".join(f"{k}={_arg(v)}" for k, v in op.args.items() if k != "expect")


def describe_result(op: str, res: OpResult) -> str:
    if res.signal:
        return res.signal
    if res.errno:
        return res.errno
    if op == "mmap" and isinstance(res.value, int):
        return hex(res.value)
    if res.data is not None:
        shown = data_text(res.data)
        return f"{res.value} {shown}" if op == "mem_read" else shown
    return str(res.value)


def _all_ops(scenario: Scenario) -> dict[str, OpSpec]:
    ops = list(scenario.setup) + [o for t in scenario.threads for o in t.ops] + list(scenario.final)
    return {o.step: o for o in ops}


def render_text(scenario: Scenario, result: RunResult) -> str:
    ops = _all_ops(scenario)
    lines = [
        f"scenario {scenario.name!r} ({scenario.path}), profile {result.semantics}, "
        f"{scenario.nodes} node(s), split ptlock {'on' if scenario.split_ptlock else 'off'}"
    ]
    rows = [("step", "process", "op", "arguments", "result")]
    for res in result.results:
        op = ops.get(res.step)
        rows.append(
            (
                res.step,
                res.process,
                res.op,
                describe_args(op) if op else "",
                describe_result(res.op, res),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        lines.append("  " + "  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4])
    lines.append("checks:")
    if not result.checks:
        lines.append("  (none)")
    kind_w = max((len(c.kind) for c in result.checks), default=4)
    for c in result.checks:
        lines.append(f"  {'ok  ' if c.ok else 'FAIL'}  {c.kind.ljust(kind_w)}  {c.message}")
    lines.append("stats: " + " ".join(f"{k}={v}" for k, v in result.stats.items()))
    failed = sum(not c.ok for c in result.checks)
    verdict = "ok" if not failed else f"violation ({failed} of {len(result.checks)} checks fail)"
    lines.append(f"result: {verdict}")
    return "\n".join(lines)


def render_json(result: RunResult) -> str:
    return json.dumps(result.as_json(), indent=2)
