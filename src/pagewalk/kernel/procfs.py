"""/proc/PID/maps, smaps and numa_maps (fs/proc/task_mmu.c, Linux 2.6.15),
plus a page-table dump that has no kernel counterpart.

The formats follow fs/proc/task_mmu.c as read at torvalds/linux commit
705e87c0c3c3 ("mm: pte_offset_map_lock loops", state [T] of the reference),
with the two changes that deceb6cd17e6 ("mm: follow_page with inner ptlock")
made to ``get_numa_maps`` (reference section 5.2; the 21/21 mail's diff to
task_mmu.c removes the ``page_table_lock`` around the walk and adds a
``cond_resched()`` per address).  Which of the two ``get_numa_maps`` runs is
decided by the profile switch ``numa_maps_untouched``.

What differs from the kernel, for all files:

* A whole file is produced in one pass: ``m_start`` (``get_task_mm``,
  ``down_read(&mm->mmap_sem)``), a ``show`` per vma, then ``m_next``'s
  ``m_stop`` (``up_read``, ``mmput``) before the gate vma is shown, exactly
  as a read that fits the seq_file buffer.  Reads split over several
  ``read(2)`` calls (``m->version`` restarts, mmap_sem dropped between
  chunks) are not modelled.
* The reader is the target task itself: the file is produced under
  ``k.running(tsk)``, so the locks taken on the way are owned by ``tsk``.
* Files have no superblock: the device is always ``00:00``; the inode is
  ``file.ino``.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import InputError
from .constants import (
    PAGE_SHIFT,
    PAGE_SIZE,
    PGDIR_SHIFT,
    PMD_SHIFT,
    PUD_SHIFT,
    ULONG_MAX,
    VM_EXEC,
    VM_MAYSHARE,
    VM_READ,
    VM_WRITE,
)
from .fork import get_task_mm, mmput
from .locks import cond_resched, down_read, spin_lock, spin_unlock, up_read
from .memory import follow_page, missing_tables_end
from .page import PageAnon, page_count, page_mapcount
from .pgalloc import next_table, pte_offset_map_lock, pte_unmap_unlock
from .pgtable import (
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_NX,
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_PSE,
    _PAGE_RW,
    PTE_MASK,
    pgd_addr_end,
    pgd_bad,
    pgd_index,
    pgd_none,
    pmd_addr_end,
    pmd_bad,
    pmd_index,
    pmd_none,
    pte_dirty,
    pte_index,
    pte_pfn,
    pte_present,
    pud_addr_end,
    pud_bad,
    pud_index,
    pud_none,
)
from .prepatch import follow_page as follow_page_prepatch
from .rmap import mapcount_access
from .vma import is_vm_hugetlb_page

if TYPE_CHECKING:
    from collections.abc import Callable

    from .kernel import Kernel
    from .mm import task_struct
    from .vma import vm_area_struct

#: ``25 + sizeof(void *) * 6`` on a 64-bit kernel: the column the path starts at.
_PATH_COLUMN = 25 + 8 * 6


# --- the seq_file iterator (m_start / m_next / m_stop) ---------------------------
def _seq_read(tsk: task_struct, show: Callable[[task_struct, vm_area_struct], str]) -> str:
    """One read of a whole task_mmu.c seq_file: ``m_start`` takes the mm and
    ``down_read(&mm->mmap_sem)``; every vma of ``mm->mmap`` is shown; at the
    end of the list ``m_next`` calls ``m_stop`` (``up_read``, ``mmput``) and
    returns the gate vma (``get_gate_vma(task)``), which is shown without
    mmap_sem.  A task without an mm gives an empty file."""
    mm = get_task_mm(tsk)
    if mm is None:
        return ""
    k = mm.k
    out: list[str] = []
    with k.running(tsk):
        tail_vma = k.get_gate_vma(tsk)
        down_read(mm.mmap_sem)
        try:
            vma = mm.mmap
            while vma is not None:
                out.append(show(tsk, vma))
                vma = vma.vm_next
        finally:
            up_read(mm.mmap_sem)  # m_stop
            mmput(mm)
        if tail_vma is not None:
            out.append(show(tsk, tail_vma))
    return "".join(out)


# --- /proc/PID/maps -----------------------------------------------------------------
@dataclass
class mem_size_stats:
    """struct mem_size_stats: bytes, not pages, as in the kernel."""

    resident: int = 0
    shared_clean: int = 0
    shared_dirty: int = 0
    private_clean: int = 0
    private_dirty: int = 0


def pad_len_spaces(len: int) -> str:
    """pad_len_spaces(): spaces up to column ``25 + sizeof(void*) * 6`` (73
    on x86-64), at least one."""
    n = _PATH_COLUMN - len
    return " " * (n if n >= 1 else 1)


def _seq_path(vma: vm_area_struct) -> str:
    """seq_path() of the mapped file: its path, with `` (deleted)`` for an
    unlinked inode (the shmem object behind a shared anonymous mapping, whose
    dentry is "dev/zero", prints ``/dev/zero (deleted)``)."""
    file = vma.vm_file
    path = file.path
    if file.i_nlink == 0 and not path.endswith(" (deleted)"):
        path += " (deleted)"
    return path


def show_map_internal(
    tsk: task_struct, vma: vm_area_struct, mss: mem_size_stats | None = None
) -> str:
    """fs/proc/task_mmu.c show_map_internal(): one maps line, plus the smaps
    block when ``mss`` is given.

    The line is ``"%08lx-%08lx %c%c%c%c %08lx %02x:%02x %lu "`` (start, end,
    ``r``/``w``/``x`` from VM_READ/VM_WRITE/VM_EXEC, ``s`` if VM_MAYSHARE else
    ``p``, ``vm_pgoff << PAGE_SHIFT`` -- for a private anonymous vma that is
    its start address, since do_mmap_pgoff sets ``pgoff = addr >> PAGE_SHIFT``;
    0 under ``maps_anon_offset_zero`` --, device, inode), then, padded to
    column 73, the file's path; or for a
    vma without a file: ``[heap]`` if it spans ``start_brk..brk``, else
    ``[stack]`` if it contains ``start_stack``, and ``[vdso]`` for the gate
    vma (``vm_mm == NULL``; on x86-64 that is the vsyscall area
    ``ffffffffff600000-ffffffffffe00000 ---p``).  A line without a name keeps
    its trailing space.

    Differs: the model has no brk and no exec, so ``start_brk``, ``brk`` and
    ``start_stack`` read as 0 (the values of an mm that never exec'd); a
    MAP_GROWSDOWN vma is not ``[stack]``.  Device ``00:00`` for every file
    (the kernel prints the superblock's ``s_dev``).  ``m->version`` is not
    kept.
    """
    file = vma.vm_file
    flags = vma.vm_flags
    mm = vma.vm_mm
    ino = 0
    dev_major = dev_minor = 0
    pgoff = (vma.vm_pgoff << PAGE_SHIFT) & ULONG_MAX
    if file is not None:
        ino = file.ino
    elif tsk.mm.k.semantics.maps_anon_offset_zero:
        pgoff = 0  # later show_map_vma(): the offset of a file mapping only
    line = "%08x-%08x %c%c%c%c %08x %02x:%02x %d " % (  # noqa: UP031 - the kernel's format
        vma.vm_start,
        vma.vm_end,
        "r" if flags & VM_READ else "-",
        "w" if flags & VM_WRITE else "-",
        "x" if flags & VM_EXEC else "-",
        "s" if flags & VM_MAYSHARE else "p",
        pgoff,
        dev_major,
        dev_minor,
        ino,
    )
    length = len(line)  # the %n
    if file is not None:
        line += pad_len_spaces(length) + _seq_path(vma)
    elif mm is not None:
        start_brk = brk = start_stack = 0  # no exec: mm->brk and start_stack stay 0
        if vma.vm_start <= start_brk and vma.vm_end >= brk:
            line += pad_len_spaces(length) + "[heap]"
        elif vma.vm_start <= start_stack and vma.vm_end >= start_stack:
            line += pad_len_spaces(length) + "[stack]"
    else:
        line += pad_len_spaces(length) + "[vdso]"
    line += "\n"
    if mss is not None:
        line += (
            f"Size:          {(vma.vm_end - vma.vm_start) >> 10:8d} kB\n"
            f"Rss:           {mss.resident >> 10:8d} kB\n"
            f"Shared_Clean:  {mss.shared_clean >> 10:8d} kB\n"
            f"Shared_Dirty:  {mss.shared_dirty >> 10:8d} kB\n"
            f"Private_Clean: {mss.private_clean >> 10:8d} kB\n"
            f"Private_Dirty: {mss.private_dirty >> 10:8d} kB\n"
        )
    return line


def show_map(tsk: task_struct) -> str:
    """/proc/PID/maps: ``proc_pid_maps_op`` (m_start/m_next/m_stop with the
    show_map() of fs/proc/task_mmu.c, i.e. show_map_internal without stats),
    every vma then the gate vma."""
    return _seq_read(tsk, lambda t, vma: show_map_internal(t, vma, None))


# --- /proc/PID/smaps ----------------------------------------------------------------
def smaps_pte_range(
    vma: vm_area_struct, pmd: array, addr: int, end: int, mss: mem_size_stats
) -> None:
    """fs/proc/task_mmu.c smaps_pte_range(): under pte_offset_map_lock, each
    present pte (``pte_present``: PROT_NONE ptes too) adds a page to Rss; a
    valid frame is *shared* when ``page_count(page) >= 2`` -- the reference
    count, not the mapcount, so a page-cache page mapped once (cache + pte)
    or a gup-pinned anonymous page counts as shared and the ZERO_PAGE always
    does -- and *dirty* when ``pte_dirty`` (PG_dirty is not consulted).
    ``cond_resched()`` after each pte page."""
    mm = vma.vm_mm
    k = mm.k
    mem_map = k.alloc.mem_map
    page_table, ptl = pte_offset_map_lock(mm, pmd, addr)
    while True:
        ptent = page_table[pte_index(addr)]
        if pte_present(ptent):
            mss.resident += PAGE_SIZE
            pfn = pte_pfn(ptent)
            if k.alloc.pfn_valid(pfn):
                page = mem_map[pfn]
                if page_count(page) >= 2:
                    if pte_dirty(ptent):
                        mss.shared_dirty += PAGE_SIZE
                    else:
                        mss.shared_clean += PAGE_SIZE
                else:
                    if pte_dirty(ptent):
                        mss.private_dirty += PAGE_SIZE
                    else:
                        mss.private_clean += PAGE_SIZE
        addr += PAGE_SIZE
        if addr == end:
            break
    pte_unmap_unlock(page_table, ptl)
    cond_resched(k)


def _none_or_clear_bad(
    table: array, i: int, none: Callable[[int], bool], bad: Callable[[int], bool]
) -> bool:
    """p?d_none_or_clear_bad() (include/asm-generic/pgtable.h): true for an
    empty entry, and for a bad one, which it reports (p?d_ERROR) and clears
    -- without freeing what it pointed to.  The model builds no bad entry but
    a huge pmd, which only the smaps walk of a kernel without
    ``smaps_skips_hugetlb`` reaches."""
    entry = table[i]
    if none(entry):
        return True
    if bad(entry):
        table[i] = 0  # p?d_clear_bad
        return True
    return False


def smaps_pmd_range(
    vma: vm_area_struct, pud: array, addr: int, end: int, mss: mem_size_stats
) -> None:
    """fs/proc/task_mmu.c smaps_pmd_range(): ``pud`` is the pud table, as the
    kernel's ``pud_t *``; ``pmd_offset`` descends to the pmd table.  A huge
    pmd is pmd_bad on x86-64, so the walk clears it: the huge page stays
    referenced and counted in file_rss with nothing mapping it, and the next
    access is SIGBUS (hugetlb_fault finds no huge pte)."""
    mm = vma.vm_mm
    pmd = next_table(mm, pud[pud_index(addr)])  # pmd_offset(pud, addr)
    while True:
        next_ = pmd_addr_end(addr, end)
        if not _none_or_clear_bad(pmd, pmd_index(addr), pmd_none, pmd_bad):
            smaps_pte_range(vma, pmd, addr, next_, mss)
        addr = next_
        if addr == end:
            break


def smaps_pud_range(
    vma: vm_area_struct, pgd: array, addr: int, end: int, mss: mem_size_stats
) -> None:
    """fs/proc/task_mmu.c smaps_pud_range(): ``pgd`` is the pgd table;
    ``pud_offset`` descends to the pud table."""
    mm = vma.vm_mm
    pud = next_table(mm, pgd[pgd_index(addr)])  # pud_offset(pgd, addr)
    while True:
        next_ = pud_addr_end(addr, end)
        if not _none_or_clear_bad(pud, pud_index(addr), pud_none, pud_bad):
            smaps_pmd_range(vma, pud, addr, next_, mss)
        addr = next_
        if addr == end:
            break


def smaps_pgd_range(vma: vm_area_struct, addr: int, end: int, mss: mem_size_stats) -> None:
    """fs/proc/task_mmu.c smaps_pgd_range(): descend without a lock (mmap_sem
    is held for read, so no table is freed under us)."""
    mm = vma.vm_mm
    pgd = mm.pgd.data  # pgd_offset(mm, addr)
    while True:
        next_ = pgd_addr_end(addr, end)
        if not _none_or_clear_bad(pgd, pgd_index(addr), pgd_none, pgd_bad):
            smaps_pud_range(vma, pgd, addr, next_, mss)
        addr = next_
        if addr == end:
            break


def show_smap_vma(tsk: task_struct, vma: vm_area_struct) -> str:
    """fs/proc/task_mmu.c show_smap(): the page-table walk for a vma with an
    mm (the gate vma gets zero counts), then show_map_internal with stats.
    Called with mmap_sem held for read and ``tsk`` running.  A hugetlb vma
    is walked too (and its huge pmds cleared) unless the profile has
    ``smaps_skips_hugetlb``."""
    mss = mem_size_stats()
    mm = vma.vm_mm
    if mm is not None and not (mm.k.semantics.smaps_skips_hugetlb and is_vm_hugetlb_page(vma)):
        smaps_pgd_range(vma, vma.vm_start, vma.vm_end, mss)
    return show_map_internal(tsk, vma, mss)


def show_smap(tsk: task_struct) -> str:
    """/proc/PID/smaps: ``proc_pid_smaps_op``, every vma then the gate vma,
    each a maps line followed by ``Size``, ``Rss``, ``Shared_Clean``,
    ``Shared_Dirty``, ``Private_Clean``, ``Private_Dirty``: the kernel's
    literal labels padded to 15 columns, then ``"%8lu kB"``."""
    return _seq_read(tsk, show_smap_vma)


# --- /proc/PID/numa_maps ------------------------------------------------------------
@dataclass
class _numa_maps:
    pages: int = 0
    anon: int = 0
    mapped: int = 0
    mapcount_max: int = 0
    node: list[int] = field(default_factory=list)


def get_numa_maps(vma: vm_area_struct) -> dict | None:
    """fs/proc/task_mmu.c get_numa_maps(): count the pages mapped in a vma.

    For every page address of the vma, ``follow_page(mm, vaddr, 0)``; a page
    found adds to ``pages``, to ``mapped`` if ``page_mapcount`` is nonzero,
    to ``anon`` if PageAnon, to ``node[page_to_nid]``, and raises
    ``mapcount_max``.  No FOLL_ANON, so nothing is substituted for missing
    tables, but ptes mapping the ZERO_PAGE count (it is rmap'd, so it is
    "mapped", and its mapcount is that of every zero-page pte in the system);
    PROT_NONE ptes are ``pte_present`` and count too.

    Profile ``numa_maps_untouched`` (deceb6cd17e6):
      True:  no page_table_lock; memory.follow_page with flags 0 takes and
             drops the pte lock itself, marks nothing, takes no reference;
             ``cond_resched()`` after every address.
      False: the whole loop under ``spin_lock(&mm->page_table_lock)`` with the
             pre-patch ``follow_page(mm, vaddr, 0)``, which calls
             mark_page_accessed on every page it returns.

    Fast path (no kernel counterpart, same result): addresses whose pgd,
    pud or pmd entry is none or bad are stepped over a whole entry's span at
    a time.  For each of them follow_page(mm, vaddr, 0) ends at its
    no_page_table label and, without FOLL_ANON, returns NULL having taken no
    lock and changed nothing, so the page counts nothing; the C's loop only
    costs time there (about 1 s per 16 GiB for the model).  The post-patch
    loop's cond_resched() is a schedule point, so that loop skips only when
    no scheduler explores (``k.sched is None``); the pre-patch loop holds
    page_table_lock and has no schedule point, so it always skips.

    Returns ``{"pages", "anon", "mapped", "mapcount_max", "node"}`` with
    ``node`` a list indexed by node id.  The caller holds mmap_sem for read
    and a task must be running (the locks need an owner; without one this
    raises InputError).  Differs: None
    stands for the kmalloc failure, which the model never has, and is also
    returned for a vma without an mm (the kernel's caller, show_numa_map,
    never passes one).
    """
    mm = vma.vm_mm
    if mm is None:
        return None
    k = mm.k
    if k.current is None:
        raise InputError("get_numa_maps: no running task to own the locks (use k.running)")
    md = _numa_maps(node=[0] * k.nodes)  # for_each_node(i) md->node[i] = 0
    if k.semantics.numa_maps_untouched:
        plain = k.sched is None  # cond_resched() is a schedule point only when exploring
        vaddr = vma.vm_start
        while vaddr < vma.vm_end:
            if plain:
                vaddr = missing_tables_end(mm, vaddr, vma.vm_end)
                if vaddr == vma.vm_end:
                    break
            _count_page(md, follow_page(mm, vaddr, 0))
            cond_resched(k)
            vaddr += PAGE_SIZE
    else:
        spin_lock(mm.page_table_lock)
        try:
            vaddr = vma.vm_start
            while vaddr < vma.vm_end:
                # No schedule point in this loop: the skip is exact even when exploring.
                vaddr = missing_tables_end(mm, vaddr, vma.vm_end)
                if vaddr == vma.vm_end:
                    break
                _count_page(md, follow_page_prepatch(mm, vaddr, 0))
                vaddr += PAGE_SIZE
        finally:
            spin_unlock(mm.page_table_lock)
    return {
        "pages": md.pages,
        "anon": md.anon,
        "mapped": md.mapped,
        "mapcount_max": md.mapcount_max,
        "node": md.node,
    }


def _count_page(md: _numa_maps, page: object) -> None:
    if page is None:
        return
    mapcount_access(page, 0)
    count = page_mapcount(page)
    if count:
        md.mapped += 1
    if count > md.mapcount_max:
        md.mapcount_max = count
    md.pages += 1
    if PageAnon(page):
        md.anon += 1
    md.node[page.node] += 1


def show_numa_map(tsk: task_struct, vma: vm_area_struct) -> str:
    """fs/proc/task_mmu.c show_numa_map(): one line per vma,
    ``"%08lx"`` vm_start, the policy, ``" MaxRef=%lu Pages=%lu Mapped=%lu"``,
    ``" Anon=%lu"`` only when anon > 0, ``" N%d=%lu"`` for each online node
    with a nonzero count, newline.  A line is printed even for Pages=0; the
    gate vma (``vm_mm == NULL``) prints nothing.

    Differs: mempolicies are not modelled, so ``get_vma_policy`` always gives
    MPOL_DEFAULT and the policy is always `` default`` (the kernel also prints
    `` prefer=%d``, `` bind={nid/zone,...}`` and `` interleave={n,...}``).
    Runs as ``tsk``; the caller (numa_maps, like m_start) holds mmap_sem.
    """
    if vma.vm_mm is None:
        return ""
    k = vma.vm_mm.k
    with k.running(tsk):
        md = get_numa_maps(vma)
    if md is None:
        return ""
    line = "%08x" % vma.vm_start  # noqa: UP031 - the kernel's format
    line += " default"
    line += " MaxRef=%d Pages=%d Mapped=%d" % (  # noqa: UP031
        md["mapcount_max"],
        md["pages"],
        md["mapped"],
    )
    if md["anon"]:
        line += " Anon=%d" % md["anon"]  # noqa: UP031
    for n, count in enumerate(md["node"]):  # for_each_online_node
        if count:
            line += " N%d=%d" % (n, count)  # noqa: UP031
    return line + "\n"


def numa_maps(tsk: task_struct) -> str:
    """/proc/PID/numa_maps: ``proc_pid_numa_maps_op``, i.e. show_numa_map
    for every vma under mmap_sem (m_start's ``down_read``) with ``tsk``
    running, then for the gate vma (which prints nothing)."""
    return _seq_read(tsk, show_numa_map)


# --- a page-table dump ----------------------------------------------------------------
def _pte_flags(pte: int) -> str:
    words = ["rw" if pte & _PAGE_RW else "ro"]
    if pte & _PAGE_DIRTY:
        words.append("dirty")
    if pte & _PAGE_ACCESSED:
        words.append("young")
    if pte & _PAGE_NX:
        words.append("nx")
    return " ".join(words)


def show_pagetables(tsk: task_struct) -> str:
    """A readable tree of a process's page tables (no kernel counterpart in
    2.6.15: a debugger's view like ``inspect.walk_tables``; it takes no lock
    and changes nothing).

    Format, one line per table or pte, indented by level::

        pgd pfn 2
          pud pfn 4 covers 2a8000000000-2affffffffff
            pmd pfn 5 covers 2aaa80000000-2aaabfffffff
              pte pfn 6 covers 2aaaaaa00000-2aaaaabfffff
                2aaaaaaab000 -> pfn 7 [rw dirty young nx] page: count=1, mapcount=1, anon, node 0
                2aaaaaaac000 -> pfn 0 [ro young nx] ZERO_PAGE shared page: count=3, ...
        summary: pud=1 pmd=1 pte=1 present=2 zero=1 prot_none=0 shared=1

    A pte is *present* when ``pte_present`` (PROT_NONE ptes included, marked
    ``PROT_NONE``); ``shared`` means the page's mapcount exceeds 1 (more than
    one pte maps it, in this mm or another).  Non-empty ptes that are not
    present (swap or nonlinear-file entries, never built by the model) are
    shown raw.  A huge pmd is shown as one line.  (In the example the
    ZERO_PAGE line is cut short; its mapcount 2 comes from another process's
    zero-page pte.)
    """
    mm = tsk.mm
    if mm is None:
        return f"{tsk!r}: no mm\n"
    k: Kernel = mm.k
    mem_map = k.alloc.mem_map
    out = [f"pgd pfn {mm.pgd.pfn}"]
    n_pud = n_pmd = n_pte = present = zero = prot_none = shared = 0

    def covers(base: int, shift: int) -> str:
        return f"covers {base:012x}-{base + (1 << shift) - 1:012x}"

    for i, e in enumerate(mm.pgd.data):
        if not e:
            continue
        base1 = i << PGDIR_SHIFT
        pud_pfn = (e & PTE_MASK) >> PAGE_SHIFT
        n_pud += 1
        out.append(f"  pud pfn {pud_pfn} {covers(base1, 39)}")
        for j, e2 in enumerate(mem_map[pud_pfn].data):
            if not e2:
                continue
            base2 = base1 | (j << PUD_SHIFT)
            pmd_pfn = (e2 & PTE_MASK) >> PAGE_SHIFT
            n_pmd += 1
            out.append(f"    pmd pfn {pmd_pfn} {covers(base2, 30)}")
            for m, e3 in enumerate(mem_map[pmd_pfn].data):
                if not e3:
                    continue
                base3 = base2 | (m << PMD_SHIFT)
                pte_pfn_ = (e3 & PTE_MASK) >> PAGE_SHIFT
                if e3 & _PAGE_PSE:
                    out.append(f"      huge pmd {base3:012x} -> pfn {pte_pfn_} [{_pte_flags(e3)}]")
                    continue
                n_pte += 1
                out.append(f"      pte pfn {pte_pfn_} {covers(base3, 21)}")
                for n, pte in enumerate(mem_map[pte_pfn_].data):
                    if not pte:
                        continue
                    addr = base3 | (n << PAGE_SHIFT)
                    if not pte & (_PAGE_PRESENT | _PAGE_PROTNONE):
                        out.append(f"        {addr:012x} not present: {pte:#x}")
                        continue
                    present += 1
                    out.append("        " + _pte_line(k, addr, pte, mem_map))
                    pfn = pte_pfn(pte)
                    if k.alloc.pfn_valid(pfn):
                        page = mem_map[pfn]
                        zero += page is k.zero_page
                        shared += page_mapcount(page) > 1
                    prot_none += not pte & _PAGE_PRESENT
    out.append(
        f"summary: pud={n_pud} pmd={n_pmd} pte={n_pte} present={present} "
        f"zero={zero} prot_none={prot_none} shared={shared}"
    )
    return "\n".join(out) + "\n"


def _pte_line(k: Kernel, addr: int, pte: int, mem_map: list) -> str:
    pfn = pte_pfn(pte)
    prefix = f"{addr:012x} "
    if not pte & _PAGE_PRESENT:
        prefix += "PROT_NONE "
    prefix += f"-> pfn {pfn} [{_pte_flags(pte)}]"
    if not k.alloc.pfn_valid(pfn):
        return prefix + " (no struct page)"
    page = mem_map[pfn]
    marks = ""
    if page is k.zero_page:
        marks += " ZERO_PAGE"
    if page_mapcount(page) > 1:
        marks += " shared"
    kind = "anon" if PageAnon(page) else "file"
    return (
        f"{prefix}{marks} page: count={page_count(page)}, "
        f"mapcount={page_mapcount(page)}, {kind}, node {page.node}"
    )


__all__ = [
    "get_numa_maps",
    "mem_size_stats",
    "numa_maps",
    "show_map",
    "show_map_internal",
    "show_numa_map",
    "show_pagetables",
    "show_smap",
    "show_smap_vma",
]
