"""Schedule strings: which task moved at each step, run-length encoded.

``"0*3.1*2.0"`` means task 0 for three steps, task 1 for two, then task 0.
Task numbers are the order of the scenario's ``[[thread]]`` tables.  When a
schedule runs out, the execution continues without preemption (the running
task keeps going while it can, then the lowest-numbered enabled task).
"""

from __future__ import annotations

import re

from ..errors import InputError


def encode_schedule(choices: list[int]) -> str:
    parts: list[str] = []
    i = 0
    while i < len(choices):
        j = i
        while j < len(choices) and choices[j] == choices[i]:
            j += 1
        n = j - i
        parts.append(f"{choices[i]}*{n}" if n > 1 else str(choices[i]))
        i = j
    return ".".join(parts)


#: the longest schedule a string may expand to: far beyond any execution the
#: explorer reports, small enough to expand without trouble
MAX_SCHEDULE_STEPS = 1_000_000

_PART = re.compile(r"([0-9]+)(?:\*([0-9]+))?")


def decode_schedule(text: str, limit: int = MAX_SCHEDULE_STEPS) -> list[int]:
    """The task of each step.  Checked whole before anything is expanded:
    ASCII digits only, and at most ``limit`` steps."""
    text = text.strip()
    if not text:
        return []
    runs: list[tuple[int, int]] = []
    total = 0
    for part in text.split("."):
        m = _PART.fullmatch(part)
        if m is None:
            raise InputError(
                f"bad schedule {_short(text)!r}: {_short(part)!r} is not TASK or TASK*COUNT "
                "(ASCII digits)",
                "schedule",
            )
        n = int(m.group(2)) if m.group(2) else 1
        if n < 1:
            raise InputError(f"bad schedule: {part!r} repeats a task 0 times", "schedule")
        total += n
        if total > limit:
            raise InputError(
                f"the schedule is longer than {limit:,} steps: no execution takes that many",
                "schedule",
            )
        runs.append((int(m.group(1)), n))
    out: list[int] = []
    for task, n in runs:
        out.extend([task] * n)
    return out


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."
