"""Random operation sequences against one Kernel, checked after every step.

A Hypothesis state machine drives 1-3 processes through mmap (anonymous and
file, private and shared, MAP_FIXED over live mappings, MAP_LOCKED,
MAP_POPULATE), munmap, mprotect, madvise (all five advices), mlock/munlock,
fork, exit, user loads/stores (inside and outside mappings), ptrace-style
mem_read/mem_write (forced) and get_user_pages pins.

After every step:

* ``Kernel.check_invariants()`` (page counts, mapcounts, rss, locks, tables);
* every page the reference model knows is compared with what the process
  would read (``Kernel.peek``), and with the kernel's vma for it (protection,
  VM_LOCKED, shared/private, file and file offset); the kernel may have no
  vma page the model does not know.

The reference model is page-granular and exact for the cases it tracks:

* private anonymous pages: what this process last wrote (zeroes after
  mmap or MADV_DONTNEED), copied at fork;
* shared anonymous pages: one shmem object shared by the mapper and its
  forked children (DONTNEED keeps the data);
* shared file pages: the file's page-cache bytes, shared by everyone;
* private file pages: the file's bytes until the first write fault (a user
  store, a forced store, a gup for write, or mlock/MAP_LOCKED of a writable
  mapping), then a private copy.

2.6.15 behaviours the model follows:

* a forced write (ptrace) into a shared mapping without VM_WRITE makes the
  kernel COW an anonymous page *inside the shared vma*; the model then stops
  checking that page (``unknown``) until it is zapped;
* beyond EOF, filemap_nopage refuses the mm's own faults (SIGBUS / EFAULT)
  but gives an external ptracer a zero-filled page-cache page; once a pte is
  present the owner can use the page too, so whether a pte is present is
  read from the kernel before each access;
* private anonymous MAP_GROWSDOWN vmas grow down to any faulting address
  (user access or get_user_pages) below them; accesses are kept within 16
  pages of a stack, as the model lists every page;
* mlock stops at the first page make_pages_present cannot fault, with the
  rest of that vma already locked (the vma bounds are read from the kernel).

Not driven: a ptracer growing a VM_LOCKED stack of another process (2.6.15
then runs make_pages_present on the *tracer's* mm; see test_cli.py's
kernel BUG scenario), shared anonymous stacks.

Results (addresses, errno values, byte counts, signals, gup counts) are also
predicted and compared.  At the end every pin is dropped, every process
exits and no page may be left but page cache and the two reserved pages.

``PAGEWALK_SLOW=1`` runs a longer search as well; ``PAGEWALK_SEMANTICS``
names another profile to run the machine under (default "2.6.15").
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from pagewalk import Access, Kernel
from pagewalk.kernel.constants import (
    TASK_UNMAPPED_BASE,
    VM_EXEC,
    VM_GROWSDOWN,
    VM_LOCKED,
    VM_MAYSHARE,
    VM_READ,
    VM_WRITE,
)
from pagewalk.kernel.page import PG_pgtable, PG_reserved, page_contents, page_count

PAGE = 4096
ZERO = bytes(PAGE)
EINVAL, ENOMEM, EACCES, EFAULT, EBADF, EPERM = -22, -12, -13, -14, -9, -1

PROTS = ["", "r", "rw", "rx", "rwx"]
#: Most new mappings are writable, so that stores (and their COWs) happen.
MMAP_PROTS = ["rw", "rw", "rw", "", "r", "rx", "rwx"]
PROT_BITS = {
    "": 0,
    "r": VM_READ,
    "rw": VM_READ | VM_WRITE,
    "rx": VM_READ | VM_EXEC,
    "rwx": VM_READ | VM_WRITE | VM_EXEC,
}
ADVICES = ["normal", "random", "sequential", "willneed", "dontneed"]
KINDS = ["anon", "shm", "fpriv", "fshared"]

# Two small files: 3 pages and a bit (the last page is partial), and 2 pages
# that processes may only open read-only.
FILE_SPECS = {
    "/data": (bytes((i * 7 + 1) % 251 + 1 for i in range(3 * PAGE + 1000)), "rw"),
    "/ro": (bytes((i * 13 + 5) % 241 + 1 for i in range(2 * PAGE)), "r"),
}
#: A fixed address in an empty part of the address space (MAP_FIXED target).
FIXED_BASE = 0x10000000


def page_align(n: int) -> int:
    return (n + PAGE - 1) & ~(PAGE - 1)


def fill(seed: int, n: int) -> bytes:
    pattern = bytes(((seed + 3 * i) % 255) + 1 for i in range(17))
    return (pattern * (n // 17 + 1))[:n]


# --------------------------------------------------------------------------
# The reference model


@dataclass(eq=False)
class FileModel:
    path: str
    mode: str
    pages: list[bytearray]  # the page cache, page-granular (tail of last page included)
    #: page-cache pages beyond EOF, which only an external ptracer creates
    extra: dict[int, bytearray] = field(default_factory=dict)


@dataclass(eq=False)
class ShmModel:
    pages: list[bytearray]
    kfile: object = None  # the kernel's shmem File, for the vma cross-check


@dataclass(eq=False)
class RPage:
    """What the model knows about one mapped page of one process."""

    kind: str  # anon | shm | fpriv | fshared
    prot: str
    locked: bool = False
    data: bytearray | None = None  # anon: own bytes; fpriv: the private copy once COWed
    obj: FileModel | ShmModel | None = None
    index: int = 0  # page index in obj
    unknown: bool = False  # forced COW inside a shared vma: not tracked
    growsdown: bool = False  # VM_GROWSDOWN (private anonymous only)

    def clone(self) -> RPage:
        data = None if self.data is None else bytearray(self.data)
        return replace(self, locked=False, data=data)


def backing(rp: RPage) -> bytearray | None:
    """The page-cache (or shmem) page behind rp, None if there is none yet."""
    if rp.index < len(rp.obj.pages):
        return rp.obj.pages[rp.index]
    return rp.obj.extra.get(rp.index)


def beyond_eof(rp: RPage) -> bool:
    return rp.kind in ("fpriv", "fshared") and rp.index >= len(rp.obj.pages)


def expected(rp: RPage) -> bytes | None:
    """The page's bytes as the process sees them, or None if not tracked."""
    if rp.unknown:
        return None
    if rp.kind == "anon":
        return ZERO if rp.data is None else bytes(rp.data)
    if rp.kind == "fpriv" and rp.data is not None:
        return bytes(rp.data)
    page = backing(rp)
    return ZERO if page is None else bytes(page)  # beyond EOF, never cached: zeroes


