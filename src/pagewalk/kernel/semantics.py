"""Semantics profiles: the kernel versions pagewalk can behave as.

A profile is a frozen set of behaviour switches.  Kernel code never asks
"which version is this?"; it asks the one switch that names the behaviour,
and each switch says which commit introduced it.  Adding a version means
adding a profile here, not editing ``if version`` checks elsewhere.

Profiles
--------
The profiles are the seed tree (deceb6cd17e6, v2.6.15-rc1) with switches
turned on, and are named for what they are: ``"seed"`` is the seed,
``"seed^"`` its parent, ``"seed+X"`` the seed plus the switches of the steps
up to X.  None of them is a released kernel for every modelled operation;
the old release-like names are aliases (:data:`ALIASES`).  ``"6.18"`` is the
newest step of the GUP/COW family (every switch on, with the later GUP/COW
switches that have no step of their own), named for the release whose GUP/COW
rules it carries, plus the modern switches (:data:`_MODERN`): the other
changes the host oracle finds between the seed and 6.18.  ``pagewalk
profiles`` lists them with their switches and commits; docs/profiles.md
explains each.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..errors import InputError


@dataclass(frozen=True)
class Semantics:
    """Behaviour switches.  Each field documents the commit it stands for;
    ``True`` means the behaviour that commit introduced."""

    name: str
    #: Since deceb6cd17e6 "mm: follow_page with inner ptlock" (v2.6.15-rc1):
    #: follow_page(mm, address, flags) takes FOLL_WRITE/TOUCH/GET/ANON and the
    #: pte lock itself, touching pages only for FOLL_TOUCH and returning the
    #: ZERO_PAGE for FOLL_ANON; get_user_pages takes no page_table_lock and
    #: gets its reference through FOLL_GET.  False: the tree just before it
    #: (``prepatch.py``): follow_page(mm, address, write) under the caller's
    #: page_table_lock, held by get_user_pages over its inner loop.
    follow_page_inner_ptlock: bool = True
    #: Since deceb6cd17e6: no zero-page shortcut (FOLL_ANON) for VM_LOCKED
    #: vmas, so make_pages_present really maps read-only anonymous memory.
    #: False: untouched_anonymous_page(), which ignored VM_LOCKED.
    foll_anon_respects_vm_locked: bool = True
    #: Since deceb6cd17e6: get_futex_key's fast path (nonlinear vmas) calls
    #: follow_page(FOLL_TOUCH|FOLL_GET) and put_page, with no page_table_lock.
    futex_fast_path_inner_ptlock: bool = True
    #: Since deceb6cd17e6: get_numa_maps walks with follow_page(flags 0) -- no
    #: page_table_lock, no accessed marking -- and cond_resched per page.
    numa_maps_untouched: bool = True
    #: Since c74df32c724a "mm: ptd_alloc take ptlock" and 8f4e2101fd7d "mm:
    #: page fault handler locking" (v2.6.15-rc1; Hugh Dickins' push-down of
    #: page_table_lock): __handle_mm_fault walks and allocates the page
    #: tables without page_table_lock, handle_pte_fault peeks at the pte
    #: unlocked, and each handler takes the pte lock only around its pte
    #: update.  False: the fault path before them (v2.6.14 and earlier, the
    #: kernels of Lameter's "unpatched" pft runs): __handle_mm_fault takes
    #: page_table_lock at its head and holds it over the walk (an allocator
    #: drops it around the allocation), handle_pte_fault and the handlers
    #: are entered with it held, and do_anonymous_page's write and do_no_page
    #: drop it to allocate (or call ->nopage) and take it again for the pte.
    fault_ptl_pushed_down: bool = True
    #: Since 4c21e2f2441d "mm: split page table lock" (v2.6.15-rc1): one lock
    #: per pte page when the scenario asks for it (CONFIG_SPLIT_PTLOCK_CPUS).
    split_ptlock_available: bool = True
    #: Since Nick Piggin's "mm: madvise avoid exclusive mmap_sem" (2007, first in
    #: v2.6.22): MADV_DONTNEED and MADV_WILLNEED take mmap_sem for read, so
    #: they can run while get_user_pages holds it -- the window Dirty COW needs.
    madvise_dontneed_mmap_sem_read: bool = False
    #: Since 19be0eaffa3a "mm: remove gup_flags FOLL_WRITE games from
    #: __get_user_pages()" (v4.9-rc2, stable v4.8.3; CVE-2016-5195): after
    #: VM_FAULT_WRITE on a vma without VM_WRITE, get_user_pages sets FOLL_COW
    #: and keeps FOLL_WRITE; follow_page accepts a read-only pte for a write
    #: only if FOLL_FORCE|FOLL_COW and the pte is dirty (can_follow_write_pte).
    gup_foll_cow: bool = False
    #: Since hugetlbfs lost its ->readpage (hugetlbfs_readpage, which only
    #: unlocked the page and returned -EINVAL; still there in v2.6.24, gone by
    #: v2.6.38; the commit is UNVERIFIED): force_page_cache_readahead refuses
    #: hugetlbfs.  False (every profile): MADV_WILLNEED on a hugetlbfs mapping
    #: adds 4 KiB pages to its page cache at 4 KiB indices, and a later
    #: hugetlb_prefault maps one of them as a huge page.
    hugetlbfs_without_readpage: bool = False
    #: Since Dave Hansen's smaps fix (lkml 2005-12-12, "2.6.15-rc4 panic in
    #: __nr_to_section()", Message-Id <1134422889.27961.22.camel@localhost>;
    #: the mainline commit and release are UNVERIFIED, the test is there by
    #: v2.6.18): show_smap walks no hugetlb vma.  False (every profile): the
    #: walk's pmd_none_or_clear_bad clears each huge pmd (x86-64's pmd_bad
    #: is true for it), leaking the page; the next access is SIGBUS.
    smaps_skips_hugetlb: bool = False
    #: Since cda540ace6a1 "mm: get_user_pages(write,force) refuse to COW in
    #: shared areas" (v3.15-rc1): a forced write into a vma without VM_WRITE
    #: that is not a COW mapping (MAP_SHARED of a writable file, mapped
    #: read-only) is -EFAULT.  False: do_wp_page COWs the page-cache page
    #: into an anonymous one there (the quirk of docs/callers.md).  Without
    #: FOLL_COW (``foll_force_anon_exclusive``) the old way could never
    #: follow the copy: get_user_pages would retry forever.
    gup_refuses_cow_in_shared: bool = False
    #: Since eddb1c228f79 "mm/gup: introduce pin_user_pages*() and FOLL_PIN"
    #: (v5.6) and fc1d8e7cca2d "mm/gup: track FOLL_PIN pages" (v5.7):
    #: pin_user_pages takes FOLL_PIN, which adds GUP_PIN_COUNTING_BIAS (1024)
    #: to the page count (try_grab_page), unpin_user_page takes it off, and
    #: page_maybe_dma_pinned() reads it.  False: a driver pinned with
    #: get_user_pages (FOLL_GET: +1) and released with put_page.
    foll_pin: bool = False
    #: Since 17839856fd58 "gup: document and work around 'COW can break either
    #: way' issue" (v5.8; reverted by a308c71bf1e6 "mm/gup: Remove enfornced
    #: COW mechanism", v5.9): a GUP with FOLL_GET or FOLL_PIN on a COW mapping
    #: (should_force_cow_break) adds FOLL_WRITE, so it breaks COW even for a
    #: read; can_follow_write_pte accepts FOLL_COW on a dirty pte without
    #: FOLL_FORCE.  CVE-2020-29374's first fix.
    gup_cow_break_on_read: bool = False
    #: Since 09854ba94c6a "mm: do_wp_page() simplification" (v5.9): do_wp_page
    #: reuses an anonymous page only when page_count == 1 (and it is mapped
    #: once), so any GUP reference makes a write fault copy.  False: reuse iff
    #: mapped once (can_share_swap_page), the count unread.
    wp_reuse_page_count: bool = False
    #: Since 008cfe4418b3 "mm: Introduce mm_struct.has_pinned" + 70e806e4e645
    #: "mm: Do early cow for pinned pages during fork() for ptes" (v5.9):
    #: fork copies an anonymous page that page_maybe_dma_pinned() says may be
    #: pinned, for the child, and leaves the parent's pte writable.
    fork_copy_pinned: bool = False
    #: Since 6c287605fd56 "mm: remember exclusively mapped anonymous pages with
    #: PG_anon_exclusive" and its series (v5.18): a new anonymous page is
    #: PageAnonExclusive; fork clears it when it shares the page
    #: (page_try_dup_anon_rmap, which fails, so fork copies, for a pinned
    #: exclusive page); do_wp_page reuses an exclusive page at once; a R/O
    #: FOLL_PIN of a non-exclusive anon page takes an unshare fault first
    #: (gup_must_unshare, FAULT_FLAG_UNSHARE).
    page_anon_exclusive: bool = False
    #: Since 5535be309971 "mm/gup: fix FOLL_FORCE COW security issue and remove
    #: FOLL_COW" (v6.0-rc1, stable v5.19.6; CVE-2022-2590): no FOLL_COW; a
    #: FOLL_FORCE write may use a read-only pte only in a private, VM_MAYWRITE,
    #: !VM_WRITE mapping and only on a PageAnonExclusive anonymous page.
    foll_force_anon_exclusive: bool = False
    #: Since 84209e87c696 "mm/gup: reliable R/O long-term pinning in COW
    #: mappings" with 8d6a0ac09a16 "mm: extend FAULT_FLAG_UNSHARE support to
    #: anything in a COW mapping" (v6.2, David Hildenbrand): a R/O
    #: FOLL_LONGTERM pin of a page-cache page or the zero page in a private
    #: (COW) mapping takes an unshare fault first (gup_must_unshare), which
    #: maps an exclusive anonymous copy read-only, so a later write through
    #: the page table is seen by the pin.
    longterm_pin_unshares_non_anon: bool = False
    # -- The modern profile: behaviour changes outside the GUP/COW family, each
    # -- found by the host oracle (docs/oracle.md) and on in "6.18" only.
    #: Since 54cb8821de07 "mm: merge populate and nopage into fault (fixes
    #: nonlinear)" (v2.6.23): MAP_POPULATE faults every new mapping in with
    #: make_pages_present (get_user_pages); errors are ignored.  False: only
    #: shared file mappings are pre-mapped, by sys_remap_file_pages (install_page,
    #: no fault).
    populate_via_gup: bool = False
    #: Since 8e4b9a607189 "mm: FOLL_DUMP replace FOLL_ANON" (v2.6.32): no
    #: FOLL_ANON zero-page shortcut in get_user_pages (a read of untouched
    #: anonymous memory faults the zero page in); only the core dump passes
    #: FOLL_DUMP, which makes follow_page fail where there is no page.
    gup_foll_dump: bool = False
    #: Since a13ea5b75964 "mm: reinstate ZERO_PAGE" (v2.6.32): the zero page is
    #: a special pfn to vm_normal_page(): mapping it takes no reference, no
    #: mapcount and no rss; zap, fork and do_wp_page skip it.
    zero_page_special: bool = False
    #: Since 5ecfda041e4b "mlock: avoid dirtying pages and triggering
    #: writeback" (v2.6.38): make_pages_present write-faults only private
    #: writable mappings (shared ones are read-faulted); with fdf4c587a7
    #: "mlock: operate on any regions with protection != PROT_NONE" (same
    #: release) it passes FOLL_FORCE for any mapping that is not PROT_NONE.
    populate_reads_shared: bool = False
    #: Since 9978ad583e10 "mlock: make mlock error return Posixly Correct"
    #: (v2.6.28, the unevictable-mlock series): mlock_fixup reports a failure
    #: to fault in as POSIX asks, EFAULT as ENOMEM and ENOMEM as EAGAIN, and
    #: make_pages_present's partial fault-in is -EFAULT, not -1.  mlock_fixup's
    #: ``out:`` no longer turns ENOMEM into EAGAIN (gone in the same series;
    #: which commit of it is UNVERIFIED).
    mlock_posix_errno: bool = False
    #: Since fed067da46ad "mlock: only hold mmap_sem in shared mode when
    #: faulting in pages" (v2.6.38-rc1): mlock first sets VM_LOCKED on every
    #: vma of the range (mlock_fixup faults nothing in), then, only if that
    #: succeeded -- no hole in the range -- faults the range in with mmap_sem
    #: held for read (do_mlock_pages; __mm_populate since v3.9).  Before it,
    #: each vma was faulted in as its flags were set, so an mlock that runs
    #: into a hole had already faulted in the vmas before it.
    mlock_populates_after_fixup: bool = False
    #: Since 1998cc048901 "mm: make madvise(MADV_WILLNEED) support swap file
    #: prefetch" (v3.9-rc1): MADV_WILLNEED on anonymous memory is accepted
    #: (swap-in readahead; no swap here, so nothing happens) instead of EBADF.
    willneed_anon: bool = False
    #: Since 8c6e50b0290c "mm: introduce vm_ops->map_pages()" (v3.15-rc1;
    #: tmpfs through d7c1755179b8, version UNVERIFIED): a read fault on a file
    #: or shmem page first maps the uptodate cached pages of its 16-page window
    #: (do_fault_around -> filemap_map_pages).
    fault_around: bool = False
    #: Since the removal of filemap_nopage()'s "external ptracer" exception
    #: (still in v2.6.23's filemap_fault(), gone from the -mm tree that Wu
    #: Fengguang's April 2009 readahead series applied to; the commit is
    #: UNVERIFIED): a get_user_pages fault wholly past EOF is SIGBUS for every
    #: caller.
    no_ptracer_past_eof: bool = False
    #: Since 64fe24a3e05e "mm/mprotect: try avoiding write faults for exclusive
    #: anonymous pages when changing protection" (June 2022, v6.0 UNVERIFIED;
    #: dirty ptes, and clean ones since a later change of Nadav Amit's,
    #: UNVERIFIED): mprotect giving write back maps
    #: PageAnonExclusive pages of a private mapping writable at once.
    mprotect_exclusive_writable: bool = False
    #: Since "mm/mprotect: allow unfaulted VMAs to be unaccounted on
    #: mprotect()" (Lorenzo Stoakes, v6.7; its mainline commit is UNVERIFIED):
    #: mprotect to a protection without PROT_WRITE clears VM_ACCOUNT on an
    #: anonymous vma that has no anon_vma yet (nothing was ever faulted in
    #: but the zero page), so it no longer merges with an accounted
    #: neighbour -- nor stays apart from an unaccounted one.
    mprotect_unaccounts_unfaulted: bool = False
    #: Since 36f881883c57 "mm: fix mprotect() behaviour on VM_LOCKED VMAs"
    #: (v4.4; the version is UNVERIFIED): mprotect that makes a private
    #: VM_LOCKED range writable write-faults it in at once
    #: (populate_vma_page_range), breaking COW, so that the pages a later
    #: write would have replaced are locked ones already.
    mprotect_cows_locked: bool = False
    #: Since 965f55dea0e3 "mmap: avoid merging cloned VMAs" (v3.0), in the form
    #: 6.18 has it (mm/vma.c is_mergeable_anon_vma(), vma_had_uncowed_parents()):
    #: a range without an anon_vma does not merge into a neighbour whose
    #: anon_vma came by fork, nor a forked range into a neighbour without one
    #: (anon_vma_prepare() reuses no such neighbour's either), to keep the
    #: anon_vma trees of forked processes small.
    merge_skips_fork_children: bool = False
    #: Since show_map() stopped printing vm_pgoff for vmas without a file (the
    #: commit is UNVERIFIED: 2.6.2x's show_map() prints it for every vma, and
    #: v3.x's show_map_vma() only for a file mapping): /proc/PID/maps shows
    #: offset 0 for anonymous memory.  False: a private anonymous vma shows
    #: its start address (do_mmap_pgoff's pgoff = addr >> PAGE_SHIFT).
    maps_anon_offset_zero: bool = False

    def describe(self) -> dict[str, bool]:
        """The switches as a name -> value mapping (for reports and docs)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "name"}


