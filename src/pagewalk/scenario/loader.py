"""Load scenario files (TOML) into :mod:`pagewalk.scenario.model` objects.

The contract is ``shared/spec/scenario.md``.  Every problem with the input is
reported as one :class:`~pagewalk.errors.InputError` whose ``where`` names the
file and the field (``"x.toml: setup[2].length"``) and whose message says what
was found and what would be accepted.  No other exception may escape, because
the CLI turns exactly that error into exit status 2.

Design: operations and checks are described by tables (:data:`_OPS`,
:data:`_CHECKS`) that list their required and optional arguments; the argument
*name* decides its type through :data:`_OP_ARGS` / :data:`_CHECK_ARGS`.
References between parts of the file (an address naming a later ``mmap``, a
``process`` naming a fork child) may point forward, so they are collected while
parsing and resolved once the whole file has been read.

Parsing order (and so which of several errors is reported): top-level
scalars, ``file``, ``process``, ``setup``, ``thread``, ``final``, ``check``,
then the collected references.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, NoReturn

from ..errors import InputError
from ..kernel.semantics import DEFAULT_PROFILE, get_semantics
from .model import (
    PAGE_PROPERTIES,
    AddrRef,
    CheckSpec,
    FileSpec,
    OpSpec,
    ProcessSpec,
    Scenario,
    ThreadSpec,
)

__all__ = ["load_scenario", "parse_scenario"]

PROTS = ("", "r", "rw", "rx", "rwx")
MMAP_FLAGS = ("private", "shared", "fixed", "growsdown", "locked", "populate")
ADVICE = ("dontneed", "willneed", "normal", "random", "sequential")
FILE_MODES = ("r", "rw")
ERRNOS = (
    "EPERM",
    "ENOENT",
    "EINTR",
    "EIO",
    "EBADF",
    "EAGAIN",
    "ENOMEM",
    "EACCES",
    "EFAULT",
    "EBUSY",
    "EEXIST",
    "EINVAL",
    "ENOSPC",
    "ERANGE",
    "ENOSYS",
    "EOVERFLOW",
)
SIGNALS = ("SIGSEGV", "SIGBUS")
MAX_NODES = 64
#: Every address, length and offset must fit in an unsigned long.
MAX_ULONG = (1 << 64) - 1
#: Files are built in memory; a bound keeps a typo (or a fuzzer) from asking
#: the loader for terabytes.
MAX_FILE_SIZE = 64 << 20
#: The most bytes one read, mem_read, write or mem_write moves, and so the
#: longest `expect` (docs/scenarios.md, "Limits"): the model copies page by
#: page and a result holds what was read, so a typo of 1 TiB would grow
#: memory until the machine gives out.
MAX_TRANSFER = 64 << 20
#: The most pages one gup pins (MAX_TRANSFER in pages).
MAX_GUP_PAGES = MAX_TRANSFER >> 12
DEFAULT_PROCESS = "p"

# Names (processes, threads, `as`) must be usable inside "NAME+OFFSET" and
# "THREAD[i]" without ambiguity, hence no '+', brackets or spaces.
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_LITERAL_ADDR_RE = re.compile(r"0[xX][0-9a-fA-F]+|[0-9]+")
_NAMED_ADDR_RE = re.compile(
    r"(?P<name>[A-Za-z_][A-Za-z0-9_-]*)(?:\s*\+\s*(?P<offset>0[xX][0-9a-fA-F]+|[0-9]+))?"
)
_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")
# Thread names that would make "THREAD[i]" step labels collide with setup/final.
_RESERVED_THREAD_NAMES = ("setup", "final")


# --------------------------------------------------------------------------
# Locations and error messages


@dataclass(frozen=True)
class _Loc:
    """Where a value sits: the file plus a dotted field path."""

    file: str
    path: str = ""

    @property
    def where(self) -> str:
        return f"{self.file}: {self.path}" if self.path else self.file

    def key(self, name: str) -> _Loc:
        # Quote odd keys so a key holding a newline cannot break the one-line rule.
        text = name if _BARE_KEY_RE.fullmatch(name) else json.dumps(name)
        return _Loc(self.file, f"{self.path}.{text}" if self.path else text)

    def item(self, index: int | str) -> _Loc:
        return _Loc(self.file, f"{self.path}[{index}]")

    def fail(self, message: str) -> NoReturn:
        raise InputError(message, self.where)


def _type_name(value: object) -> str:
    # Checked in this order because bool is a subclass of int and datetime of date.
    for kind, name in (
        (bool, "boolean"),
        (int, "integer"),
        (float, "float"),
        (str, "string"),
        (list, "array"),
        (dict, "table"),
        (datetime, "datetime"),
        (date, "date"),
        (time, "time"),
    ):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _show(value: object, limit: int = 40) -> str:
    """A short one-line rendering of a user value for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        # repr() of a huge int can itself raise ValueError (int-to-str digit limit).
        return str(value) if value.bit_length() <= 128 else f"<{value.bit_length()}-bit integer>"
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= limit else text[: limit - 4] + "...'"
    if isinstance(value, list | dict):
        return ""
    return str(value)


