"""The parsed form of a scenario file (see ``shared/spec/scenario.md``).

The loader turns TOML into these plain objects after validating every field;
the runner executes them.  Nothing here knows about the kernel model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: what a ``page`` check can ask about the pte and page at an address
PAGE_PROPERTIES = ("present", "writable", "dirty", "zero_page", "anon", "node", "mapcount", "count")


@dataclass(frozen=True)
class AddrRef:
    """An address operand: a literal int (``name`` is None) or ``NAME+OFFSET``."""

    name: str | None
    offset: int
    text: str


@dataclass
class FileSpec:
    path: str
    content: bytes
    mode: str  # "r" or "rw"
    hugetlb: bool
    where: str


@dataclass
class ProcessSpec:
    name: str
    node: int
    where: str


@dataclass
class OpSpec:
    """One operation.  ``args`` holds the validated, normalised arguments.

    Normalised argument types: addresses are :class:`AddrRef`; ``length``,
    ``offset``, ``pages`` ints; ``prot`` one of "", "r", "rw", "rx", "rwx";
    ``flags`` a frozenset of flag names; ``data``/``expect`` bytes (UTF-8);
    ``write``/``force`` bools; ``file``/``by``/``pins``/``path``/``advice``
    str.  Optional arguments that were not given are absent from ``args``.
    """

    op: str
    process: str
    args: dict[str, Any]
    as_name: str | None
    step: str  # label in results: the `as` name, else setup[i], THREAD[i], final[i]
    where: str  # "file.toml: setup[2]" for messages


@dataclass
class ThreadSpec:
    name: str
    process: str
    ops: list[OpSpec]
    repeat: int
    where: str


@dataclass
class CheckSpec:
    kind: str
    args: dict[str, Any]
    where: str


@dataclass
class Scenario:
    path: str
    name: str
    description: str = ""
    semantics: str = "2.6.15"
    nodes: int = 1
    split_ptlock: bool = True
    files: list[FileSpec] = field(default_factory=list)
    processes: list[ProcessSpec] = field(default_factory=list)
    setup: list[OpSpec] = field(default_factory=list)
    threads: list[ThreadSpec] = field(default_factory=list)
    final: list[OpSpec] = field(default_factory=list)
    checks: list[CheckSpec] = field(default_factory=list)
    #: ``[expect] violation``: the profiles under which exploring must find a
    #: violation (under the others, none); None: the file declares no [expect]
    expect_violation: tuple[str, ...] | None = None