#: The switches of each step of the GUP/COW family, in order; a "seed+X"
#: profile has every step up to X.  (step, switches on, what it is)
_FAMILY: tuple[tuple[str, dict[str, bool], str], ...] = (
    (
        "gup-cow-break",
        {"gup_refuses_cow_in_shared": True, "foll_pin": True, "gup_cow_break_on_read": True},
        "no forced COW in shared areas (cda540ace6a1, v3.15), FOLL_PIN (v5.6/5.7) and GUP "
        "breaking COW on reads (17839856fd58, v5.8)",
    ),
    (
        "wp-page-count",
        {"gup_cow_break_on_read": False, "wp_reuse_page_count": True},
        "COW reuse only at page_count 1, forced COW gone (09854ba94c6a + a308c71bf1e6, v5.9)",
    ),
    (
        "fork-copy-pinned",
        {"fork_copy_pinned": True},
        "fork copies maybe-pinned anonymous pages (008cfe4418b3 + 70e806e4e645, v5.9)",
    ),
    (
        "anon-exclusive",
        {"page_anon_exclusive": True},
        "PageAnonExclusive, unshare on R/O pins (6c287605fd56 and series, v5.18)",
    ),
    (
        "no-foll-cow",
        {"foll_force_anon_exclusive": True},
        "FOLL_COW removed: a forced write needs an exclusive anon page (5535be309971, v6.0)",
    ),
)

