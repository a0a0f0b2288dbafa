"""The Kernel facade: its documented examples run, and its string shorthands
are validated as the scenario loader validates them."""

from __future__ import annotations

import doctest

import pytest

import pagewalk.kernel.kernel as kernel_module
from pagewalk import Kernel
from pagewalk.errors import InputError


def test_every_documented_example_of_the_facade_runs() -> None:
    results = doctest.testmod(kernel_module, optionflags=doctest.ELLIPSIS)
    assert results.failed == 0
    assert results.attempted >= 40


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda k, p: k.mmap(p, 4096, "rwz"), "Kernel.mmap: unknown prot 'rwz'"),
        (lambda k, p: k.mmap(p, 4096, "rw", ["privat"]), "Kernel.mmap: unknown mmap flag"),
        (lambda k, p: k.mmap(p, 4096, "rw", "private", file="/nope"), "no file named '/nope'"),
        (lambda k, p: k.mprotect(p, 0, 4096, "w"), "Kernel.mprotect: unknown prot 'w'"),
        (lambda k, p: k.madvise(p, 0, 4096, "free"), "Kernel.madvise: unknown advice 'free'"),
        (lambda k, p: k.proc_view(p, "status"), "Kernel.proc_view: unknown view 'status'"),
    ],
)
def test_an_unknown_shorthand_is_an_input_error_naming_the_method(call, message) -> None:
    k = Kernel()
    p = k.spawn("p")
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        call(k, p)


def test_a_single_flag_may_be_given_as_a_string() -> None:
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, 4096, "rw", "shared")
    assert k.vma(p, a).vm_flags & 0x8  # VM_SHARED
