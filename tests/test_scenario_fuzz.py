"""Fuzzing the scenario loader: whatever the input, it loads or raises InputError.

Two sources of bad input: (1) random character/byte mutations of a valid
scenario text, (2) structurally broken documents built from a valid dict and
written out with the tiny TOML writer below.  Any exception other than
InputError, or an InputError that does not start with the file name, fails.
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Iterator
from datetime import date, datetime, time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pagewalk.errors import InputError
from pagewalk.scenario.loader import load_scenario, parse_scenario

FILE = "fuzz.toml"
# No example database: the tests must not leave files in the work tree.
FAST = settings(max_examples=250, deadline=None, database=None)

# --------------------------------------------------------------------------
# A valid scenario using every op and every check kind

BASE: dict[str, Any] = {
    "name": "fuzz",
    "description": "every op and check",
    "semantics": "2.6.15",
    "nodes": 2,
    "split_ptlock": False,
    "file": [
        {"path": "/data", "content": "hello", "mode": "rw"},
        {"path": "/zero", "size": 8192, "hugetlb": False},
        {"path": "/pat", "fill": "ab", "size": 100, "mode": "r"},
    ],
    "process": [{"name": "parent", "node": 1}, {"name": "other"}],
    "setup": [
        {
            "op": "mmap",
            "length": 8192,
            "prot": "rw",
            "flags": ["shared"],
            "file": "/data",
            "offset": 0,
            "as": "buf",
        },
        {"op": "mmap", "length": 4096, "addr": "0x10000", "as": "anon"},
        {"op": "write", "addr": "anon+0x10", "data": "hi"},
        {"op": "fork", "as": "kid"},
        {"op": "mprotect", "addr": "anon", "length": 4096, "prot": "r"},
        {"op": "madvise", "addr": "buf", "length": 4096, "advice": "willneed"},
        {"op": "mlock", "addr": "buf", "length": 4096},
        {"op": "munlock", "addr": "buf", "length": 4096},
    ],
    "thread": [
        {
            "name": "t1",
            "process": "kid",
            "repeat": 2,
            "ops": [
                {"op": "read", "addr": "anon+16", "length": 2, "expect": "hi"},
                {
                    "op": "gup",
                    "addr": "buf",
                    "pages": 1,
                    "write": True,
                    "force": False,
                    "as": "pin",
                },
                {"op": "put_pages", "pins": "pin"},
            ],
        },
        {
            "name": "t2",
            "ops": [
                {"op": "mem_read", "addr": "anon", "length": 2, "by": "other"},
                {"op": "mem_write", "addr": "anon", "data": "yo", "by": "kid", "process": "kid"},
                {"op": "futex_key", "addr": 65536},
            ],
        },
    ],
    "final": [
        {"op": "core_dump", "path": "core.out"},
        {"op": "numa_maps"},
        {"op": "munmap", "addr": "buf", "length": 8192},
        {"op": "exit", "process": "kid"},
    ],
    "check": [
        {"kind": "file_unchanged", "path": "/pat"},
        {"kind": "file_content", "path": "/data", "offset": 0, "data": "hello"},
        {"kind": "memory", "process": "parent", "addr": "anon+0x10", "data": "hi"},
        {"kind": "page", "addr": "buf", "present": True, "node": 1, "mapcount": 1, "count": 2},
        {
            "kind": "same_page",
            "a": {"addr": "buf"},
            "b": {"process": "kid", "addr": "buf"},
            "expect": True,
        },
        {"kind": "result", "step": "pin", "value": 1},
        {"kind": "result", "step": "t2[0]", "errno": "EFAULT"},
        {"kind": "result", "step": "setup[2]", "signal": "SIGSEGV"},
        {"kind": "page_tables", "max": 4},
        {"kind": "no_leaks"},
    ],
}

# The same kind of scenario as hand-written TOML, with the syntax variety
# (comments, [[thread.ops]], literal strings, multi-line arrays) a mutation can hit.
BASE_TEXT = """\
# A scenario for fuzzing
name = "fuzz-text"
nodes = 2
split_ptlock = true

[[file]]
path = '/data'
content = \"\"\"hello
world\"\"\"

[[process]]
name = "parent"
node = 1

[[setup]]
op = "mmap"
length = 0x2000
flags = [
  "private",
  "populate",
]
file = "/data"
as = "buf"

[[setup]]
op = "fork"
as = "kid"

[[thread]]
name = "t1"
process = "kid"
[[thread.ops]]
op = "write"
addr = "buf+0x10"
data = "x"
[[thread.ops]]
op = "gup"
addr = "buf"
pages = 2
as = "pin"

[[final]]
op = "put_pages"
pins = "pin"

[[check]]
kind = "same_page"
a = { addr = "buf" }
b = { process = "kid", addr = "buf+4096" }
expect = false