_SEED_PARENT = dict(
    follow_page_inner_ptlock=False,
    foll_anon_respects_vm_locked=False,
    futex_fast_path_inner_ptlock=False,
    numa_maps_untouched=False,
    split_ptlock_available=False,
)
_DIRTY_COW_FIX = {"madvise_dontneed_mmap_sem_read": True, "gup_foll_cow": True}
#: GUP/COW switches after the family's last step that only "6.18" has: no
#: "seed+X" profile of their own, so "6.18" against "seed+no-foll-cow" shows
#: what they change.
_AFTER_V6_0 = {"longterm_pin_unshares_non_anon": True}


def _family() -> dict[str, Semantics]:
    out: dict[str, Semantics] = {}
    switches = dict(_DIRTY_COW_FIX)
    for step, on, _what in _FAMILY:
        switches.update(on)
        out["seed+" + step] = Semantics(name="seed+" + step, **switches)
    out["6.18"] = Semantics(name="6.18", **switches, **_AFTER_V6_0, **_MODERN)
    return out


#: The modern profile's switches outside the GUP/COW family (``6.18`` only:
#: the seed+ steps are the seed plus that family, not releases).
_MODERN = {
    "populate_via_gup": True,
    "gup_foll_dump": True,
    "zero_page_special": True,
    "populate_reads_shared": True,
    "mlock_posix_errno": True,
    "mlock_populates_after_fixup": True,
    "willneed_anon": True,
    "fault_around": True,
    "no_ptracer_past_eof": True,
    "mprotect_exclusive_writable": True,
    "mprotect_unaccounts_unfaulted": True,
    "mprotect_cows_locked": True,
    "merge_skips_fork_children": True,
    "maps_anon_offset_zero": True,
}


