"""Semantics profiles: the kernel versions pagewalk can behave as.

A profile is a frozen set of behaviour switches.  Kernel code never asks
"which version is this?"; it asks the one switch that names the behaviour,
and each switch says which commit introduced it.  Adding a version means
adding a profile here, not editing ``if version`` checks elsewhere.

Profiles
--------
``"2.6.14"``
    The tree just before the seed patch (its parent commit: 2.6.14-rc with
    Hugh Dickins' page-fault-scalability series up to 20/21, without the split
    page-table lock).  Named for the release it preceded.
``"2.6.22"``
    2.6.15 plus MADV_DONTNEED/WILLNEED under mmap_sem held for read.
``"4.8.3"``
    2.6.22 plus the Dirty COW fix (FOLL_COW, can_follow_write_pte).
``"2.6.15"`` (default)
    The tree right after commit deceb6cd17e6 ("[PATCH] mm: follow_page with
    inner ptlock", Hugh Dickins, v2.6.15-rc1): ``follow_page(mm, address,
    flags)`` with FOLL_WRITE/TOUCH/GET/ANON taking its own pte lock, and
    ``get_user_pages`` holding no ``page_table_lock``.  ``split_ptlock`` (from
    commit 4c21e2f2441d "mm: split page table lock", the same day) is a
    per-kernel configuration, not a profile switch, because CONFIG_SPLIT_PTLOCK_CPUS
    decided it per build.
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

    def describe(self) -> dict[str, bool]:
        """The switches as a name -> value mapping (for reports and docs)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "name"}


PROFILES: dict[str, Semantics] = {
    # The parent of deceb6cd: 2.6.14-rc with Hugh Dickins' series up to 20/21
    # ("mm: kill check_user_page_readable"), before the split ptlock.
    "2.6.14": Semantics(
        name="2.6.14",
        follow_page_inner_ptlock=False,
        foll_anon_respects_vm_locked=False,
        futex_fast_path_inner_ptlock=False,
        numa_maps_untouched=False,
        split_ptlock_available=False,
    ),
    "2.6.15": Semantics(name="2.6.15"),
    # 2.6.15 plus DONTNEED under mmap_sem read: the first kernel where the
    # Dirty COW race is reachable through madvise.
    "2.6.22": Semantics(name="2.6.22", madvise_dontneed_mmap_sem_read=True),
    # 2.6.22 plus the Dirty COW fix (and nothing else of the ten years between).
    "4.8.3": Semantics(name="4.8.3", madvise_dontneed_mmap_sem_read=True, gup_foll_cow=True),
}
DEFAULT_PROFILE = "2.6.15"


def get_semantics(name: str) -> Semantics:
    """Look a profile up by name; an unknown name is an input error listing the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise InputError(f"unknown semantics profile {name!r} (known: {known})") from None