def maywrite(rp: RPage) -> bool:
    """VM_MAYWRITE: cleared only for shared mappings of read-only files."""
    return not (rp.kind == "fshared" and rp.obj.mode == "r")


# Beyond EOF, filemap_nopage answers NOPAGE_SIGBUS -- but only to the mm's own
# faults: "An external ptracer can access pages that normally aren't
# accessible" gets a zero-filled page-cache page there.  A pte that is already
# present needs no ->nopage at all, so the owner can then use the page too.
# ``present`` is whether the pte was present before the operation; ``own``
# whether the faulting task is the mm's owner.


def user_signal(rp: RPage | None, write: bool, present: bool) -> str | None:
    """The signal a user load/store of this page gets (None: it succeeds)."""
    if rp is None or ("w" if write else "r") not in rp.prot:
        return "SIGSEGV"
    if beyond_eof(rp) and not present:
        return "SIGBUS"
    return None


def gup_ok(rp: RPage | None, write: bool, force: bool, own: bool, present: bool) -> bool:
    """Would get_user_pages(write, force) handle this page?"""
    if rp is None:
        return False
    if beyond_eof(rp) and own and not present:
        return False
    if force:
        return maywrite(rp) if write else True
    return ("w" if write else "r") in rp.prot


def touched(rp: RPage) -> None:
    """A successful access: beyond EOF, the page cache now has the page."""
    if beyond_eof(rp) and rp.index not in rp.obj.extra:
        rp.obj.extra[rp.index] = bytearray(PAGE)
        event("a ptracer reaches beyond EOF")


def write_fault(rp: RPage, off: int = 0, data: bytes | None = None) -> None:
    """A write fault (user store, forced store, gup for write, mlock of a
    writable mapping) on a page it succeeds on, storing ``data`` at ``off``."""
    touched(rp)
    if rp.unknown:
        return
    if rp.kind in ("shm", "fshared"):
        if "w" not in rp.prot:  # forced: do_wp_page copies into an anon page
            rp.unknown = True
            event("forced write COWs inside a shared vma")
            return
        target = backing(rp)
    else:
        if rp.data is None:
            src = ZERO if rp.kind == "anon" else backing(rp)
            rp.data = bytearray(src)
        target = rp.data
    if data:
        target[off : off + len(data)] = data


def chunks(addr: int, length: int):
    """(page address, offset in page, chunk length, offset in the buffer)."""
    done = 0
    while done < length:
        a = addr + done
        off = a & (PAGE - 1)
        n = min(PAGE - off, length - done)
        yield a - off, off, n, done
        done += n


@dataclass
class Proc:
    name: str
    pages: dict[int, RPage] = field(default_factory=dict)