PROFILES: dict[str, Semantics] = {
    # The parent of deceb6cd: the 2.6.15 merge window (after v2.6.14) with
    # Hugh Dickins' series up to 20/21 ("mm: kill check_user_page_readable"),
    # before the split ptlock.
    "seed^": Semantics(name="seed^", **_SEED_PARENT),
    # The seed's parent with the fault path from before Hugh Dickins' push-down
    # of page_table_lock (c74df32c724a, 8f4e2101fd7d): the lock is held over
    # the whole fault, as in the kernels of Lameter's "unpatched" pft runs.
    "seed^-ptl-pushdown": Semantics(
        name="seed^-ptl-pushdown", **_SEED_PARENT, fault_ptl_pushed_down=False
    ),
    "seed": Semantics(name="seed"),
    # The seed plus DONTNEED under mmap_sem read: the first rule under which
    # the Dirty COW race is reachable through madvise (v2.6.22).
    "seed+madvise-read": Semantics(name="seed+madvise-read", madvise_dontneed_mmap_sem_read=True),
    # ... plus the Dirty COW fix (v4.9-rc2, stable v4.8.3), nothing else.
    "seed+foll-cow": Semantics(name="seed+foll-cow", **_DIRTY_COW_FIX),
    **_family(),
}

#: Old names -> (profile, why it was renamed).  Scenario files and
#: --semantics keep accepting them; ``pagewalk profiles`` shows the note.
ALIASES: dict[str, tuple[str, str]] = {
    "2.6.14": (
        "seed^",
        "the seed's parent, committed after v2.6.14 (not v2.6.14: it already has "
        "the refcounted, rmap'd ZERO_PAGE and get_user_pages' VM_RESERVED refusal)",
    ),
    "2.6.15": (
        "seed",
        "the seed commit deceb6cd17e6 (v2.6.15-rc1: get_user_pages still refuses "
        "hugetlb's VM_RESERVED, which v2.6.15 no longer does)",
    ),
    "2.6.22": ("seed+madvise-read", "the seed plus v2.6.22's madvise under mmap_sem read"),
    "4.8.3": ("seed+foll-cow", "the seed plus v2.6.22's madvise rule and the Dirty COW fix"),
}

