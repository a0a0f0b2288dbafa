"""Schedule strings: which task moved at each step, run-length encoded.

``"0*3.1*2.0"`` means task 0 for three steps, task 1 for two, then task 0.
Task numbers are the order of the scenario's ``[[thread]]`` tables.  When a
schedule runs out, the execution continues without preemption (the running
task keeps going while it can, then the lowest-numbered enabled task).
"""

from __future__ import annotations

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


def decode_schedule(text: str) -> list[int]:
    text = text.strip()
    if not text:
        return []
    out: list[int] = []
    for part in text.split("."):
        task, _, count = part.partition("*")
        try:
            t = int(task)
            n = int(count) if count else 1
        except ValueError:
            raise InputError(f"bad schedule {text!r}: {part!r} is not TASK or TASK*COUNT") from None
        if t < 0 or n < 1:
            raise InputError(f"bad schedule {text!r}: {part!r} is out of range")
        out.extend([t] * n)
    return out