def _found(value: object) -> str:
    shown = _show(value)
    return f"{_type_name(value)} {shown}" if shown else _type_name(value)


def _listing(items: Iterable[str], limit: int = 20) -> str:
    names = list(items)
    if not names:
        return "none"
    text = ", ".join(names[:limit])
    return text if len(names) <= limit else f"{text}, ... ({len(names)} in all)"


def _check_keys(table: Mapping[str, Any], loc: _Loc, allowed: Iterable[str], what: str) -> None:
    allowed = sorted(set(allowed))
    for key in table:
        if key not in allowed:
            loc.key(key).fail(f"unknown key {_show(key)} in {what} (allowed: {', '.join(allowed)})")


# --------------------------------------------------------------------------
# Parse state


@dataclass
class _Ref:
    """A name used somewhere that must be declared somewhere (possibly later)."""

    kind: str  # a key of _REF_TARGETS
    name: str
    loc: _Loc


@dataclass
class _Context:
    file: str
    nodes: int = 1
    first_process: str = DEFAULT_PROCESS
    processes: dict[str, str] = field(default_factory=dict)  # declared name -> where
    children: dict[str, str] = field(default_factory=dict)  # fork child name -> where
    files: dict[str, str] = field(default_factory=dict)  # path -> where
    as_names: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (op, where)
    steps: dict[str, str] = field(default_factory=dict)  # label or `as` -> canonical step
    refs: list[_Ref] = field(default_factory=list)


def _as_names_of(op: str) -> Callable[[_Context], list[str]]:
    return lambda ctx: [name for name, (kind, _) in ctx.as_names.items() if kind == op]


# kind -> (noun for messages, what it must name, the names that exist)
_REF_TARGETS: dict[str, tuple[str, str, Callable[[_Context], list[str]]]] = {
    "process": (
        "process",
        "a declared process or a fork child",
        lambda ctx: [*ctx.processes, *ctx.children],
    ),
    "mapping": ("mapping name", "the `as` name of an mmap op", _as_names_of("mmap")),
    "pins": ("pins name", "the `as` name of a gup op", _as_names_of("gup")),
    "pin": ("pins name", "the `as` name of a pin op", _as_names_of("pin")),
    "held": (
        "pins name",
        "the `as` name of a pin or gup op",
        lambda ctx: [*_as_names_of("pin")(ctx), *_as_names_of("gup")(ctx)],
    ),
    "pipe": ("pipe name", "the `as` name of a vmsplice op", _as_names_of("vmsplice")),
    "file": ("file", "the path of a declared file", lambda ctx: list(ctx.files)),
}


def _resolve_refs(ctx: _Context) -> None:
    for ref in ctx.refs:
        noun, expected, names_of = _REF_TARGETS[ref.kind]
        names = names_of(ctx)
        if ref.name not in names:
            known = _listing(_show(name) for name in names)
            ref.loc.fail(f"unknown {noun} {_show(ref.name)} (expected {expected}; known: {known})")


# --------------------------------------------------------------------------
# Value converters: (value, loc, ctx) -> normalised value

Converter = Callable[[Any, _Loc, _Context], Any]


def _string(value: Any, loc: _Loc, ctx: _Context | None = None) -> str:
    if not isinstance(value, str):
        loc.fail(f"expected a string, found {_found(value)}")
    return value


def _nonempty_string(value: Any, loc: _Loc, ctx: _Context | None = None) -> str:
    if _string(value, loc) == "":
        loc.fail("expected a non-empty string, found ''")
    return value


