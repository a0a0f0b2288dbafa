"""Readable renderings of an interleaving: per-task columns in the terminal,
and a self-contained HTML swimlane page."""

from __future__ import annotations

import html
from typing import Any

from .api import ExploreResult

#: helpers that take locks for their caller: the trace names the caller
_HELPERS = {
    "pte_offset_map_lock",
    "pte_alloc_map_lock",
    "get_locked_pte",
    "pud_alloc",
    "pmd_alloc",
    "pte_alloc_map",
}


def _inner(where: str) -> str:
    names = [n for n in where.split(" > ") if n and n not in _HELPERS]
    return names[-1] if names else ""


def _cell(e: dict[str, Any]) -> str:
    if e["kind"] in ("pte", "note"):
        return "  " + e["event"]
    inner = _inner(e.get("where") or "")
    return e["event"] + (f"  [{inner}]" if inner and inner not in e["event"] else "")


def render_trace(trace: list[dict[str, Any]], tasks: list[str], width: int = 58) -> str:
    """One column per task; each row is one step or one pte change."""
    cols = {t: i for i, t in enumerate(tasks)}
    header = "step  " + " | ".join(t.ljust(width) for t in tasks)
    lines = [header, "-" * len(header)]
    n = 0
    for e in trace:
        cells = [""] * len(tasks)
        text = _cell(e)
        cells[cols.get(e["task"], 0)] = text[:width]
        label = f"{n:>4}  " if e["kind"] == "step" else "      "
        if e["kind"] == "step":
            n += 1
        lines.append((label + " | ".join(c.ljust(width) for c in cells)).rstrip())
    return "\n".join(lines)


def render_result(res: ExploreResult, tasks: list[str], file: str) -> str:
    lines = [f"explore {res.scenario!r} ({file}), profile {res.semantics}, strategy {res.strategy}"]
    rate = res.executions / res.elapsed_s if res.elapsed_s else 0.0
    lines.append(
        f"executions: {res.executions} ({res.pruned} pruned by sleep sets) in "
        f"{res.elapsed_s:.3f} s, {rate:,.0f}/s"
    )
    if res.interrupted:
        lines.append(f"interrupted by {res.interrupted}: the search stopped early")
    if res.coverage is not None:
        lines.append(render_coverage(res.strategy, res.coverage))
    if res.violation is None:
        if res.status == "ok":
            lines.append("result: no violation; the search is complete")
        else:
            lines.append(f"result: incomplete ({res.reason}); no violation found so far")
        return "\n".join(lines)
    v = res.violation
    lines += [
        f"result: VIOLATION: {v.message}",
        f"schedule: {v.schedule}  ({v.preemptions} preemption(s))",
        f"replay:   pagewalk replay {file} '{v.schedule}' --semantics {res.semantics}",
    ]
    distinct = res.distinct_violations()
    if len(res.violations) > 1:
        lines.append(
            f"violations: {len(res.violations)} executions, {len(distinct)} distinct "
            "(one schedule each):"
        )
        lines += [f"  {n:>6} x  {d.message}  [{d.schedule}]" for d, n in distinct]
    if v.trace:
        lines += ["", render_trace(v.trace, tasks)]
    return "\n".join(lines)


def render_coverage(strategy: str, cov: dict[str, Any]) -> str:
    """How much of the tree a search that stopped early had finished: at the
    first nodes of its current path that branch, like the wheels of an
    odometer (the first turn slowest)."""
    if "subtrees" in cov:  # dfs in several processes
        return f"covered: {cov['subtrees']} subtree(s) of the tree left to explore"
    levels = " ".join(f"{done}/{known}" for done, known in cov["levels"]) or "none"
    known = ", of the branches known so far" if strategy == "dpor" else ""
    return (
        f"covered: branches finished at the first nodes that branch{known}: {levels}; "
        f"{cov['pending']} branch(es) pending along the current path"
    )


def render_html(title: str, trace: list[dict[str, Any]], tasks: list[str], summary: str) -> str:
    """A swimlane diagram: a lane per task, a row per step, pte changes marked."""
    head = "".join(f"<th>{html.escape(t)}</th>" for t in tasks)
    rows = []
    n = 0
    for e in trace:
        cells = []
        for t in tasks:
            if t != e["task"]:
                cells.append("<td></td>")
                continue
            cls = e["kind"]
            if "lock" in e["event"] or "down_" in e["event"]:
                cls += " lock"
            where = html.escape(e.get("where") or "")
            cells.append(
                f'<td class="{cls}" title="{where}">{html.escape(e["event"])}'
                + (f'<div class="where">{where}</div>' if where else "")
                + "</td>"
            )
        num = str(n) if e["kind"] == "step" else ""
        if e["kind"] == "step":
            n += 1
        rows.append(f"<tr><th class='n'>{num}</th>{''.join(cells)}</tr>")
    style = """
body { font: 13px/1.4 system-ui, sans-serif; margin: 2em; }
table { border-collapse: collapse; }
td, th { border: 1px solid #ddd; padding: 3px 8px; vertical-align: top; }
th { background: #f4f4f4; }
th.n { color: #888; font-weight: normal; }
td.step { background: #eef5ff; }
td.step.lock { background: #fff4dd; }
td.pte { background: #ffe9e9; font-family: monospace; }
td.note { background: #f0fff0; font-style: italic; }
.where { color: #777; font-size: 11px; }
pre { background: #f8f8f8; padding: 1em; }
"""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{style}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<pre>{html.escape(summary)}</pre><table><tr><th>step</th>{head}</tr>"
        f"{''.join(rows)}</table></body></html>\n"
    )
