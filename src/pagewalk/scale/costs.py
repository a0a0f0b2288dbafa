"""The one cost model of ``pagewalk scale``: every constant, where it comes from.

All costs are charged in virtual time by ``sched/virtual.py``; the same
constants serve every CPU count, profile and workload.  They are stored in
picoseconds (ints) so that runs are exact.

=================  =========  =====================================================
constant           value      source
=================  =========  =====================================================
write_fault        1,760 ns   **host**: ``pagewalk bench`` on the development VM
                              (Linux 6.18, AMD EPYC, 2 vCPUs, idle), 1 GiB,
                              median of 5 (docs/performance.md): a whole
                              1-byte-store anonymous write fault.  (A --quick
                              run beside other CPU-heavy work gave 5,429 ns:
                              measure on an idle machine.)  Not charged
                              itself: ``fault`` is what is left of it once the
                              itemised local costs below are taken out, so one
                              CPU's fault costs exactly this (plus the batched
                              zone and LRU work).
clear_page         95 ns      **host**: ``benchmarks/scale_host.py``, memset of
                              4 KiB out of cache.
copy_page          397 ns     **host**: the same, memmove of 4 KiB.
user_store         27 ns      **host**: the bench's loop per page (the store and
                              the strided loop), charged as user time.
atomic             10 ns      **assumed**: a lock-prefixed op on a line the CPU
                              owns, ~25 cycles at 2.6 GHz; an uncontended
                              spin_lock+spin_unlock is one atomic's worth
                              (Torvalds, reference section 4).
store, set_pte     1 ns       **assumed**: one store to an owned line.
pcp_page           20 ns      **assumed**: a page off the per-CPU hot list.
pcp_batch          31         **kernel**: zone_batchsize() of 2.6.15 for 4 KiB
                              pages (256 KiB / 4 = 16, clamped to 2^5 - 1).
buddy_page         50 ns      **assumed**: __rmqueue per page under zone->lock.
pagevec_size       14         **kernel**: PAGEVEC_SIZE in 2.6.15.
pagevec_page       5 ns       **assumed**: pagevec_add.
lru_page           30 ns      **assumed**: add_page_to_active_list per page
                              under zone->lru_lock.
wakeup             2,000 ns   **assumed**: try_to_wake_up and a context switch
                              for an rwsem waiter (no pft run sleeps).
transfer           133 ns     **era, fitted within its range**: one cache line
                              moving from another CPU's cache.  Reference
                              section 4: a line from memory takes 200-400
                              cycles (van Riel 2005); an atomic on a line not
                              in cache "the full amount of cycles necessary
                              to access memory" (Lameter 2005).  200 cycles,
                              the low end of that range, at the Altix's
                              1.5 GHz Itanium 2: the value in the range that
                              puts the global lock's peak (the
                              ``seed^-ptl-pushdown`` profile, the kernels
                              Lameter measured) at 4 CPUs and about 3x.
spinner            15 ns      **free**: how long one more spinning CPU holds a
                              contended lock's line at each release (its
                              re-read and failed test-and-set, served at the
                              line's home).  Chosen once, for the global
                              lock's slope past 16 CPUs.
=================  =========  =====================================================

Fitted parameters: two, both on the global-lock curve: ``spinner`` (free)
and ``transfer`` (bounded by its published range: across 133-267 ns the
split knee moves between 7x and 3.5x, see docs/scalability.md).  The split
ptlock curve is not fitted: its knee is a prediction.  The assumed
constants are small beside a 1.76 us fault; the knee and the collapse come
from the two line costs and the code's own lock and counter traffic.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..sched.virtual import PS

#: The host's measured write fault (ns), see the table above.
HOST_WRITE_FAULT_NS = 1760


@dataclass(frozen=True)
class CostModel:
    """Costs in picoseconds."""

    fault: int
    clear_page: int
    copy_page: int
    user_store: int
    atomic: int
    store: int
    set_pte: int
    pcp_page: int
    pcp_batch: int
    buddy_page: int
    pagevec_size: int
    pagevec_page: int
    lru_page: int
    wakeup: int
    transfer: int
    spinner: int

    def describe(self) -> dict[str, float | int]:
        """The constants in ns (counts as they are), for reports."""
        out: dict[str, float | int] = {}
        for name, value in asdict(self).items():
            out[name if name.endswith(("batch", "size")) else name + "_ns"] = (
                value if name.endswith(("batch", "size")) else value / PS
            )
        return out


def default_costs() -> CostModel:
    """The table above.  ``fault`` is the host's write fault minus the
    itemised local work of one uncontended anonymous write fault: the four
    atomics on owned lines (mmap_sem down and up, the pte lock and its
    release), the rss counter, clear_page, set_pte and the per-CPU list and
    pagevec steps."""
    ns = PS
    clear_page, atomic, store, set_pte = 95 * ns, 10 * ns, 1 * ns, 1 * ns
    pcp_page, pagevec_page = 20 * ns, 5 * ns
    itemised = clear_page + 4 * atomic + store + set_pte + pcp_page + pagevec_page
    return CostModel(
        fault=HOST_WRITE_FAULT_NS * ns - itemised,
        clear_page=clear_page,
        copy_page=397 * ns,
        user_store=27 * ns,
        atomic=atomic,
        store=store,
        set_pte=set_pte,
        pcp_page=pcp_page,
        pcp_batch=31,
        buddy_page=50 * ns,
        pagevec_size=14,
        pagevec_page=pagevec_page,
        lru_page=30 * ns,
        wakeup=2000 * ns,
        transfer=133 * ns,
        spinner=15 * ns,
    )
