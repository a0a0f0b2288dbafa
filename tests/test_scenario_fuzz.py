"""Fuzzing the scenario loader: whatever the input, it loads or raises InputError.

Two sources of bad input: (1) random character/byte mutations of a valid
scenario text, (2) structurally broken documents built from a valid dict and
written out with the tiny TOML writer below.  Any exception other than
InputError, or an InputError that does not start with the file name, fails.
"""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pagewalk.errors import InputError
from pagewalk.scenario.loader import load_scenario, parse_scenario
from scenario_mutations import (
    WRONG_VALUES,
    Path_,
    break_once,
    mutate_text,
    parent_of,
    text_edits,
    to_toml,
    walk,
)

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


# --------------------------------------------------------------------------
# Sanity: the bases are valid and the writer round-trips


def test_base_scenarios_load():
    assert parse_scenario(to_toml(BASE), FILE).name == "fuzz"
    assert parse_scenario(BASE_TEXT, FILE).name == "fuzz-text"


def test_toml_writer_round_trips_the_base_document():
    assert tomllib.loads(to_toml(BASE)) == BASE


# --------------------------------------------------------------------------
# (1) character and byte mutations


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