# --------------------------------------------------------------------------
# The state machine

#: Pages away from a mapped page: mostly on it or next to it, sometimes far.
ACCESS_DELTA = st.one_of(st.just(0), st.integers(-1, 1), st.integers(-3, 6))
RANGE_DELTA = st.one_of(st.integers(0, 2), st.integers(-4, 24))
RANGE_PAGES = st.one_of(st.integers(1, 4), st.integers(0, 16))
#: 1 now and then, else 0 (misaligned addresses and lengths).
RARELY = st.integers(0, 12).map(lambda v: int(v == 5))

MMAP_ARGS = dict(
    sel=st.integers(0, 2),
    kind=st.sampled_from(KINDS),
    path=st.sampled_from(sorted(FILE_SPECS)),
    npages=st.one_of(st.integers(1, 5), st.integers(1, 40)),
    short=st.sampled_from([0, 0, 0, 1, 2047]),
    prot=st.sampled_from(MMAP_PROTS),
    offset=st.integers(0, 3),
    anchor=st.integers(0, 1000),
    delta=st.integers(-8, 8),
    locked=st.integers(0, 3).map(lambda v: v == 0),
    populate=st.booleans(),
    growsdown=st.integers(0, 5).map(lambda v: v == 0),
)


class KernelMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.boot(True, 1)

    def boot(self, split_ptlock: bool, nodes: int) -> None:
        self.k = Kernel(SEMANTICS, split_ptlock=split_ptlock, nodes=nodes)
        self.files: dict[str, FileModel] = {}
        for path, (content, mode) in FILE_SPECS.items():
            self.k.add_file(path, content, mode)
            n = (len(content) + PAGE - 1) // PAGE
            pages = [
                bytearray(content[i * PAGE : (i + 1) * PAGE].ljust(PAGE, b"\0")) for i in range(n)
            ]
            self.files[path] = FileModel(path, mode, pages)
        self.procs: list[Proc] = []
        self.pins: list[list] = []
        self.spawned = 0
        self._spawn()

    # -- helpers -------------------------------------------------------------
    def _spawn(self) -> None:
        self.spawned += 1
        name = f"p{self.spawned}"
        self.k.spawn(name, node=self.spawned % self.k.nodes)
        self.procs.append(Proc(name))

    def proc(self, sel: int) -> Proc:
        return self.procs[sel % len(self.procs)]

    def target(self, p: Proc, sel: int, delta: int, span: int = 0) -> int:
        """A page address near a live mapping of p (delta pages away), or
        near FIXED_BASE if p has none.  ``span``: the access touches that many
        pages above the address too."""
        anchors = sorted(p.pages)
        # the bottoms of stacks (growsdown vmas with a hole below) weigh more
        anchors += [a for a in anchors if p.pages[a].growsdown and a - PAGE not in p.pages] * 10
        base = anchors[sel % len(anchors)] if anchors else FIXED_BASE
        addr = max(PAGE, base + delta * PAGE)
        # Stacks grow at any distance, and the model enumerates the pages a
        # stack grows by: access a far-away stack from just below it instead.
        for a in self.range_pages(addr, addr + (span + 1) * PAGE):
            if a in p.pages:
                continue
            above = [b for b in p.pages if b > a]
            if above and p.pages[min(above)].growsdown and min(above) - a > 16 * PAGE:
                return min(above) - PAGE
            break  # the first unmapped page: the access grows or stops there
        return addr

    def range_pages(self, start: int, end: int) -> range:
        return range(start, end, PAGE)

    def present(self, p: Proc, start: int, npages: int) -> dict[int, bool]:
        """Whether the ptes of npages pages from start are present (before an
        operation: it decides whether beyond-EOF pages can be reached)."""
        start &= ~(PAGE - 1)
        return {
            a: self.k.page(p.name, a) is not None for a in range(start, start + npages * PAGE, PAGE)
        }

    def grow(self, p: Proc, a: int) -> None:
        """A fault or get_user_pages at unmapped page a: if the vma above it
        grows down, it grows to cover a (expand_stack, at any distance)."""
        if a in p.pages:
            return
        above = [b for b in p.pages if b > a]
        if not above or not p.pages[min(above)].growsdown:
            return
        top = p.pages[min(above)]
        for b in self.range_pages(a, min(above)):
            p.pages[b] = RPage("anon", top.prot, top.locked, growsdown=True)
        event("a stack grows")

    def tracer(self, p: Proc, by: int, addr: int, length: int) -> Proc:
        """The process doing a mem_read/mem_write of p.  Not another process
        when the access could grow a VM_LOCKED stack of p: find_extend_vma
        then calls make_pages_present(), which works on current->mm -- the
        tracer's own address space (faithful to 2.6.15, not modelled here)."""
        tracer = self.proc(by)
        for a, *_ in chunks(addr, length):
            above = [b for b in p.pages if b >= a]
            if (
                a not in p.pages
                and above
                and p.pages[min(above)].growsdown
                and p.pages[min(above)].locked
            ):
                return p
        return tracer

    def vma_ends(self, p: Proc, start: int, npages: int) -> dict[int, int | None]:
        """vm_end of the kernel's vma at each page (before an operation)."""
        start &= ~(PAGE - 1)
        ends = {}
        for a in range(start, start + npages * PAGE, PAGE):
            vma = self.k.vma(p.name, a)
            ends[a] = None if vma is None else vma.vm_end
        return ends

    # -- processes -------------------------------------------------------------
    @precondition(lambda self: not self.procs)
    @rule()
    def spawn(self) -> None:
        self._spawn()

    @precondition(lambda self: 0 < len(self.procs) < 3)
    @rule(sel=st.integers(0, 2))
    def fork(self, sel: int) -> None:
        parents = [p for p in self.procs if p.pages] or self.procs
        p = parents[sel % len(parents)]
        self.spawned += 1
        name = f"p{self.spawned}"
        assert self.k.fork(p.name, name) > 0
        self.procs.append(Proc(name, {a: rp.clone() for a, rp in p.pages.items()}))
        event(f"fork of a process with {'no' if not p.pages else 'some'} pages")

    @precondition(lambda self: self.procs)
    @rule(sel=st.integers(0, 2), really=st.integers(0, 3))
    def exit(self, sel: int, really: int) -> None:
        if really:  # exits are rarer than the other operations
            return
        p = self.proc(sel)
        assert self.k.exit(p.name) == 0
        self.procs.remove(p)

    # -- mappings --------------------------------------------------------------
    @initialize(
        split_ptlock=st.booleans(),
        nodes=st.integers(1, 2),
        maps=st.lists(st.fixed_dictionaries(MMAP_ARGS), min_size=1, max_size=3),
    )
    def first_mappings(self, split_ptlock: bool, nodes: int, maps: list[dict]) -> None:
        if (split_ptlock, nodes) != (True, 1):  # another machine configuration
            self.boot(split_ptlock, nodes)
        for kw in maps:
            self.do_mmap(fixed=None, **kw)

    @precondition(lambda self: self.procs)
    @rule(fixed=st.sampled_from([None, None, None, "hint"]), **MMAP_ARGS)
    def mmap(self, **kw) -> None:
        self.do_mmap(**kw)

    @precondition(lambda self: self.procs)
    @rule(fixed=st.sampled_from(["anchor", "anchor", "base"]), **MMAP_ARGS)
    def mmap_fixed(self, **kw) -> None:
        self.do_mmap(**kw)

    def do_mmap(
        self,
        sel,
        kind,
        path,
        npages,
        short,
        prot,
        offset,
        fixed,
        anchor,
        delta,
        locked,
        populate,
        growsdown,
    ) -> None:
        if kind == "shm":  # a shared anonymous stack is a bug of its own (see below)
            growsdown = False
        p = self.proc(sel)
        length = npages * PAGE - short
        flags = ["shared" if kind in ("shm", "fshared") else "private"]
        addr = 0
        if fixed is None and growsdown:  # a stack, in an emptier part: room to grow
            fixed = "hint-base"
        if fixed in ("anchor", "hint"):
            addr = self.target(p, anchor, delta)
        elif fixed in ("base", "hint-base"):  # in one of four GiB-aligned regions
            addr = FIXED_BASE + (anchor % 4 << 30) + (delta + 8) * PAGE
        if fixed in ("hint", "hint-base"):  # only a hint: used if the range is free
            fixed = None
        if fixed:
            flags.append("fixed")
        if locked:
            flags.append("locked")
        if populate:
            flags.append("populate")
        if growsdown:
            flags.append("growsdown")
        fobj = self.files[path] if kind in ("fpriv", "fshared") else None
        ret = self.k.mmap(
            p.name,
            length,
            prot,
            flags,
            fobj.path if fobj else None,
            offset * PAGE if fobj else 0,
            addr,
        )
        if fobj is not None and kind == "fshared" and "w" in prot and fobj.mode == "r":
            assert ret == EACCES
            return
        if fobj is not None and growsdown:  # refused after clearing the range
            assert ret == EINVAL
            for a in self.range_pages(addr, addr + npages * PAGE) if fixed else ():
                p.pages.pop(a, None)
            return
        assert ret >= 0, f"mmap failed with {ret}"
        if fixed:
            assert ret == addr
        new = range(ret, ret + npages * PAGE, PAGE)
        if fixed:
            for a in new:
                p.pages.pop(a, None)
        else:
            assert not any(a in p.pages for a in new), "mmap returned a range in use"
        shm = ShmModel([bytearray(PAGE) for _ in new]) if kind == "shm" else None
        if shm is not None:
            shm.kfile = self.k.vma(p.name, ret).vm_file
        for i, a in enumerate(new):
            if fobj is not None:
                p.pages[a] = RPage(kind, prot, locked, obj=fobj, index=offset + i)
            else:
                p.pages[a] = RPage(kind, prot, locked, obj=shm, index=i, growsdown=growsdown)
        if locked:  # make_pages_present over the new range, stopping at a failure
            write = "w" in prot
            for a in new:
                rp = p.pages[a]
                if not gup_ok(rp, write, False, True, False):
                    break
                if write:
                    write_fault(rp)

    @precondition(lambda self: self.procs)
    @rule(
        sel=st.integers(0, 2),
        anchor=st.integers(0, 1000),
        delta=RANGE_DELTA,
        npages=RANGE_PAGES,
        misalign=RARELY,
    )
    def munmap(self, sel, anchor, delta, npages, misalign) -> None:
        p = self.proc(sel)
        start = self.target(p, anchor, delta) + misalign
        length = npages * PAGE
        ret = self.k.munmap(p.name, start, length)
        if misalign or not npages:
            assert ret == EINVAL
            return
        assert ret == 0
        for a in self.range_pages(start, start + length):
            p.pages.pop(a, None)

    @precondition(lambda self: self.procs)
    @rule(
        sel=st.integers(0, 2),
        anchor=st.integers(0, 1000),
        delta=RANGE_DELTA,
        npages=RANGE_PAGES,
        prot=st.sampled_from(PROTS),
        misalign=RARELY,
    )
    def mprotect(self, sel, anchor, delta, npages, prot, misalign) -> None:
        p = self.proc(sel)
        start = self.target(p, anchor, delta) + misalign
        length = npages * PAGE - (100 if npages and misalign else 0)
        ret = self.k.mprotect(p.name, start, length, prot)
        want = self.predict_mprotect(p, start, length, prot)
        assert ret == want, f"mprotect returned {ret}, the model predicts {want}"
        event(f"mprotect -> {ret}")

    def predict_mprotect(self, p: Proc, start: int, length: int, prot: str) -> int:
        if start & (PAGE - 1):
            return EINVAL
        if not length:
            return 0
        for a in self.range_pages(start, start + page_align(length)):
            rp = p.pages.get(a)
            if rp is None:
                return ENOMEM
            if "w" in prot and not maywrite(rp):
                return EACCES
            rp.prot = prot
        return 0

    @precondition(lambda self: self.procs)
    @rule(
        sel=st.integers(0, 2),
        anchor=st.integers(0, 1000),
        delta=RANGE_DELTA,
        npages=RANGE_PAGES,
        advice=st.sampled_from(ADVICES),
        misalign=RARELY,
    )
    def madvise(self, sel, anchor, delta, npages, advice, misalign) -> None:
        p = self.proc(sel)
        start = self.target(p, anchor, delta) + misalign
        length = npages * PAGE
        ret = self.k.madvise(p.name, start, length, advice)
        want = self.predict_madvise(p, start, length, advice)
        assert ret == want, f"madvise returned {ret}, the model predicts {want}"
        event(f"madvise {advice} -> {ret}")

    def predict_madvise(self, p: Proc, start: int, length: int, advice: str) -> int:
        if start & (PAGE - 1):
            return EINVAL
        if not length:
            return 0
        if not any(a >= start for a in p.pages):
            return ENOMEM  # no vma at or above start
        hole = 0
        for a in self.range_pages(start, start + page_align(length)):
            rp = p.pages.get(a)
            if rp is None:
                hole = ENOMEM
                continue
            if advice == "willneed" and rp.kind == "anon":
                return EBADF
            if advice == "dontneed":
                if rp.locked:
                    return EINVAL
                rp.unknown = False
                if rp.kind in ("anon", "fpriv"):
                    rp.data = None  # zapped: zeroes / the file again
        return hole

    @precondition(lambda self: self.procs)
    @rule(
        sel=st.integers(0, 2),
        anchor=st.integers(0, 1000),
        delta=RANGE_DELTA,
        npages=RANGE_PAGES,
        misalign=RARELY.map(lambda m: 100 * m),
        on=st.booleans(),
    )
    def mlock(self, sel, anchor, delta, npages, misalign, on) -> None:
        p = self.proc(sel)
        start = self.target(p, anchor, delta) + misalign
        length = npages * PAGE
        if on:
            pres = self.present(p, start, npages + 1)
            ends = self.vma_ends(p, start, npages + 1)
            ret = self.k.mlock(p.name, start, length)
            want = self.predict_mlock(p, start, length, pres, ends)
            assert ret == want, f"mlock returned {ret}, the model predicts {want}"
            event(f"mlock -> {ret}")
        else:
            ret = self.k.munlock(p.name, start, length)
            want = self.predict_munlock(p, start, length)
            assert ret == want, f"munlock returned {ret}, the model predicts {want}"
            event(f"munlock -> {ret}")

    def _lock_range(self, start: int, length: int) -> tuple[int, int]:
        aligned = start & ~(PAGE - 1)
        return aligned, aligned + page_align(length + (start & (PAGE - 1)))

    def predict_mlock(
        self, p: Proc, start: int, length: int, pres: dict[int, bool], ends: dict[int, int | None]
    ) -> int:
        start, end = self._lock_range(start, length)
        if start == end:
            return 0
        a = start
        while a < end:
            rp = p.pages.get(a)
            if rp is None:
                return ENOMEM
            if rp.locked:  # newflags == vm_flags: nothing to do
                a += PAGE
                continue
            # mlock_fixup on the part of this vma in the range: lock all of
            # it, then make_pages_present, which stops at the first failure.
            assert ends[a] is not None, f"{p.name}: the kernel has no vma at {a:#x}"
            piece_end = min(ends[a], end)
            piece = list(self.range_pages(a, piece_end))
            for b in piece:
                p.pages[b].locked = True
            write = "w" in rp.prot
            for i, b in enumerate(piece):
                q = p.pages[b]
                if not gup_ok(q, write, False, True, pres[b]):
                    return EFAULT if i == 0 else EPERM
                if write:
                    write_fault(q)
                else:
                    touched(q)
            a = piece_end
        return 0

    def predict_munlock(self, p: Proc, start: int, length: int) -> int:
        start, end = self._lock_range(start, length)
        for a in self.range_pages(start, end):
            rp = p.pages.get(a)
            if rp is None:
                return ENOMEM
            rp.locked = False
        return 0

    # -- user accesses -----------------------------------------------------------
    @precondition(lambda self: self.procs)
    @rule(
        sel=st.integers(0, 2),
        anchor=st.integers(0, 1000),
        delta=ACCESS_DELTA,
        off=st.integers(0, PAGE - 1),
        length=st.integers(1, 2 * PAGE + 10),
    )
    def read(self, sel, anchor, delta, off, length) -> None:
        p = self.proc(sel)
        addr = self.target(p, anchor, delta, span=4) + off
        pres = self.present(p, addr, 4)
        acc = self.k.read(p.name, addr, length)
        self.check_read(p, addr, length, acc.data, acc.signal, pres, None)

    def check_read(
        self,
        p: Proc,
        addr: int,
        length: int,
        data: bytes,
        signal: str | None,
        pres: dict[int, bool],
        own: bool | None,
    ) -> None:
        """A user load (own is None) or a ptrace read by the owner or not."""
        user = own is None
        want_signal = None
        done = 0
        for a, off, n, at in chunks(addr, length):
            self.grow(p, a)
            rp = p.pages.get(a)
            if user:
                want_signal = user_signal(rp, False, pres[a])
                if want_signal:
                    break
            elif not gup_ok(rp, False, True, own, pres[a]):
                break
            touched(rp)
            page = expected(rp)
            if page is not None and any(page[off : off + n]):
                event(
                    f"{'user' if user else 'mem'} read checks data of {rp.kind}"
                    + (" (copy)" if rp.data is not None and rp.kind == "fpriv" else "")
                )
            if page is not None:
                assert data[at : at + n] == page[off : off + n], (
                    f"{p.name} read {addr:#x}+{length}: bytes at {a + off:#x} differ "
                    f"({rp.kind}, prot {rp.prot!r})"
                )
            done += n
        assert len(data) == done, f"{p.name}: read {len(data)} bytes, expected {done}"
        if user:
            assert signal == want_signal
            event(f"read -> {want_signal}")

    @precondition(lambda self: self.procs)
    @rule(
        sel=st.integers(0, 2),
        anchor=st.integers(0, 1000),
        delta=ACCESS_DELTA,
        off=st.integers(0, PAGE - 1),
        length=st.integers(1, 2 * PAGE + 10),
        seed=st.integers(0, 254),
    )
    def write(self, sel, anchor, delta, off, length, seed) -> None:
        p = self.proc(sel)
        addr = self.target(p, anchor, delta, span=4) + off
        data = fill(seed, length)
        pres = self.present(p, addr, 4)
        acc = self.k.write(p.name, addr, data)
        want_signal = None
        done = 0
        for a, o, n, at in chunks(addr, length):
            self.grow(p, a)
            rp = p.pages.get(a)
            want_signal = user_signal(rp, True, pres[a])
            if want_signal:
                break
            write_fault(rp, o, data[at : at + n])
            done += n
        assert (acc.data, acc.signal) == (done, want_signal)
        event(f"write -> {want_signal}")

    # -- ptrace and get_user_pages -------------------------------------------------
    @precondition(lambda self: self.procs)
    @rule(
        sel=st.integers(0, 2),
        by=st.integers(0, 2),
        anchor=st.integers(0, 1000),
        delta=ACCESS_DELTA,
        off=st.integers(0, PAGE - 1),
        length=st.integers(1, 2 * PAGE + 10),
    )
    def mem_read(self, sel, by, anchor, delta, off, length) -> None:
        p = self.proc(sel)
        addr = self.target(p, anchor, delta, span=4) + off
        tracer = self.tracer(p, by, addr, length)
        pres = self.present(p, addr, 4)
        n, data = self.k.mem_read(p.name, addr, length, by=tracer.name)
        assert n == len(data)
        self.check_read(p, addr, length, data, None, pres, tracer is p)

    @precondition(lambda self: self.procs)
    @rule(
        sel=st.integers(0, 2),
        by=st.integers(0, 2),
        anchor=st.integers(0, 1000),
        delta=ACCESS_DELTA,
        off=st.integers(0, PAGE - 1),
        length=st.integers(1, 2 * PAGE + 10),
        seed=st.integers(0, 254),
    )
    def mem_write(self, sel, by, anchor, delta, off, length, seed) -> None:
        p = self.proc(sel)
        addr = self.target(p, anchor, delta, span=4) + off
        data = fill(seed, length)
        tracer = self.tracer(p, by, addr, length)
        pres = self.present(p, addr, 4)
        ret = self.k.mem_write(p.name, addr, data, by=tracer.name)
        done = 0
        for a, o, n, at in chunks(addr, length):
            self.grow(p, a)
            rp = p.pages.get(a)
            if not gup_ok(rp, True, True, tracer is p, pres[a]):
                break
            write_fault(rp, o, data[at : at + n])
            done += n
        assert ret == done
        event(f"mem_write -> {'some' if done else 'none'}")

    @precondition(lambda self: self.procs)
    @rule(
        sel=st.integers(0, 2),
        anchor=st.integers(0, 1000),
        delta=ACCESS_DELTA,
        npages=st.integers(1, 8),
        write=st.booleans(),
        force=st.booleans(),
    )
    def gup(self, sel, anchor, delta, npages, write, force) -> None:
        p = self.proc(sel)
        start = self.target(p, anchor, delta, span=npages)
        pres = self.present(p, start, npages)
        ret, pages = self.k.gup(p.name, start, npages, write, force)
        want = 0
        for a in self.range_pages(start, start + npages * PAGE):
            self.grow(p, a)
            rp = p.pages.get(a)
            if not gup_ok(rp, write, force, True, pres[a]):
                break
            if write:
                write_fault(rp)
            else:
                touched(rp)
            want += 1
        assert ret == (want or EFAULT)
        event(f"gup write={write} force={force} -> {min(ret, 1)}")
        assert len(pages) == want
        if pages:
            self.pins.append(pages)

    @precondition(lambda self: self.pins)
    @rule(sel=st.integers(0, 100))
    def put_pages(self, sel) -> None:
        self.k.put_pages(self.pins.pop(sel % len(self.pins)))

    # -- after every step ---------------------------------------------------------
    @invariant()
    def kernel_invariants(self) -> None:
        self.k.check_invariants()

    @invariant()
    def memory_matches_model(self) -> None:
        for p in self.procs:
            mm = self.k.tasks[p.name].mm
            kernel_pages = sum((v.vm_end - v.vm_start) // PAGE for v in mm.vmas())
            assert kernel_pages == len(p.pages), (
                f"{p.name}: the kernel maps {kernel_pages} pages, the model {len(p.pages)}"
            )
            for a, rp in p.pages.items():
                vma = self.k.vma(p.name, a)
                assert vma is not None, f"{p.name}: no vma at {a:#x}"
                flags = vma.vm_flags
                where = f"{p.name}@{a:#x} ({rp.kind}, prot {rp.prot!r}) in {vma!r}"
                assert flags & (VM_READ | VM_WRITE | VM_EXEC) == PROT_BITS[rp.prot], where
                assert bool(flags & VM_LOCKED) == rp.locked, where
                assert bool(flags & VM_GROWSDOWN) == rp.growsdown, where
                assert bool(flags & VM_MAYSHARE) == (rp.kind in ("shm", "fshared")), where
                if rp.kind == "anon":
                    assert vma.vm_file is None, where
                else:
                    kfile = rp.obj.kfile if rp.kind == "shm" else self.k.files[rp.obj.path]
                    assert vma.vm_file is kfile, where
                    assert ((a - vma.vm_start) >> 12) + vma.vm_pgoff == rp.index, where
                want = expected(rp)
                if want is not None:
                    got = self.k.peek(p.name, a, PAGE)
                    assert got == want, f"{where}: contents differ"

    @invariant()
    def page_cache_matches_model(self) -> None:
        for fm in self.files.values():
            tree = self.k.files[fm.path].mapping.page_tree
            assert set(tree) - set(range(len(fm.pages))) == set(fm.extra), fm.path
            for index, page in tree.items():
                want = fm.pages[index] if index < len(fm.pages) else fm.extra[index]
                got = page_contents(page)
                assert got == want, f"{fm.path}: page-cache page {index} differs"

    def teardown(self) -> None:
        while self.pins:
            self.k.put_pages(self.pins.pop())
        for p in self.procs:
            self.k.exit(p.name)
        self.procs.clear()
        self.k.check_invariants()
        assert_no_leaks(self.k)


def assert_no_leaks(k: Kernel) -> None:
    """As the ``no_leaks`` check: every page is free, page cache or reserved."""
    cached = {pg.pfn for f in k.files.values() for pg in f.mapping.page_tree.values()}
    leaks = []
    for page in k.alloc.mem_map:
        if page._count < 0:
            continue
        if page.flags & PG_reserved or page.pfn in cached:
            if page_count(page) != 1:
                leaks.append(f"{page!r} has stray references")
        elif page.flags & PG_pgtable:
            leaks.append(f"page table {page!r} was not freed")
        else:
            leaks.append(f"{page!r} was not freed")
    assert not leaks, "; ".join(leaks[:5])
    assert k.nr_page_table_pages == 0


# --------------------------------------------------------------------------
# Tests

SEMANTICS = os.environ.get("PAGEWALK_SEMANTICS", "2.6.15")
COMMON = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def test_random_operation_sequences() -> None:
    run_state_machine_as_test(
        KernelMachine, settings=settings(max_examples=200, stateful_step_count=50, **COMMON)
    )


@pytest.mark.skipif(
    os.environ.get("PAGEWALK_SLOW") != "1", reason="slow: set PAGEWALK_SLOW=1 to run"
)
def test_random_operation_sequences_long() -> None:
    run_state_machine_as_test(
        KernelMachine, settings=settings(max_examples=1500, stateful_step_count=80, **COMMON)
    )


def test_unmapped_base_is_where_mmap_starts() -> None:
    """The state machine's FIXED_BASE must not collide with the mmap area."""
    k = Kernel()
    k.spawn("p")
    assert k.mmap("p", PAGE) == TASK_UNMAPPED_BASE > FIXED_BASE + (4 << 30)


@pytest.mark.parametrize("high_bits", [1 << 48, 0xFFFF << 48], ids=["bit48", "ffff"])
def test_noncanonical_user_access_is_sigsegv(high_bits: int) -> None:
    k = Kernel()
    k.spawn("p")
    a = k.mmap("p", PAGE, "rw")
    assert k.write("p", a, b"secret") == Access(6, None)
    bad = a | high_bits
    assert k.read("p", bad, 6).signal == "SIGSEGV"
    assert k.write("p", bad, b"XX").signal == "SIGSEGV"
    assert k.read("p", a, 6) == Access(b"secret", None)
    k.check_invariants()


def test_shared_anonymous_stack_growth_is_sigbus() -> None:
    k = Kernel()
    k.spawn("p")
    a = k.mmap("p", 2 * PAGE, "rw", ["shared", "growsdown"])
    assert a > 0
    assert k.write("p", a - PAGE, b"below").signal == "SIGBUS"
    k.check_invariants()


def test_shared_anonymous_stack_keeps_its_first_page_after_a_wrapped_growth() -> None:
    # expand_stack wraps vm_pgoff below 0; the nopage offset wraps back with it
    # (pgoff_t is unsigned long), so the old first page is still object page 0.
    k = Kernel()
    k.spawn("p")
    a = k.mmap("p", 2 * PAGE, "r", ["shared", "growsdown"])
    assert k.read("p", a - PAGE, 1).signal == "SIGBUS"
    assert k.read("p", a, 1).signal is None
    k.check_invariants()
