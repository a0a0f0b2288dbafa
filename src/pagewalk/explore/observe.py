"""Observable final states, for comparing what different interleavings (and
different kernel profiles) can end in."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from ..kernel.constants import PAGE_SHIFT, PAGE_SIZE
from ..kernel.page import PG_anon
from ..kernel.pgtable import _PAGE_DIRTY, _PAGE_PROTNONE, _PAGE_RW, PTE_MASK, PTE_PRESENT_MASK

if TYPE_CHECKING:
    from ..kernel.kernel import Kernel
    from ..scenario.runner import Runner


def pte_summary(k: Kernel, pte: int | None) -> str:
    if pte is None:
        return "no table"
    if not pte:
        return "none"
    if not pte & PTE_PRESENT_MASK:
        return f"swap/file {pte:#x}"
    pfn = (pte & PTE_MASK) >> PAGE_SHIFT
    page = k.alloc.mem_map[pfn]
    kind = "ZERO_PAGE" if page is k.zero_page else ("anon" if page.flags & PG_anon else "file")
    bits = "rw" if pte & _PAGE_RW else "ro"
    if pte & _PAGE_DIRTY:
        bits += " dirty"
    if pte & _PAGE_PROTNONE and not pte & 1:
        bits += " PROT_NONE"
    return f"{kind} pfn {pfn} {bits}"


def _digest(data: bytes | None) -> str:
    if data is None:
        return "-"
    if not any(data):
        return "zeroes"
    text = data.rstrip(b"\0")
    h = hashlib.blake2b(data, digest_size=4).hexdigest()
    try:
        shown = text.decode("utf-8")
    except UnicodeDecodeError:
        return h
    if not shown.isprintable() and not all(c.isprintable() or c in "\n\t" for c in shown):
        return h
    return repr(shown) if len(shown) <= 32 else f"{shown[:29]!r}... ({h})"


def pin_views(runner: Runner) -> tuple:
    """For each gup or pin held now, by name, whether each of its pages is
    the page its address maps (``same``), another (``other``), none
    (``none``), or the process has exited.  Taken when the threads have
    all finished: which page a reference holds shows in no final state once
    ``final`` drops it (a COW that replaced a gup's page, say)."""
    k = runner.k
    out = []
    for name in sorted(runner.pins):
        proc, start = runner.pin_origins[name]
        tsk = k.tasks.get(proc)
        if tsk is None or tsk.mm is None:
            out.append((name, "exited"))
            continue
        views = []
        for i, page in enumerate(runner.pins[name]):
            mapped = k.page(proc, start + i * PAGE_SIZE)
            views.append("same" if mapped is page else ("none" if mapped is None else "other"))
        out.append((name, " ".join(views)))
    return tuple(out)


def observe_state(runner: Runner, pins: tuple = ()) -> tuple:
    """A hashable summary of what a user could observe at the end: each
    operation's outcome, each file's bytes, for every address the scenario
    used: present, zero page, anonymous, which frame (as a label in order of
    address, never a raw frame number) and contents; and ``pins``, the
    gup and pin references as the threads left them (:func:`pin_views`)."""
    k = runner.k
    labels: dict[int, str] = {}
    results = tuple(
        sorted((r.step, r.value, r.errno, r.signal, _digest(r.data)) for r in runner.result.results)
    )  # completion order is not state
    files = tuple((path, _digest(f.content())) for path, f in sorted(k.files.items()))
    pages: list[tuple[Any, ...]] = []
    # Sorted: the order operations first used the addresses is the schedule's,
    # not state, and two schedules that commute must give the same summary.
    for proc, addr in sorted(runner.touched):
        tsk = k.tasks.get(proc)
        if tsk is None or tsk.mm is None:
            pages.append((proc, addr, "exited"))
            continue
        page = k.page(proc, addr)
        if page is None:
            pages.append((proc, addr, "absent"))
            continue
        label = labels.setdefault(page.pfn, f"F{len(labels)}")
        kind = "zero" if page is k.zero_page else ("anon" if page.flags & PG_anon else "file")
        pages.append((proc, addr, kind, label, _digest(k.peek(proc, addr, 4096))))
    return results, files, tuple(pages), pins


def describe_observation(obs: tuple) -> list[str]:
    results, files, pages, pins = obs
    lines = [
        f"result {step}: "
        + (
            errno
            or signal
            or (hex(value) if isinstance(value, int) and value >= 4096 else repr(value))
        )
        + (f" read {data}" if data != "-" else "")
        for step, value, errno, signal, data in results
    ]
    lines += [f"file {path}: {digest}" for path, digest in files]
    for entry in pages:
        proc, addr, *rest = entry
        lines.append(f"page {proc}@{addr:#x}: " + " ".join(str(x) for x in rest))
    lines += [f"pin {name}: {views}" for name, views in pins]
    return lines