#: The commit behind each switch: (commit, title and version).
SWITCH_COMMITS: dict[str, tuple[str, str]] = {
    "follow_page_inner_ptlock": ("deceb6cd17e6", "mm: follow_page with inner ptlock (v2.6.15-rc1)"),
    "foll_anon_respects_vm_locked": ("deceb6cd17e6", "no FOLL_ANON for VM_LOCKED (v2.6.15-rc1)"),
    "futex_fast_path_inner_ptlock": ("deceb6cd17e6", "futex fast path, FOLL_GET (v2.6.15-rc1)"),
    "numa_maps_untouched": ("deceb6cd17e6", "get_numa_maps, follow_page(flags 0) (v2.6.15-rc1)"),
    "split_ptlock_available": ("4c21e2f2441d", "mm: split page table lock (v2.6.15-rc1)"),
    "fault_ptl_pushed_down": (
        "c74df32c724a + 8f4e2101fd7d",
        "mm: ptd_alloc take ptlock; mm: page fault handler locking (v2.6.15-rc1)",
    ),
    "madvise_dontneed_mmap_sem_read": (
        "(hash not in the references)",
        "mm: madvise avoid exclusive mmap_sem, Nick Piggin 2007 (v2.6.22)",
    ),
    "gup_foll_cow": (
        "19be0eaffa3a",
        "mm: remove gup_flags FOLL_WRITE games from __get_user_pages() (v4.9-rc2, stable v4.8.3)",
    ),
    "hugetlbfs_without_readpage": ("UNVERIFIED", "hugetlbfs loses ->readpage (v2.6.24..v2.6.38)"),
    "smaps_skips_hugetlb": ("UNVERIFIED", "show_smap skips hugetlb vmas (after v2.6.15-rc4)"),
    "gup_refuses_cow_in_shared": (
        "cda540ace6a1",
        "mm: get_user_pages(write,force) refuse to COW in shared areas (v3.15-rc1)",
    ),
    "foll_pin": (
        "eddb1c228f79 + fc1d8e7cca2d",
        "mm/gup: introduce pin_user_pages*() and FOLL_PIN (v5.6); track FOLL_PIN pages (v5.7)",
    ),
    "gup_cow_break_on_read": (
        "17839856fd58",
        "gup: document and work around 'COW can break either way' issue (v5.8)",
    ),
    "wp_reuse_page_count": (
        "09854ba94c6a + a308c71bf1e6",
        "mm: do_wp_page() simplification; mm/gup: Remove enfornced COW mechanism (v5.9)",
    ),
    "fork_copy_pinned": (
        "008cfe4418b3 + 70e806e4e645",
        "mm: Introduce mm_struct.has_pinned; mm: Do early cow for pinned pages during fork() "
        "for ptes (v5.9)",
    ),
    "page_anon_exclusive": (
        "6c287605fd56",
        "mm: remember exclusively mapped anonymous pages with PG_anon_exclusive, "
        "and its series (v5.18)",
    ),
    "foll_force_anon_exclusive": (
        "5535be309971",
        "mm/gup: fix FOLL_FORCE COW security issue and remove FOLL_COW (v6.0-rc1, v5.19.6)",
    ),
    "longterm_pin_unshares_non_anon": (
        "84209e87c696 + 8d6a0ac09a16",
        "mm/gup: reliable R/O long-term pinning in COW mappings; mm: extend "
        "FAULT_FLAG_UNSHARE support to anything in a COW mapping (v6.2)",
    ),
    "populate_via_gup": (
        "54cb8821de07",
        "mm: merge populate and nopage into fault (fixes nonlinear) (v2.6.23)",
    ),
    "gup_foll_dump": ("8e4b9a607189", "mm: FOLL_DUMP replace FOLL_ANON (v2.6.32)"),
    "zero_page_special": ("a13ea5b75964", "mm: reinstate ZERO_PAGE (v2.6.32)"),
    "populate_reads_shared": (
        "5ecfda041e4b",
        "mlock: avoid dirtying pages and triggering writeback (v2.6.38); with"
        " fdf4c587a7, mlock: operate on any regions with protection != PROT_NONE",
    ),
    "mlock_populates_after_fixup": (
        "fed067da46ad",
        "mlock: only hold mmap_sem in shared mode when faulting in pages (v2.6.38-rc1)",
    ),
    "mlock_posix_errno": (
        "9978ad583e10",
        "mlock: make mlock error return Posixly Correct (v2.6.28)",
    ),
    "willneed_anon": (
        "1998cc048901",
        "mm: make madvise(MADV_WILLNEED) support swap file prefetch (v3.9-rc1)",
    ),
    "fault_around": (
        "8c6e50b0290c + d7c1755179b8",
        "mm: introduce vm_ops->map_pages() (v3.15-rc1); ->map_pages for shmem/tmpfs",
    ),
    "no_ptracer_past_eof": (
        "UNVERIFIED",
        "filemap_fault: no read past EOF for an external ptracer (after v2.6.23, by the "
        "spring 2009 -mm tree)",
    ),
    "merge_skips_fork_children": (
        "965f55dea0e3",
        "mmap: avoid merging cloned VMAs (v3.0); the form of 6.18's mm/vma.c",
    ),
    "mprotect_cows_locked": (
        "36f881883c57",
        "mm: fix mprotect() behaviour on VM_LOCKED VMAs (v4.4, UNVERIFIED)",
    ),
    "mprotect_unaccounts_unfaulted": (
        "UNVERIFIED",
        "mm/mprotect: allow unfaulted VMAs to be unaccounted on mprotect() (v6.7)",
    ),
    "mprotect_exclusive_writable": (
        "64fe24a3e05e",
        "mm/mprotect: try avoiding write faults for exclusive anonymous pages when "
        "changing protection (v6.0, UNVERIFIED; clean ptes too since a later change)",
    ),
    "maps_anon_offset_zero": (
        "UNVERIFIED",
        "/proc/PID/maps: offset 0 for vmas without a file (after v2.6.2x, by v3.x)",
    ),
}

