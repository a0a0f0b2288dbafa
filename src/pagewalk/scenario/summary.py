"""How bytes from a run (what a read returned, what a check compared) appear
in results and messages: in full when short, as length and digest when long.

A 64 MiB read rendered byte by byte is 400 MB of JSON and a message nobody
reads; past :data:`DATA_SHOWN_MAX` a result shows ``data_length`` and
``data_sha256`` instead, and messages show a short prefix or the first
difference (docs/scenarios.md, "Limits").
"""

from __future__ import annotations

import hashlib
from typing import Any

#: Bytes a result shows in full (one page); longer ones are summarised.
DATA_SHOWN_MAX = 4096
#: Bytes a message shows with repr(); longer ones are cut.
_MESSAGE_MAX = 64


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def data_json(data: bytes) -> dict[str, Any]:
    """The JSON fields of a result's bytes: ``data`` (UTF-8, invalid bytes
    replaced), or past DATA_SHOWN_MAX ``data`` null with ``data_length`` and
    ``data_sha256`` (of the raw bytes)."""
    if len(data) <= DATA_SHOWN_MAX:
        return {"data": data.decode("utf-8", errors="replace")}
    return {"data": None, "data_length": len(data), "data_sha256": sha256(data)}


def data_text(data: bytes, width: int = 32) -> str:
    """A result's bytes for the text report: their start as text, quoted, and
    past DATA_SHOWN_MAX their length and the start of their digest."""
    head = data[: 4 * width].decode("utf-8", errors="replace")
    shown = repr(head if len(head) <= width else head[: width - 3] + "...")
    if len(data) > DATA_SHOWN_MAX:
        shown += f" ({len(data)} bytes, sha256 {sha256(data)[:16]})"
    return shown


def show_bytes(data: bytes) -> str:
    """Bytes in a message: repr() when short, else a prefix and the length."""
    if len(data) <= _MESSAGE_MAX:
        return repr(data)
    return f"{data[:16]!r}... ({len(data)} bytes, sha256 {sha256(data)[:16]})"


def mismatch(got: bytes, expected: bytes) -> str:
    """``got`` differs from ``expected``: both in full when short, else their
    lengths and the first differing offset with 16 bytes of each from there."""
    if len(got) <= _MESSAGE_MAX and len(expected) <= _MESSAGE_MAX:
        return f"{got!r}, expected {expected!r}"
    first = first_difference(got, expected)
    return (
        f"{len(got)} bytes, expected {len(expected)}; first difference at offset {first}: "
        f"{got[first : first + 16]!r}, expected {expected[first : first + 16]!r}"
    )


def first_difference(a: bytes, b: bytes) -> int:
    """The first offset where ``a`` and ``b`` differ (the shorter one's
    length if one is a prefix of the other, which includes equal bytes)."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i : i + 4096] == b[i : i + 4096]:  # a page at a time, in C
        i += 4096
    end = min(i + 4096, n)
    while i < end and a[i] == b[i]:
        i += 1
    return min(i, n)
