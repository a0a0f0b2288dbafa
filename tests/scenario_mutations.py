"""Mutations of scenario documents and texts, and a TOML writer: shared by
test_scenario_fuzz.py, test_fuzz_bounded.py and ``benchmarks/fuzz_scenarios.py``.

Two kinds of bad input: character/byte edits of a text (:func:`mutate_text`
with :data:`text_edits`), and structural breakage of a parsed document
(:func:`break_once`: a key dropped, a value of a wrong type, an unknown key,
a reference to nothing, a value duplicated), written back with
:func:`to_toml`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from datetime import date, datetime, time
from typing import Any

from hypothesis import strategies as st

# --------------------------------------------------------------------------
# A tiny TOML writer (enough for the values tomllib produces)

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_string(text: str) -> str:
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else toml_string(key)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # repr gives TOML's inf/nan/1e+100 spellings too
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def to_toml(doc: dict[str, Any]) -> str:
    """Top-level arrays of tables become [[sections]]; all else is written inline."""

    def is_section(value: Any) -> bool:
        return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)

    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in doc.items() if not is_section(v)]
    for key, tables in doc.items():
        if is_section(tables):
            for table in tables:
                lines.append(f"[[{toml_key(key)}]]")
                lines.extend(f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Documents: paths and structural breakage

Path_ = tuple[str | int, ...]


def walk(node: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every (path, value) below ``node``, the root included."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, index))


def parent_of(doc: Any, path: Path_) -> Any:
    for step in path[:-1]:
        doc = doc[step]
    return doc


WRONG_VALUES = [
    0,
    -1,
    1 << 70,
    1.5,
    float("inf"),
    True,
    "",
    "x",
    "nosuch+0x10",
    [],
    [1, "a"],
    [{"op": "exit"}],
    {},
    {"q": 1},
    date(2020, 1, 2),
    datetime(2020, 1, 2, 3, 4, 5),
]


def break_once(doc: dict[str, Any], data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(["drop", "retype", "unknown", "badref", "dup"]))
    paths = [path for path, _ in walk(doc) if path]
    if kind == "unknown":
        tables = [path for path, value in walk(doc) if isinstance(value, dict)]
        target = parent_of(doc, (*data.draw(st.sampled_from(tables)), "_"))
        target["bogus_key"] = 1
        return
    path = data.draw(st.sampled_from(paths))
    parent = parent_of(doc, path)
    if kind == "drop":
        del parent[path[-1]]
    elif kind == "retype":
        # Copied: a later "unknown" edit must not add keys to WRONG_VALUES itself.
        parent[path[-1]] = copy.deepcopy(data.draw(st.sampled_from(WRONG_VALUES)))
    elif kind == "badref":
        parent[path[-1]] = data.draw(st.sampled_from(["nosuch", "nosuch+8", "/nosuch", "t9[0]"]))
    elif isinstance(parent, list):
        parent.append(copy.deepcopy(parent[path[-1]]))
    else:
        parent[path[-1]] = [parent[path[-1]], copy.deepcopy(parent[path[-1]])]


# --------------------------------------------------------------------------
# Texts: character edits

TOKENS = [
    '"',
    "'",
    "=",
    "[",
    "]",
    "[[",
    "{",
    "}",
    ",",
    ".",
    "#",
    "\n",
    "\\",
    " ",
    "+",
    "-1",
    "0x",
    "1.5",
    "true",
    "nan",
    "\ud800",
    "\x00",
    "0xffffffffffffffffffffff",
    "1979-05-27",
    "nodes = 3\n",
    'as = "buf"\n',
    "[[check]]\n",
    'kind = "no_leaks"\n',
]

text_edits = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "replace", "drop_line", "dup_line", "swap_lines"]),
        st.integers(min_value=0, max_value=10_000),
        st.one_of(st.sampled_from(TOKENS), st.characters()),
    ),
    min_size=1,
    max_size=6,
)


def mutate_text(text: str, edits: list[tuple[str, int, str]]) -> str:
    for kind, pos, token in edits:
        lines = text.split("\n")
        line = pos % len(lines)
        at = pos % (len(text) + 1)
        if kind == "insert":
            text = text[:at] + token + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + 1 + pos % 3 :]
        elif kind == "replace":
            text = text[:at] + token + text[at + 1 :]
        elif kind == "drop_line":
            text = "\n".join(lines[:line] + lines[line + 1 :])
        elif kind == "dup_line":
            text = "\n".join(lines[: line + 1] + lines[line:])
        else:
            other = (pos // 7) % len(lines)
            lines[line], lines[other] = lines[other], lines[line]
            text = "\n".join(lines)
    return text
