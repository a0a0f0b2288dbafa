"""Semantics profiles: the kernel versions pagewalk can behave as.

A profile is a frozen set of behaviour switches.  Kernel code never asks
"which version is this?"; it asks the one switch that names the behaviour,
and each switch says which commit introduced it.  Adding a version means
adding a profile here, not editing ``if version`` checks elsewhere.

Profiles
--------
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
    """Behaviour switches.  Each field documents the commit it stands for."""

    name: str
    #: Since deceb6cd17e6 "mm: follow_page with inner ptlock" (v2.6.15-rc1):
    #: follow_page takes FOLL_* flags and the pte lock itself; get_user_pages
    #: takes no page_table_lock and gets its reference through FOLL_GET.
    follow_page_flags: bool = True
    #: Since deceb6cd17e6: the zero-page shortcut is FOLL_ANON, not set for
    #: VM_LOCKED vmas, so make_pages_present really faults read-only
    #: anonymous memory in.  Before: untouched_anonymous_page(), which ignored
    #: VM_LOCKED.
    foll_anon_respects_vm_locked: bool = True

    def describe(self) -> dict[str, bool]:
        """The switches as a name -> value mapping (for reports and docs)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "name"}


PROFILES: dict[str, Semantics] = {
    "2.6.15": Semantics(name="2.6.15"),
}

DEFAULT_PROFILE = "2.6.15"


def get_semantics(name: str) -> Semantics:
    """Look a profile up by name; an unknown name is an input error listing the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise InputError(f"unknown semantics profile {name!r} (known: {known})") from None