[[check]]
kind = "result"
step = "t1[0]"
value = 0
"""

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
# Helpers


def load_or_input_error(text: str) -> InputError | None:
    """Parse; the only acceptable failure is an InputError naming the file."""
    try:
        parse_scenario(text, FILE)
    except InputError as err:
        assert str(err).startswith(FILE), str(err)
        assert "\n" not in str(err)
        return err
    return None


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


# What the spec requires, written down independently of the loader.
REQUIRED_OP_ARGS = {
    "mmap": {"length"},
    "munmap": {"addr", "length"},
    "mlock": {"addr", "length"},
    "munlock": {"addr", "length"},
    "mprotect": {"addr", "length", "prot"},
    "madvise": {"addr", "length", "advice"},
    "fork": {"as"},
    "exit": set(),
    "read": {"addr", "length"},
    "write": {"addr", "data"},
    "mem_read": {"addr", "length"},
    "mem_write": {"addr", "data"},
    "gup": {"addr", "pages"},
    "put_pages": {"pins"},
    "futex_key": {"addr"},
    "core_dump": {"path"},
    "numa_maps": set(),
}
REQUIRED_CHECK_ARGS = {
    "file_unchanged": {"path"},
    "file_content": {"path", "offset", "data"},
    "memory": {"addr", "data"},
    "page": {"addr"},
    "same_page": {"a", "b"},
    "result": {"step"},
    "page_tables": {"max"},
    "no_leaks": set(),
}


def required_paths(doc: dict[str, Any]) -> list[Path_]:
    paths: list[Path_] = [("name",)]
    paths += [("file", i, "path") for i in range(len(doc["file"]))]
    paths += [("process", i, "name") for i in range(len(doc["process"]))]
    for path, value in walk(doc):
        if isinstance(value, dict) and "op" in value:
            paths += [(*path, key) for key in {"op"} | REQUIRED_OP_ARGS[value["op"]]]
        if isinstance(value, dict) and "kind" in value:
            paths += [(*path, key) for key in {"kind"} | REQUIRED_CHECK_ARGS[value["kind"]]]
    for i in range(len(doc["thread"])):
        paths += [("thread", i, "name"), ("thread", i, "ops")]
    for i, check in enumerate(doc["check"]):
        if check["kind"] == "same_page":
            paths += [("check", i, side, "addr") for side in "ab"]
    return paths


def reference_paths(doc: dict[str, Any]) -> list[Path_]:
    """Strings that name something declared elsewhere in the file."""
    refs = []
    for path, value in walk(doc):
        key = path[-1] if path else None
        if not isinstance(value, str):
            continue
        named_addr = key == "addr" and value[:1].isalpha()
        check_path = key == "path" and path[0] == "check"
        if key in ("process", "by", "file", "pins", "step") or named_addr or check_path:
            refs.append(path)
    return refs


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


# --------------------------------------------------------------------------
# Sanity: the bases are valid and the writer round-trips


def test_base_scenarios_load():
    assert parse_scenario(to_toml(BASE), FILE).name == "fuzz"
    assert parse_scenario(BASE_TEXT, FILE).name == "fuzz-text"


def test_toml_writer_round_trips_the_base_document():
    assert tomllib.loads(to_toml(BASE)) == BASE


# --------------------------------------------------------------------------
# (1) character and byte mutations

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


@FAST
@given(text_edits, st.booleans())
def test_text_mutations_load_or_raise_input_error(edits, hand_written):
    load_or_input_error(mutate_text(BASE_TEXT if hand_written else to_toml(BASE), edits))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz") / FILE


@settings(max_examples=150, deadline=None, database=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=10_000), st.binary(min_size=0, max_size=3)),
        min_size=1,
        max_size=4,
    )
)
def test_byte_mutations_of_a_file_load_or_raise_input_error(scratch, edits):
    data = BASE_TEXT.encode("utf-8")
    for pos, chunk in edits:
        at = pos % (len(data) + 1)
        data = data[:at] + chunk + data[at + 1 :]
    scratch.write_bytes(data)
    try:
        load_scenario(scratch)
    except InputError as err:
        assert str(err).startswith(str(scratch)), str(err)


# --------------------------------------------------------------------------
# (2) structural breakage of a valid document


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


@FAST
@given(st.data())
def test_structural_breakage_loads_or_raises_input_error(data):
    doc = copy.deepcopy(BASE)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        break_once(doc, data)
    load_or_input_error(to_toml(doc))


@FAST
@given(st.sampled_from([path for path, value in walk(BASE) if isinstance(value, dict)]))
def test_unknown_key_in_any_table_is_rejected_at_that_key(table_path):
    doc = copy.deepcopy(BASE)
    parent_of(doc, (*table_path, "_"))["bogus_key"] = 1
    err = load_or_input_error(to_toml(doc))
    assert err is not None
    assert err.where.endswith("bogus_key")
    assert "allowed:" in err.detail


@FAST
@given(st.sampled_from(required_paths(BASE)))
def test_dropping_a_required_key_is_rejected(path):
    doc = copy.deepcopy(BASE)
    del parent_of(doc, path)[path[-1]]
    assert load_or_input_error(to_toml(doc)) is not None


@FAST
@given(st.sampled_from(reference_paths(BASE)), st.sampled_from(["nosuch", "zz+0x8", "/nosuch"]))
def test_bad_reference_is_rejected(path, name):
    doc = copy.deepcopy(BASE)
    parent_of(doc, path)[path[-1]] = name
    assert load_or_input_error(to_toml(doc)) is not None


@FAST
@given(
    st.sampled_from([path for path, value in walk(BASE) if path and not isinstance(value, list)]),
    st.sampled_from(WRONG_VALUES),
)
def test_wrong_type_for_a_field_loads_or_raises_input_error(path, value):
    doc = copy.deepcopy(BASE)
    parent_of(doc, path)[path[-1]] = copy.deepcopy(value)
    load_or_input_error(to_toml(doc))
