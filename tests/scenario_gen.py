"""Random small scenarios and a TOML writer, shared by the tests and the
fuzz benchmark (``benchmarks/fuzz_scenarios.py`` puts ``tests/`` on its path).

:func:`small_scenario` builds a valid scenario document (a dict, as tomllib
would return it) from a seeded ``random.Random``: one file, one or two
mappings made in ``setup`` (so that operations hit something), sometimes a
fork child and a second process, then 2-3 threads of 1-3 operations each,
drawn from every operation kind of the spec, under any profile.  A
reference an operation takes (``gup``, ``pin``, ``vmsplice``) is given back
by the same thread (``put_pages``, ``unpin``, ``pipe_read``) or in
``final``.  The scenarios are small so that an exhaustive ``dfs`` of their
interleavings ends quickly; the differential DPOR test runs both strategies
on thousands of them.

Two rules keep a scenario valid under *every* interleaving, so that a
strategy's answer is a kernel outcome and not a schedule-dependent input
error:

* a thread names only the setup's mappings, or a mapping its own earlier
  ``mmap`` made (never another thread's: that one may not exist yet);
* a process that ``exit``\\s is one the thread forked itself, or the
  thread's own process when no other thread uses it; its ``exit`` is that
  thread's last operation on it.  ``allow_shared_exit=True`` lifts the second
  half and lets a thread exit a process other threads still run in (the
  issue-10 ``mmap`` vs ``exit`` shape).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import tempfile
from collections.abc import Iterator
from typing import Any

from pagewalk.errors import InputError
from scenario_mutations import to_toml

PAGE = 4096
#: profiles of kernel/semantics.py PROFILES (kept literal: the generator must
#: not change when a profile is added; the test checks they are all known)
PROFILES = (
    "seed^",
    "seed",
    "seed+madvise-read",
    "seed+foll-cow",
    "seed+gup-cow-break",
    "seed+wp-page-count",
    "seed+fork-copy-pinned",
    "seed+anon-exclusive",
    "seed+no-foll-cow",
    "6.18",
    "seed^-ptl-pushdown",
)
OP_KINDS = (
    "mmap",
    "munmap",
    "mprotect",
    "madvise",
    "mlock",
    "munlock",
    "fork",
    "exit",
    "read",
    "write",
    "mem_read",
    "mem_write",
    "gup",
    "pin",
    "vmsplice",
    "futex_key",
    "numa_maps",
    "core_dump",
)
PROTS = ("", "r", "rw", "rx", "rwx")
#: an operation that takes references -> the one that gives them back, and
#: the argument naming them
RELEASES = {
    "gup": ("put_pages", "pins"),
    "pin": ("unpin", "pins"),
    "vmsplice": ("pipe_read", "pipe"),
}
ADVICE = ("dontneed", "willneed", "normal", "random", "sequential")
#: scenarios drawn in the shape of a COW break racing with a reference to
#: the page (section judgment, c85d731): rare by chance otherwise
RACE_SHARE = 0.05
#: their description, and the interleavings and dfs executions they may
#: take: a COW fault alone takes a dozen steps, so the shape never fits the
#: usual bounds
RACE = "a COW break racing with a reference to the page"
RACE_MAX_INTERLEAVINGS = 10_000
RACE_MAX_DFS = 2500
FILE_PATH = "/f"
FILE_SIZE = 2 * PAGE


class _Thread:
    """What the generator knows while it fills one thread."""

    def __init__(self, name: str, process: str) -> None:
        self.name = name
        self.process = process
        self.ops: list[dict[str, Any]] = []
        self.mappings: list[str] = []  # its own successful-by-construction mmaps
        self.children: list[str] = []  # processes it forked and has not exited
        #: references taken and not given back: the operation that gives
        #: each back (put_pages, unpin, pipe_read)
        self.pins: list[dict[str, Any]] = []
        self.exited: set[str] = set()


def small_scenario(
    rng: random.Random,
    name: str = "gen",
    allow_shared_exit: bool = False,
    max_interleavings: int | None = 300,
) -> dict[str, Any]:
    """A random small scenario document (see the module docstring).  With
    ``max_interleavings``, drafts are drawn until one whose threads, counted
    in the steps of one run, have at most that many interleavings (locks
    ignored): an exhaustive search of it stays short."""
    while True:
        doc = _draft(rng, name, allow_shared_exit)
        if max_interleavings is None:
            return doc
        try:
            steps = thread_steps(doc)
        except InputError:  # a shared exit that this order already trips over
            continue
        bound = RACE_MAX_INTERLEAVINGS if doc.get("description") == RACE else max_interleavings
        if interleavings(steps) <= bound:
            return doc


def thread_steps(doc: dict[str, Any]) -> list[int]:
    """Schedule steps each thread takes in one run without preemption."""
    from pagewalk.explore.engine import run_execution
    from pagewalk.scenario.loader import parse_scenario
    from pagewalk.sched.scheduler import NonPreemptive

    scenario = parse_scenario(to_toml(doc), f"{doc['name']}.toml")
    with tempfile.TemporaryDirectory() as out, _cwd(out):  # core files land here
        steps = run_execution(scenario, None, NonPreemptive()).steps
    counts = [0] * len(scenario.threads)
    for task, _event in steps:
        counts[task] += 1
    return counts


@contextlib.contextmanager
def _cwd(path: str) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def interleavings(steps: list[int]) -> int:
    """Interleavings of threads of these step counts, ignoring locks:
    the multinomial coefficient."""
    total = 0
    count = 1
    for n in steps:
        total += n
        count *= math.comb(total, n)
    return count


def _draft(rng: random.Random, name: str, allow_shared_exit: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": name,
        "semantics": rng.choice(PROFILES),
        "nodes": rng.choice((1, 1, 2)),
        "split_ptlock": rng.random() < 0.7,
    }
    doc["file"] = [
        {
            "path": FILE_PATH,
            "fill": "file-",
            "size": FILE_SIZE,
            "mode": "rw" if rng.random() < 0.8 else "r",
        }
    ]
    processes = ["p"]
    if rng.random() < 0.2:
        processes.append("q")
        doc["process"] = [{"name": "p"}, {"name": "q", "node": doc["nodes"] - 1}]
    race = rng.random() < RACE_SHARE
    if race:  # a forked page, written by one thread and referenced by another
        doc["description"] = RACE
        if doc["semantics"] == "seed+gup-cow-break":  # a read gup breaks COW: 65,000 runs
            doc["semantics"] = "seed+foll-cow"
        setup, mappings = _race_setup()
    else:
        setup, mappings = _setup(rng, doc["file"][0]["mode"])
    if race or rng.random() < 0.35:
        setup.append({"op": "fork", "as": "c"})
        processes.append("c")
    doc["setup"] = setup
    if race:
        threads = _race_threads(rng)
    else:
        threads = _threads(rng, processes, mappings, allow_shared_exit)
    _drop_exited_tracers(threads)
    doc["thread"] = [{"name": t.name, "process": t.process, "ops": t.ops} for t in threads]
    final = [release for t in threads for release in t.pins]
    if final:
        doc["final"] = final
    doc["check"] = _checks(rng, setup)
    if not doc["check"]:
        del doc["check"]
    return doc


def _setup(rng: random.Random, file_mode: str) -> tuple[list[dict[str, Any]], list[str]]:
    """One or two mappings of two pages: anonymous ``a`` and/or ``f`` of the file."""
    setup: list[dict[str, Any]] = []
    kinds = rng.choice((("a",), ("f",), ("a", "f"), ("a", "f")))
    for kind in kinds:
        op: dict[str, Any] = {"op": "mmap", "length": 2 * PAGE, "as": kind}
        if kind == "f":
            op["file"] = FILE_PATH
            shared = rng.random() < 0.5
            op["flags"] = ["shared" if shared else "private"]
            op["prot"] = "r" if shared and file_mode == "r" else rng.choice(("r", "rw", "rw"))
        else:
            op["prot"] = rng.choice(("r", "rw", "rw", "rw"))
            op["flags"] = [rng.choice(("private", "private", "shared"))]
        setup.append(op)
        if op["prot"] == "rw" and rng.random() < 0.6:
            setup.append({"op": "write", "addr": f"{kind}+{rng.choice((0, PAGE))}", "data": "s"})
    return setup, list(kinds)


def _race_setup() -> tuple[list[dict[str, Any]], list[str]]:
    """An anonymous private page written before the fork: COW-shared."""
    mmap = {"op": "mmap", "length": 2 * PAGE, "prot": "rw", "flags": ["private"], "as": "a"}
    return [mmap, {"op": "write", "addr": "a", "data": "s"}], ["a"]


def _race_threads(rng: random.Random) -> list[_Thread]:
    """The race's two threads, both in the parent: one writes the page, the
    other takes a reference to it or reads it; nothing else, so that an
    exhaustive dfs of it stays near a thousand executions."""
    writer, other = _Thread("t0", "p"), _Thread("t1", "p")
    _commit(writer, {"op": "write", "addr": "a", "data": "w"})
    kind = rng.choice(("gup", "pin", "vmsplice", "mem_read", "read"))
    op: dict[str, Any] = {"op": kind, "addr": "a"}
    if kind == "gup":
        op.update(pages=1, write=False, force=False)
    elif kind == "pin":
        op.update(pages=1, write=False, longterm=rng.random() < 0.5)
    else:
        op["length"] = 8
    if kind in RELEASES:
        op["as"] = "t1_0"
    _commit(other, op)
    _give_back(rng, other)
    return [writer, other]


def _threads(
    rng: random.Random, processes: list[str], mappings: list[str], allow_shared_exit: bool
) -> list[_Thread]:
    """2-3 threads, 1-3 operations each (1-2 with three threads)."""
    n = 2 if rng.random() < 0.75 else 3
    threads = [_Thread(f"t{i}", rng.choice(processes)) for i in range(n)]
    used: dict[str, int] = {}
    for t in threads:
        used[t.process] = used.get(t.process, 0) + 1
    for t in threads:
        own_exit_ok = allow_shared_exit or used[t.process] == 1
        for i in range(rng.randint(1, 3 if n == 2 else 2)):
            if t.process in t.exited and not t.children:
                break
            _commit(t, _op(rng, t, i, mappings, processes, own_exit_ok))
        _give_back(rng, t)
    return threads


def _give_back(rng: random.Random, t: _Thread) -> None:
    """Half the time, the thread gives back the references it took (else
    ``final`` does)."""
    if t.pins and rng.random() < 0.5:
        t.ops += t.pins
        t.pins = []


def _addr(rng: random.Random, t: _Thread, mappings: list[str]) -> str:
    base = rng.choice(mappings + t.mappings)
    return f"{base}+{rng.choice((0, 0, PAGE, 16))}"


def _length(rng: random.Random) -> int:
    return rng.choice((PAGE, PAGE, 2 * PAGE))


def _op(
    rng: random.Random,
    t: _Thread,
    i: int,
    mappings: list[str],
    processes: list[str],
    own_exit_ok: bool,
    kind: str | None = None,
) -> dict[str, Any]:
    """One operation for thread ``t`` (nothing recorded yet: see _commit),
    of a random kind unless ``kind`` says which."""
    kind = kind or rng.choice(OP_KINDS)
    live = [p for p in [t.process, *t.children] if p not in t.exited]
    process = rng.choice(live) if rng.random() < 0.3 else live[0]
    if kind == "exit" and process == t.process and not own_exit_ok:
        process = t.children[0] if t.children else process
        if process == t.process:
            kind = "numa_maps"
    op: dict[str, Any] = {"op": kind}
    if process != t.process:
        op["process"] = process
    tag = f"{t.name}_{i}"
    if kind == "mmap":
        _mmap_args(rng, op, tag, mappings)
    elif kind in ("munmap", "mprotect", "madvise", "mlock", "munlock"):
        op["addr"] = _addr(rng, t, mappings)
        op["length"] = _length(rng)
        if kind == "mprotect":
            op["prot"] = rng.choice(PROTS)
        elif kind == "madvise":
            op["advice"] = rng.choice(("dontneed", "dontneed", *ADVICE))
    elif kind in ("read", "mem_read"):
        op["addr"] = _addr(rng, t, mappings)
        op["length"] = rng.choice((1, 8, PAGE))
        if kind == "mem_read":
            _by(rng, op, processes, t)
    elif kind in ("write", "mem_write"):
        op["addr"] = _addr(rng, t, mappings)
        op["data"] = rng.choice(("w", tag))
        if kind == "mem_write":
            _by(rng, op, processes, t)
    elif kind in ("gup", "pin"):
        op["addr"] = _addr(rng, t, mappings)
        op["pages"] = rng.choice((1, 1, 2))
        op["write"] = rng.random() < 0.5
        op["force" if kind == "gup" else "longterm"] = rng.random() < 0.5
        op["as"] = tag
    elif kind == "vmsplice":
        op["addr"] = _addr(rng, t, mappings)
        op["length"] = rng.choice((8, PAGE))
        op["as"] = tag
    elif kind == "fork":
        op["as"] = tag
    elif kind == "futex_key":
        op["addr"] = _addr(rng, t, mappings)
    elif kind == "core_dump":
        op["path"] = f"core-{tag}"
    return op


def _commit(t: _Thread, op: dict[str, Any]) -> dict[str, Any]:
    """Add ``op`` to ``t`` and record what later operations may use."""
    t.ops.append(op)
    kind = op["op"]
    if kind == "mmap" and "fixed" not in op["flags"]:
        t.mappings.append(op["as"])  # a hint: the mmap cannot fail, later ops may use it
    elif kind == "fork":
        t.children.append(op["as"])
    elif kind in RELEASES:
        release, key = RELEASES[kind]
        give_back: dict[str, Any] = {"op": release, key: op["as"]}
        if kind == "vmsplice":
            give_back["length"] = op["length"]
        t.pins.append(give_back)
    elif kind == "exit":
        process = op.get("process", t.process)
        t.exited.add(process)
        if process in t.children:
            t.children.remove(process)
    return op


def _mmap_args(rng: random.Random, op: dict[str, Any], tag: str, mappings: list[str]) -> None:
    op["length"] = _length(rng)
    op["prot"] = rng.choice(PROTS)
    flags = [rng.choice(("private", "shared"))]
    if rng.random() < 0.3:
        op["file"] = FILE_PATH
        op["prot"] = rng.choice(("", "r"))  # the file may be read-only: never fails EACCES
        flags = ["private"]
    if rng.random() < 0.3:
        flags.append("fixed")
        op["addr"] = rng.choice(mappings) + rng.choice(("", f"+{PAGE}"))
    elif rng.random() < 0.2:
        flags.append(rng.choice(("locked", "populate")))
    op["flags"] = flags
    op["as"] = tag


def _by(rng: random.Random, op: dict[str, Any], processes: list[str], t: _Thread) -> None:
    """Sometimes a ptrace access by another process that no thread exits."""
    if rng.random() < 0.4:
        others = [p for p in processes if p != op.get("process", t.process)]
        if others:
            op["by"] = rng.choice(others)


def _drop_exited_tracers(threads: list[_Thread]) -> None:
    """A ``by`` process must be alive whenever the access runs: never one
    that some thread exits."""
    exited = set().union(*(t.exited for t in threads))
    for t in threads:
        for op in t.ops:
            if op.get("by") in exited:
                del op["by"]


def _checks(rng: random.Random, setup: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Checks whose verdict can depend on the interleaving: the file is
    unchanged (unless the setup itself writes it through a shared mapping),
    nothing leaks."""
    checks: list[dict[str, Any]] = []
    shared_file = any(op.get("file") and "shared" in op.get("flags", ()) for op in setup)
    if not shared_file and rng.random() < 0.5:
        checks.append({"kind": "file_unchanged", "path": FILE_PATH})
    if rng.random() < 0.3:
        checks.append({"kind": "no_leaks"})
    return checks