DEFAULT_PROFILE = "2.6.15"  # an alias of "seed": what scenarios say by default


def get_semantics(name: str) -> Semantics:
    """Look a profile (or an old name, :data:`ALIASES`) up by name; an unknown
    name is an input error listing the known ones."""
    try:
        return PROFILES[ALIASES[name][0] if name in ALIASES else name]
    except KeyError:
        known = ", ".join([*PROFILES, *ALIASES])
        raise InputError(
            f"unknown semantics profile {name!r} (known: {known}; see `pagewalk profiles`)"
        ) from None


def profile_base(sem: Semantics) -> str:
    """The tree a profile is built on."""
    if not sem.follow_page_inner_ptlock:
        return "deceb6cd17e6^ (the seed's parent, after v2.6.14)"
    return "deceb6cd17e6 (the seed, v2.6.15-rc1)"


def profile_switches(sem: Semantics) -> list[dict[str, str]]:
    """The switches a profile turns on relative to its base tree (for the
    seed and its parent, none: they are their base), each with its commit;
    a switch the base has and the profile turns off is named "no X"."""
    base = PROFILES["seed" if sem.follow_page_inner_ptlock else "seed^"]
    out = []
    for name, value in sem.describe().items():
        if value == getattr(base, name):
            continue
        commit, summary = SWITCH_COMMITS[name]
        out.append({"name": name if value else "no " + name, "commit": commit, "summary": summary})
    return out
