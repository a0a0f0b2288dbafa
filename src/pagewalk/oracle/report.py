"""Human and JSON output of ``pagewalk oracle``."""

from __future__ import annotations

import json
import os

from .classify import EQUAL, ERA, MISMATCH, NOT_COMPARABLE, RULES, Row
from .run import OracleReport

_ORDER = ("state", "anon", "frame", "mapcount", "excl", "content")


def render_json(report: OracleReport) -> str:
    return json.dumps(report.as_json(), indent=2)


def render_text(report: OracleReport) -> str:
    u = os.uname()
    lines = [
        f"oracle {report.scenario!r} ({report.path}): model profile {report.semantics} "
        f"vs host Linux {u.release} ({u.machine})"
    ]
    for step in report.steps:
        lines.append("")
        lines.append(f"== {step.label}  {step.process}: {step.op} {step.text}".rstrip())
        table = [("observable", "model", "host", "verdict")]
        for row in _fold(step.rows):
            verdict = row.verdict + (f" [{row.rule}]" if row.rule else "")
            table.append((row.observable, row.model, row.host, verdict))
            if row.note and row.verdict not in (EQUAL, NOT_COMPARABLE):
                table.append(("", "", f"  ({row.note})", ""))
        widths = [min(max(len(r[i]) for r in table), cap) for i, cap in enumerate((40, 44, 44))]
        for r in table:
            cells = [r[i].ljust(widths[i]) for i in range(3)]
            lines.append("  " + "  ".join(cells) + "  " + r[3])
        if step.note:
            lines.append(f"  note: {step.note}")
    counts = report.counts
    lines.append("")
    for note in report.notes:
        lines.append(f"note: {note}")
    used = report.rules_used
    if used:
        lines.append("era differences seen:")
        for rule in used:
            lines.append(f"  {rule}: {RULES[rule].title} -- {RULES[rule].commit}")
    lines.append(
        f"observables: {counts[EQUAL]} equal, {counts[ERA]} era difference, "
        f"{counts[MISMATCH]} mismatch, {counts[NOT_COMPARABLE]} not comparable"
    )
    lines.append(f"result: {report.status}")
    return "\n".join(lines)


def _fold(rows: list[Row]) -> list[Row]:
    """One line for a page whose observables are all equal; its rows otherwise."""
    out: list[Row] = []
    i = 0
    while i < len(rows):
        row = rows[i]
        if row.group is None:
            out.append(row)
            i += 1
            continue
        j = i
        while j < len(rows) and rows[j].group == row.group:
            j += 1
        group = rows[i:j]
        if all(r.verdict == EQUAL for r in group):
            out.append(Row(row.group, _compact(group, "model"), _compact(group, "host"), EQUAL))
        else:
            out.extend(group)
        i = j
    return out


def _compact(group: list[Row], side: str) -> str:
    vals = {r.observable.rsplit(": ", 1)[-1]: getattr(r, side) for r in group}
    parts = []
    for key in _ORDER:
        if key in vals:
            v = vals[key]
            parts.append(f"mc={v}" if key == "mapcount" else v)
    return " ".join(parts)
