"""The ``[[check]]`` kinds of the scenario spec, evaluated after an execution.

Checks look at the model the way a debugger would (no faults, no locks).
``no_leaks`` runs last because it has to exit every remaining process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..kernel.page import (
    PG_anon,
    PG_dirty,
    PG_pgtable,
    PG_reserved,
    page_count,
    page_mapcount,
)
from ..kernel.pgtable import _PAGE_DIRTY, _PAGE_RW
from .model import PAGE_PROPERTIES
from .summary import first_difference, mismatch, show_bytes

if TYPE_CHECKING:
    from .model import CheckSpec
    from .runner import CheckResult, Runner


def evaluate_checks(runner: Runner) -> list[CheckResult]:
    from .runner import CheckResult

    specs = runner.scenario.checks
    order = sorted(range(len(specs)), key=lambda i: specs[i].kind == "no_leaks")
    results: dict[int, CheckResult] = {}
    for i in order:
        spec = specs[i]
        try:
            ok, message = CHECKS[spec.kind](runner, spec.args)
        except InputError as err:
            # A check's address or process resolved at the end: name the check.
            field = (err.where or "").partition(".")[2]  # "memory.addr" -> "addr"
            raise InputError(err.detail, f"{spec.where}.{field}" if field else spec.where) from None
        results[i] = CheckResult(spec.kind, ok, message)
    return [results[i] for i in range(len(specs))]


def _file(runner: Runner, path: str) -> Any:
    return runner.k.files[path]


def check_file_unchanged(runner: Runner, a: dict) -> tuple[bool, str]:
    f = _file(runner, a["path"])
    now = f.content()
    if now == f.initial:
        return True, f"{f.path} unchanged"
    first = first_difference(now, f.initial)
    return False, (
        f"{f.path} changed at offset {first}: "
        f"{now[first : first + 16]!r} (was {f.initial[first : first + 16]!r})"
    )


def check_file_content(runner: Runner, a: dict) -> tuple[bool, str]:
    f = _file(runner, a["path"])
    off, data = a["offset"], a["data"]
    got = f.content()[off : off + len(data)]
    if got == data:
        return True, f"{f.path}@{off} holds {show_bytes(data)}"
    return False, f"{f.path}@{off} holds {mismatch(got, data)}"


def _proc_addr(runner: Runner, a: dict, where: str) -> tuple[str, int]:
    return a["process"], runner.resolve(a["addr"], where)


def _dead(runner: Runner, proc: str) -> bool:
    return runner.k.task(proc).mm is None


def check_memory(runner: Runner, a: dict) -> tuple[bool, str]:
    proc, addr = _proc_addr(runner, a, "memory.addr")
    if _dead(runner, proc):
        return False, f"process {proc} has exited"
    got = runner.k.peek(proc, addr, len(a["data"]))
    if got == a["data"]:
        return True, f"{proc}@{addr:#x} holds {show_bytes(got)}"
    if got is None:
        return False, f"{proc}@{addr:#x} is not mapped"
    return False, f"{proc}@{addr:#x} holds {mismatch(got, a['data'])}"


def page_properties(runner: Runner, proc: str, addr: int) -> dict[str, Any]:
    """What a ``page`` check can ask about the pte and page at an address."""
    k = runner.k
    pte = k.pte(proc, addr) or 0
    page = k.page(proc, addr)
    props: dict[str, Any] = {"present": page is not None}
    if page is None:
        return props
    props.update(
        writable=bool(pte & _PAGE_RW),
        dirty=bool(pte & _PAGE_DIRTY) or bool(page.flags & PG_dirty),
        zero_page=page is k.zero_page,
        anon=bool(page.flags & PG_anon),
        node=page.node,
        mapcount=page_mapcount(page),
        count=page_count(page),
    )
    return props


def check_page(runner: Runner, a: dict) -> tuple[bool, str]:
    proc, addr = _proc_addr(runner, a, "page.addr")
    if _dead(runner, proc):
        return False, f"process {proc} has exited"
    props = page_properties(runner, proc, addr)
    wrong = []
    for key in PAGE_PROPERTIES:
        if key in a and props.get(key) != a[key]:
            got = props.get(key, "n/a (not present)")
            wrong.append(f"{key}={got} (want {a[key]})")
    shown = ", ".join(f"{k}={v}" for k, v in props.items())
    if wrong:
        return False, f"{proc}@{addr:#x}: " + "; ".join(wrong)
    return True, f"{proc}@{addr:#x}: {shown}"


def check_same_page(runner: Runner, a: dict) -> tuple[bool, str]:
    pages = []
    for side in ("a", "b"):
        proc, addr = _proc_addr(runner, a[side], f"same_page.{side}.addr")
        page = None if _dead(runner, proc) else runner.k.page(proc, addr)
        pages.append((proc, addr, page))
    (pa, aa, ga), (pb, ab, gb) = pages
    same = ga is not None and ga is gb
    what = f"{pa}@{aa:#x} -> {_pfn(ga)}, {pb}@{ab:#x} -> {_pfn(gb)}"
    return same == a.get("expect", True), ("same page: " if same else "different pages: ") + what


def _pfn(page: Any) -> str:
    return "not present" if page is None else f"pfn {page.pfn}"


def check_result(runner: Runner, a: dict) -> tuple[bool, str]:
    res = runner.by_step.get(a["step"])
    if res is None:
        return False, f"step {a['step']} did not run"
    got = f"value={res.value} errno={res.errno} signal={res.signal}"
    for key in ("errno", "value", "signal"):
        if key in a:
            want = a[key]
            have = getattr(res, key)
            if key == "value" and isinstance(want, str) and isinstance(have, int):
                have = str(have)
            ok = have == want and (key != "value" or (res.errno is None and res.signal is None))
            return ok, f"{a['step']}: {got}" + ("" if ok else f" (want {key}={want})")
    return False, f"{a['step']}: nothing to compare"


def check_page_tables(runner: Runner, a: dict) -> tuple[bool, str]:
    proc = a["process"]
    if _dead(runner, proc):
        return a["max"] >= 0, f"process {proc} has exited: it holds no page tables"
    n = runner.k.page_tables(proc)
    return n <= a["max"], f"{proc} holds {n} page-table pages (max {a['max']})"


def check_no_leaks(runner: Runner, a: dict) -> tuple[bool, str]:
    """Exit every remaining process, drop remaining pins, then every page must
    be free except page cache and boot-reserved pages (zero page, vsyscall)."""
    k = runner.k
    for tsk in list(k.tasks.values()):
        if tsk.mm is not None:
            k.exit(tsk)
    leaks = []
    if k.pins:
        leaks.append(f"{sum(k.pins.values())} page references still pinned by gup")
    cached = {p.pfn for f in k.files.values() for p in f.mapping.page_tree.values()}
    for page in k.alloc.mem_map:
        if page._count < 0:
            continue
        if page.flags & PG_reserved:
            if page_count(page) != 1 + k.pins.get(page.pfn, 0):
                leaks.append(f"reserved {page!r} has stray references")
        elif page.pfn in cached:
            if page_count(page) != 1 + k.pins.get(page.pfn, 0):
                leaks.append(f"page-cache {page!r} has stray references")
        elif page.flags & PG_pgtable:
            leaks.append(f"page table {page!r} was not freed")
        elif page.pfn not in k.pins:
            leaks.append(f"{page!r} was not freed")
    if k.nr_page_table_pages:
        leaks.append(f"nr_page_table_pages is {k.nr_page_table_pages} after every exit")
    if leaks:
        more = f" (+{len(leaks) - 5} more)" if len(leaks) > 5 else ""
        return False, "; ".join(leaks[:5]) + more
    return True, "every page is free, cached or reserved"


def check_pinned(runner: Runner, a: dict) -> tuple[bool, str]:
    """Pin coherency: the page a pin (or gup) holds for ``addr`` is the page
    mapped there now -- or, with ``expect = false``, is not."""
    name = a["pins"]
    proc, addr = _proc_addr(runner, a, "pinned.addr")
    pages = runner.pins.get(name)
    if pages is None:
        return False, f"{name} holds no pages now (never taken, or released)"
    index = (addr - runner.pin_origins[name][1]) // 4096
    if not 0 <= index < len(pages):
        return False, f"{name} holds no page for {addr:#x} ({len(pages)} pinned)"
    held = pages[index]
    mapped = None if _dead(runner, proc) else runner.k.page(proc, addr)
    same = mapped is held
    what = f"{name} holds {_pfn(held)}, {proc}@{addr:#x} maps {_pfn(mapped)}"
    return same == a.get("expect", True), what


CHECKS: dict[str, Callable[[Runner, dict], tuple[bool, str]]] = {
    "file_unchanged": check_file_unchanged,
    "file_content": check_file_content,
    "memory": check_memory,
    "page": check_page,
    "same_page": check_same_page,
    "result": check_result,
    "page_tables": check_page_tables,
    "no_leaks": check_no_leaks,
    "pinned": check_pinned,
}

__all__ = ["CHECKS", "CheckSpec", "evaluate_checks"]
