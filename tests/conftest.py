"""Shared fixtures: a fresh kernel with one process, invariants checked after
every test that uses it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # test helpers (lockrecorder)

from pagewalk import Kernel


@pytest.fixture
def k() -> Kernel:
    kernel = Kernel()
    yield kernel
    kernel.check_invariants()


@pytest.fixture
def p(k: Kernel):
    return k.spawn("p")