def _boolean(value: Any, loc: _Loc, ctx: _Context | None = None) -> bool:
    if not isinstance(value, bool):
        loc.fail(f"expected a boolean (true or false), found {_found(value)}")
    return value


def _integer(value: Any, loc: _Loc, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        loc.fail(f"expected an integer, found {_found(value)}")
    if not low <= value <= high:
        if high != MAX_ULONG:
            accepted = f"from {low} to {high}"
        elif value < low:
            accepted = f">= {low}"
        else:
            accepted = "that fits in 64 bits"
        loc.fail(f"expected an integer {accepted}, found {_show(value)}")
    return value


def _uint(low: int = 0, high: int = MAX_ULONG) -> Converter:
    return lambda value, loc, ctx: _integer(value, loc, low, high)


def _node(value: Any, loc: _Loc, ctx: _Context) -> int:
    return _integer(value, loc, 0, ctx.nodes - 1)


def _choice(choices: Iterable[str], what: str) -> Converter:
    options = tuple(choices)

    def convert(value: Any, loc: _Loc, ctx: _Context | None = None) -> str:
        if _string(value, loc) not in options:
            accepted = ", ".join(repr(c) for c in options)
            loc.fail(f"unknown {what} {_show(value)} (accepted: {accepted})")
        return value

    return convert


def _text_bytes(value: Any, loc: _Loc, ctx: _Context) -> bytes:
    # parse_scenario has already rejected lone surrogates, so this cannot fail.
    return _string(value, loc).encode("utf-8")


def _flags(value: Any, loc: _Loc, ctx: _Context) -> frozenset[str]:
    if not isinstance(value, list):
        loc.fail(f"expected an array of mmap flags, found {_found(value)}")
    flag = _choice(MMAP_FLAGS, "mmap flag")
    return frozenset(flag(item, loc.item(i)) for i, item in enumerate(value))


def _name(value: Any, loc: _Loc, ctx: _Context | None = None) -> str:
    if not _NAME_RE.fullmatch(_string(value, loc)):
        loc.fail(
            f"invalid name {_show(value)} (a letter or '_' followed by letters, digits, '_' or '-')"
        )
    return value


#: Linux's NAME_MAX and PATH_MAX - 1 (bytes): longer names cannot be created.
NAME_MAX = 255
PATH_MAX = 4095
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _output_path(value: Any, loc: _Loc, ctx: _Context | None = None) -> str:
    """A file a scenario writes (core_dump's ``path``): relative to
    --output-dir and staying inside it -- not absolute, no ``..`` -- naming a
    file (not ending in ``/`` or ``.``), without control characters, within
    NAME_MAX per component and PATH_MAX in all."""
    path = _nonempty_string(value, loc)
    parts = path.split("/")
    if _CONTROL_RE.search(path):
        problem = "contains a control character (NUL, newline, ...)"
    elif path.startswith("/"):
        problem = "is absolute"
    elif ".." in parts:
        problem = "has a '..' component"
    elif "" in parts or parts[-1] == ".":
        problem = "has an empty component or names a directory"
    elif max(len(part.encode("utf-8")) for part in parts) > NAME_MAX:
        problem = f"has a component longer than {NAME_MAX} bytes"
    elif len(path.encode("utf-8")) > PATH_MAX:
        problem = f"is longer than {PATH_MAX} bytes"
    else:
        return path
    loc.fail(
        f"output path {_show(path)} {problem} (a file name relative to --output-dir, "
        "inside it: see docs/scenarios.md, Limits)"
    )


def _reference(kind: str) -> Converter:
    """A string naming something declared elsewhere; checked in _resolve_refs."""

    def convert(value: Any, loc: _Loc, ctx: _Context) -> str:
        ctx.refs.append(_Ref(kind, _string(value, loc), loc))
        return value

    return convert


def _address(value: Any, loc: _Loc, ctx: _Context) -> AddrRef:
    if isinstance(value, int) and not isinstance(value, bool):
        return AddrRef(None, _integer(value, loc, 0, MAX_ULONG), hex(value))
    if not isinstance(value, str):
        loc.fail(f'expected an address (integer or "NAME+OFFSET"), found {_found(value)}')
    text = value.strip()
    if _LITERAL_ADDR_RE.fullmatch(text):
        return AddrRef(None, _fits(_number(text), loc, "address"), value)
    match = _NAMED_ADDR_RE.fullmatch(text)
    if match is None:
        loc.fail(
            f'invalid address {_show(value)} (accepted: an integer, "0x...", '
            '"NAME" or "NAME+OFFSET" with a decimal or 0x-hex OFFSET)'
        )
    offset = match.group("offset")
    ctx.refs.append(_Ref("mapping", match.group("name"), loc))
    number = _fits(_number(offset) if offset else 0, loc, "address offset")
    return AddrRef(match.group("name"), number, value)


def _number(text: str) -> int:
    """Decimal (leading zeros allowed, as the spec says "decimal") or 0x-hex.
    Absurdly long digit strings count as too large (Python refuses to parse
    more than 4300 digits)."""
    if len(text) > 64:
        return MAX_ULONG + 1
    return int(text, 16) if text[:2].lower() == "0x" else int(text, 10)


def _fits(number: int, loc: _Loc, what: str) -> int:
    if number > MAX_ULONG:
        loc.fail(f"{what} {_show(number)} does not fit in 64 bits")
    return number


def _int_or_string(value: Any, loc: _Loc, ctx: _Context) -> int | str:
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    loc.fail(f"expected an integer or a string, found {_found(value)}")


def _step(value: Any, loc: _Loc, ctx: _Context) -> str:
    # Checks are parsed after every operation, so all steps are known here.
    label = _string(value, loc)
    if label not in ctx.steps:
        loc.fail(
            f"unknown step {_show(label)} (steps: {_listing(dict.fromkeys(ctx.steps.values()))})"
        )
    return ctx.steps[label]


# --------------------------------------------------------------------------
# Argument schemas

_FIRST_PROCESS = object()  # default placeholder: the scenario's first process


@dataclass(frozen=True)
class _Schema:
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    any_of: tuple[str, ...] = ()  # at least one of these must be given
    one_of: tuple[str, ...] = ()  # exactly one of these must be given
    as_required: bool = False  # ops only: `as` must be given (fork)


_ADDR_LEN = _Schema(required=("addr", "length"))

_OPS: dict[str, _Schema] = {
    "mmap": _Schema(
        required=("length",),
        optional=("prot", "flags", "file", "offset", "addr"),
        defaults={"prot": "rw", "flags": frozenset({"private"}), "offset": 0},
    ),
    "munmap": _ADDR_LEN,
    "mlock": _ADDR_LEN,
    "munlock": _ADDR_LEN,
    "mprotect": _Schema(required=("addr", "length", "prot")),
    "madvise": _Schema(required=("addr", "length", "advice")),
    "fork": _Schema(as_required=True),
    "exit": _Schema(),
    "read": _Schema(required=("addr", "length"), optional=("expect",)),
    "write": _Schema(required=("addr", "data")),
    "mem_read": _Schema(required=("addr", "length"), optional=("by", "expect")),
    "mem_write": _Schema(required=("addr", "data"), optional=("by",)),
    "gup": _Schema(
        required=("addr", "pages"),
        optional=("write", "force"),
        defaults={"write": False, "force": False},
    ),
    "put_pages": _Schema(required=("pins",)),
    "futex_key": _Schema(required=("addr",)),
    "core_dump": _Schema(required=("path",)),
    "numa_maps": _Schema(),
    "pin": _Schema(
        required=("addr", "pages"),
        optional=("write", "longterm"),
        defaults={"write": False, "longterm": False},
    ),
    "unpin": _Schema(required=("pins",)),
    "vmsplice": _Schema(required=("addr", "length"), as_required=True),
    "pipe_read": _Schema(required=("pipe", "length"), optional=("expect",)),
}

# op -> (argument, its limit, what is counted): the transfer limits.
_TRANSFER_LIMITS: dict[str, tuple[tuple[str, int, str], ...]] = {
    "read": (("length", MAX_TRANSFER, "bytes"), ("expect", MAX_TRANSFER, "bytes")),
    "mem_read": (("length", MAX_TRANSFER, "bytes"), ("expect", MAX_TRANSFER, "bytes")),
    "write": (("data", MAX_TRANSFER, "bytes"),),
    "mem_write": (("data", MAX_TRANSFER, "bytes"),),
    "gup": (("pages", MAX_GUP_PAGES, "pages"),),
    "pin": (("pages", MAX_GUP_PAGES, "pages"),),
    "vmsplice": (("length", MAX_TRANSFER, "bytes"),),
    "pipe_read": (("length", MAX_TRANSFER, "bytes"), ("expect", MAX_TRANSFER, "bytes")),
}


def _check_transfer(op: str, args: Mapping[str, Any], loc: _Loc) -> None:
    for key, limit, unit in _TRANSFER_LIMITS.get(op, ()):
        if key not in args:
            continue
        size = args[key] if isinstance(args[key], int) else len(args[key])
        if size > limit:
            loc.key(key).fail(
                f"{size} {unit} is past the limit of one {op}: at most {limit} {unit} "
                "(64 MiB); split it into several operations"
            )


_OP_ARGS: dict[str, Converter] = {
    "addr": _address,
    "length": _uint(),
    "offset": _uint(),
    "pages": _uint(low=1),
    "prot": _choice(PROTS, "prot"),
    "flags": _flags,
    "file": _reference("file"),
    "advice": _choice(ADVICE, "advice"),
    "data": _text_bytes,
    "expect": _text_bytes,
    "by": _reference("process"),
    "write": _boolean,
    "force": _boolean,
    "pins": _reference("pins"),
    "path": _output_path,
    "longterm": _boolean,
    "pipe": _reference("pipe"),
}
#: Ops whose argument of a shared name means something else.
_OP_ARGS_OF: dict[str, dict[str, Converter]] = {"unpin": {**_OP_ARGS, "pins": _reference("pin")}}

_PROCESS_DEFAULT = {"process": _FIRST_PROCESS}
_PAGE_REF = _Schema(required=("addr",), optional=("process",), defaults=_PROCESS_DEFAULT)

_CHECKS: dict[str, _Schema] = {
    "file_unchanged": _Schema(required=("path",)),
    "file_content": _Schema(required=("path", "offset", "data")),
    "memory": _Schema(required=("addr", "data"), optional=("process",), defaults=_PROCESS_DEFAULT),
    "page": _Schema(
        required=("addr",),
        optional=("process", *PAGE_PROPERTIES),
        defaults=_PROCESS_DEFAULT,
        any_of=PAGE_PROPERTIES,
    ),
    "same_page": _Schema(required=("a", "b"), optional=("expect",), defaults={"expect": True}),
    "result": _Schema(
        required=("step",),
        optional=("errno", "value", "signal"),
        one_of=("errno", "value", "signal"),
    ),
    "page_tables": _Schema(required=("max",), optional=("process",), defaults=_PROCESS_DEFAULT),
    "no_leaks": _Schema(),
    "pinned": _Schema(
        required=("pins", "addr"),
        optional=("process", "expect"),
        defaults={**_PROCESS_DEFAULT, "expect": True},
    ),
}


def _page_ref(value: Any, loc: _Loc, ctx: _Context) -> dict[str, Any]:
    table = _table(value, loc)
    return _parse_args(table, loc, _PAGE_REF, _CHECK_ARGS, ctx, (), "a same_page operand")


_CHECK_ARGS: dict[str, Converter] = {
    "path": _reference("file"),
    "offset": _uint(),
    "data": _text_bytes,
    "process": _reference("process"),
    "addr": _address,
    "present": _boolean,
    "writable": _boolean,
    "dirty": _boolean,
    "zero_page": _boolean,
    "anon": _boolean,
    "node": _node,
    "mapcount": _uint(),
    "count": _uint(),
    "a": _page_ref,
    "b": _page_ref,
    "expect": _boolean,
    "step": _step,
    "errno": _choice(ERRNOS, "errno"),
    "value": _int_or_string,
    "signal": _choice(SIGNALS, "signal"),
    "max": _uint(),
    "pins": _reference("held"),
}


def _parse_args(
    table: Mapping[str, Any],
    loc: _Loc,
    schema: _Schema,
    converters: Mapping[str, Converter],
    ctx: _Context,
    fixed: tuple[str, ...],
    what: str,
) -> dict[str, Any]:
    """Validate ``table`` against ``schema``; ``fixed`` keys are the caller's to handle."""
    _check_keys(table, loc, (*fixed, *schema.required, *schema.optional), what)
    for key in schema.required:
        if key not in table:
            loc.key(key).fail(f"missing required key {key!r} for {what}")
    if schema.one_of and sum(key in table for key in schema.one_of) != 1:
        given = [key for key in schema.one_of if key in table]
        loc.fail(
            f"{what} needs exactly one of {', '.join(schema.one_of)} (found: {_listing(given)})"
        )
    if schema.any_of and not any(key in table for key in schema.any_of):
        loc.fail(f"{what} needs at least one of {', '.join(schema.any_of)}")
    args = {
        key: converters[key](value, loc.key(key), ctx)
        for key, value in table.items()
        if key not in fixed
    }
    for key, default in schema.defaults.items():
        if key not in args:
            args[key] = ctx.first_process if default is _FIRST_PROCESS else default
    return args


# --------------------------------------------------------------------------
# Structure helpers


def _table(value: Any, loc: _Loc) -> dict[str, Any]:
    if not isinstance(value, dict):
        loc.fail(f"expected a table, found {_found(value)}")
    return value


def _tables(value: Any, loc: _Loc) -> list[dict[str, Any]]:
    """An array of tables (``[[x]]`` or an array of inline tables)."""
    if not isinstance(value, list):
        loc.fail(f"expected an array of tables, found {_found(value)}")
    return [_table(item, loc.item(i)) for i, item in enumerate(value)]


def _required(table: Mapping[str, Any], key: str, loc: _Loc, what: str) -> Any:
    if key not in table:
        loc.key(key).fail(f"missing required key {key!r} for {what}")
    return table[key]


def _optional(
    table: Mapping[str, Any], key: str, loc: _Loc, convert: Converter, ctx: _Context, default: Any
) -> Any:
    return convert(table[key], loc.key(key), ctx) if key in table else default


# --------------------------------------------------------------------------
# Sections

_TOP_KEYS = (
    "name",
    "description",
    "semantics",
    "nodes",
    "split_ptlock",
    "file",
    "process",
    "setup",
    "thread",
    "final",
    "check",
    "expect",
)
_FILE_KEYS = ("path", "content", "size", "fill", "mode", "hugetlb")
_PROCESS_KEYS = ("name", "node")
_THREAD_KEYS = ("name", "process", "ops", "repeat")
_OP_FIXED = ("op", "process", "as")


def _parse_semantics(doc: Mapping[str, Any], loc: _Loc) -> str:
    name = (
        _string(doc["semantics"], loc.key("semantics")) if "semantics" in doc else DEFAULT_PROFILE
    )
    try:
        get_semantics(name)
    except InputError as err:
        raise InputError(err.detail, loc.key("semantics").where) from None
    return name


def _parse_expect(doc: Mapping[str, Any], loc: _Loc) -> tuple[str, ...] | None:
    """``[expect] violation = [PROFILE, ...]``: known profiles, each once."""
    if "expect" not in doc:
        return None
    loc = loc.key("expect")
    table = _table(doc["expect"], loc)
    _check_keys(table, loc, ("violation",), "[expect]")
    names = table.get("violation", [])
    if not isinstance(names, list):
        loc.key("violation").fail(f"expected an array of profile names, found {_found(names)}")
    seen: list[str] = []
    for i, value in enumerate(names):
        item = loc.key("violation").item(i)
        name = _string(value, item)
        try:
            get_semantics(name)
        except InputError as err:
            raise InputError(err.detail, item.where) from None
        if name in seen:
            item.fail(f"profile {_show(name)} is listed twice")
        seen.append(name)
    return tuple(seen)


def _parse_file(table: dict[str, Any], loc: _Loc, ctx: _Context) -> FileSpec:
    _check_keys(table, loc, _FILE_KEYS, "a file")
    path = _string(_required(table, "path", loc, "a file"), loc.key("path"))
    if not path.startswith("/"):
        loc.key("path").fail(f"file path must be absolute, found {_show(path)}")
    if path in ctx.files:
        loc.key("path").fail(f"duplicate file path {_show(path)} (already at {ctx.files[path]})")
    ctx.files[path] = loc.where
    return FileSpec(
        path=path,
        content=_file_content(table, loc, ctx),
        mode=_optional(table, "mode", loc, _choice(FILE_MODES, "file mode"), ctx, "rw"),
        hugetlb=_optional(table, "hugetlb", loc, _boolean, ctx, False),
        where=loc.where,
    )


def _file_content(table: Mapping[str, Any], loc: _Loc, ctx: _Context) -> bytes:
    given = {key for key in ("content", "size", "fill") if key in table}
    if given not in ({"content"}, {"size"}, {"fill", "size"}):
        loc.fail(
            "a file needs exactly one of content, size, or fill + size "
            f"(found: {_listing(sorted(given))})"
        )
    if "content" in table:
        return _text_bytes(table["content"], loc.key("content"), ctx)
    size = _integer(table["size"], loc.key("size"), 0, MAX_FILE_SIZE)
    if "fill" not in table:
        return bytes(size)
    fill = _nonempty_string(table["fill"], loc.key("fill")).encode("utf-8")
    return (fill * (size // len(fill) + 1))[:size]


def _parse_process(table: dict[str, Any], loc: _Loc, ctx: _Context) -> ProcessSpec:
    _check_keys(table, loc, _PROCESS_KEYS, "a process")
    name = _name(_required(table, "name", loc, "a process"), loc.key("name"))
    if name in ctx.processes:
        loc.key("name").fail(f"duplicate process name {name!r} (already at {ctx.processes[name]})")
    ctx.processes[name] = loc.where
    node = _optional(table, "node", loc, _node, ctx, 0)
    return ProcessSpec(name=name, node=node, where=loc.where)


def _parse_as(table: Mapping[str, Any], loc: _Loc, ctx: _Context, op: str) -> str | None:
    if "as" not in table:
        if _OPS[op].as_required:
            what = "the child's name" if op == "fork" else "the name later ops use"
            loc.key("as").fail(f"missing required key 'as' for op {op!r} ({what})")
        return None
    name = _name(table["as"], loc.key("as"))
    if name in ctx.as_names:
        loc.key("as").fail(f"duplicate name {name!r} (already used at {ctx.as_names[name][1]})")
    if op == "fork":
        if name in ctx.processes:
            loc.key("as").fail(f"fork child name {name!r} clashes with a declared process")
        ctx.children[name] = loc.where
    ctx.as_names[name] = (op, loc.where)
    return name


def _parse_op(value: Any, loc: _Loc, ctx: _Context, label: str, process: str) -> OpSpec:
    table = _table(value, loc)
    accepted = ", ".join(sorted(_OPS))
    if "op" not in table:
        loc.key("op").fail(f"missing required key 'op' (accepted ops: {accepted})")
    op = _choice(sorted(_OPS), "op")(table["op"], loc.key("op"))
    converters = _OP_ARGS_OF.get(op, _OP_ARGS)
    args = _parse_args(table, loc, _OPS[op], converters, ctx, _OP_FIXED, f"op {op!r}")
    _check_transfer(op, args, loc)
    process = _optional(table, "process", loc, _reference("process"), ctx, process)
    as_name = _parse_as(table, loc, ctx, op)
    step = as_name or label
    # A result check may name an op by its `as` or by its position; both mean one step.
    ctx.steps[label] = ctx.steps[step] = step
    return OpSpec(op=op, process=process, args=args, as_name=as_name, step=step, where=loc.where)


def _parse_op_list(section: str, doc: Mapping[str, Any], ctx: _Context) -> list[OpSpec]:
    loc = _Loc(ctx.file, section)
    ops = _tables(doc.get(section, []), loc)
    return [
        _parse_op(op, loc.item(i), ctx, f"{section}[{i}]", ctx.first_process)
        for i, op in enumerate(ops)
    ]


def _parse_thread(
    table: dict[str, Any], loc: _Loc, ctx: _Context, seen: dict[str, str]
) -> ThreadSpec:
    name = _name(_required(table, "name", loc, "a thread"), loc.key("name"))
    if name in _RESERVED_THREAD_NAMES:
        loc.key("name").fail(
            f"thread name {name!r} is reserved (it would clash with {name}[i] steps)"
        )
    if name in seen:
        loc.key("name").fail(f"duplicate thread name {name!r} (already at {seen[name]})")
    loc = _Loc(ctx.file, f"thread[{name}]")
    seen[name] = loc.where
    _check_keys(table, loc, _THREAD_KEYS, "a thread")
    process = _optional(table, "process", loc, _reference("process"), ctx, ctx.first_process)
    ops_loc = loc.key("ops")
    ops = _tables(_required(table, "ops", loc, "a thread"), ops_loc)
    if not ops:
        ops_loc.fail("a thread needs at least one operation, found an empty array")
    repeat = _optional(table, "repeat", loc, _uint(low=1), ctx, 1)
    return ThreadSpec(
        name=name,
        process=process,
        # Ops of a thread run in the thread's process unless they say otherwise.
        ops=[
            _parse_op(op, ops_loc.item(i), ctx, f"{name}[{i}]", process) for i, op in enumerate(ops)
        ],
        repeat=repeat,
        where=loc.where,
    )


def _parse_check(table: dict[str, Any], loc: _Loc, ctx: _Context) -> CheckSpec:
    if "kind" not in table:
        loc.key("kind").fail(
            f"missing required key 'kind' (accepted: {', '.join(sorted(_CHECKS))})"
        )
    kind = _choice(sorted(_CHECKS), "check kind")(table["kind"], loc.key("kind"))
    args = _parse_args(table, loc, _CHECKS[kind], _CHECK_ARGS, ctx, ("kind",), f"check {kind!r}")
    return CheckSpec(kind=kind, args=args, where=loc.where)


def _section(doc: Mapping[str, Any], key: str, ctx: _Context) -> list[tuple[dict[str, Any], _Loc]]:
    loc = _Loc(ctx.file, key)
    return [(table, loc.item(i)) for i, table in enumerate(_tables(doc.get(key, []), loc))]


def _build(doc: dict[str, Any], path: str) -> Scenario:
    top = _Loc(path)
    _check_keys(doc, top, _TOP_KEYS, "a scenario")
    name = _string(_required(doc, "name", top, "a scenario"), top.key("name"))
    ctx = _Context(file=path)
    scenario = Scenario(
        path=path,
        name=name,
        description=_optional(doc, "description", top, _string, ctx, ""),
        semantics=_parse_semantics(doc, top),
        nodes=_optional(doc, "nodes", top, _uint(1, MAX_NODES), ctx, 1),
        split_ptlock=_optional(doc, "split_ptlock", top, _boolean, ctx, True),
        expect_violation=_parse_expect(doc, top),
    )
    ctx.nodes = scenario.nodes
    scenario.files = [_parse_file(t, loc, ctx) for t, loc in _section(doc, "file", ctx)]
    scenario.processes = [_parse_process(t, loc, ctx) for t, loc in _section(doc, "process", ctx)]
    if not scenario.processes:
        scenario.processes = [ProcessSpec(name=DEFAULT_PROCESS, node=0, where=path)]
        ctx.processes[DEFAULT_PROCESS] = path
    ctx.first_process = scenario.processes[0].name
    scenario.setup = _parse_op_list("setup", doc, ctx)
    seen_threads: dict[str, str] = {}
    scenario.threads = [
        _parse_thread(t, loc, ctx, seen_threads) for t, loc in _section(doc, "thread", ctx)
    ]
    scenario.final = _parse_op_list("final", doc, ctx)
    scenario.checks = [_parse_check(t, loc, ctx) for t, loc in _section(doc, "check", ctx)]
    _resolve_refs(ctx)
    return scenario


# --------------------------------------------------------------------------
# Public API


def parse_scenario(text: str, path: str = "<string>") -> Scenario:
    """Parse scenario TOML ``text``; ``path`` is the file name used in messages.

    Raises :class:`InputError` for any problem with the input.
    """
    if not isinstance(text, str):
        raise InputError(f"expected scenario text (str), found {type(text).__name__}", path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise InputError(f"text is not valid Unicode (character {err.start})", path) from None
    try:
        doc = tomllib.loads(text)
    except ValueError as err:
        # TOMLDecodeError is a ValueError; so is the int-to-str digit limit that
        # tomllib hits on an integer of thousands of digits.
        message = " ".join(str(err).split())
        raise InputError(f"TOML syntax error: {message}", path) from None
    except RecursionError:
        raise InputError("TOML syntax error: arrays or tables nested too deeply", path) from None
    return _build(doc, path)


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and parse the scenario file at ``path``.

    Raises :class:`InputError` for a missing or unreadable file, bytes that are
    not UTF-8, and everything :func:`parse_scenario` rejects.
    """
    shown = os.fsdecode(path)
    try:
        data = Path(path).read_bytes()
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the path
        reason = getattr(err, "strerror", None) or str(err)
        raise InputError(f"cannot read scenario file: {reason}", shown) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise InputError(
            f"not valid UTF-8: byte 0x{data[err.start]:02x} at line {line} ({err.reason})", shown
        ) from None
    # Editors on some systems write a byte-order mark; TOML does not allow one.
    return parse_scenario(text.removeprefix("\ufeff"), shown)
