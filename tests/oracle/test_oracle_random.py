"""Random scenarios under ``6.18`` against this machine's kernel.

The suite in ``scenarios/`` checks what someone thought of; these check what
the differential test's generator draws (``tests/scenario_gen.py``: one or
two processes, mappings of a file and of anonymous memory, fork, and two or
three threads of mmap/munmap/mprotect/madvise/mlock/munlock, loads, stores,
/proc/PID/mem, gup, pins, vmsplice, /proc files, core dumps), run one thread
after the other.  Under ``6.18`` no rule explains a difference, so any
mismatch is the model disagreeing with the real kernel.  The first runs
found four behaviours the profile lacked (an mlock that runs into a hole,
the mprotect of an unfaulted or of a locked range, merges next to a range a
fork handed down; docs/profiles.md) and one difference of the oracle itself
(each mmap opened the file anew); each is now a switch or a fix, with its
own test.

Scenario *i* is drawn from its own seed, so that an index names the same
scenario whatever the count.  ``PAGEWALK_ORACLE_SCENARIOS`` sets the count
(CI: 200) and ``PAGEWALK_ORACLE_SEED`` the series.  The host part needs root
and PFNs in /proc/self/pagemap; without them the tests are skipped.
"""

from __future__ import annotations

import os
import random

import pytest

import scenario_gen
from pagewalk.oracle import host_problem, run_oracle
from pagewalk.oracle.classify import ERA, MISMATCH
from pagewalk.scenario.loader import parse_scenario
from scenario_mutations import to_toml

COUNT = int(os.environ.get("PAGEWALK_ORACLE_SCENARIOS", "200"))
SEED = os.environ.get("PAGEWALK_ORACLE_SEED", "oracle")
PROBLEM = host_problem()
needs_host = pytest.mark.skipif(
    PROBLEM is not None, reason=f"host-kernel oracle unavailable: {PROBLEM}"
)

#: index -> why the model differs from the host (xfail(strict=True)): a
#: behaviour of the real kernel the model does not have yet
MODEL_BUGS: dict[int, str] = {}

#: the one rule that may still explain a row under 6.18: the model has no
#: per-CPU LRU batches, and on the host the difference comes and goes with
#: their state (docs/oracle.md, "What is not made equal"; as in
#: test_oracle_618.py)
RESIDUAL = {"cow-refcount"}

PAGE = scenario_gen.PAGE

#: what the generator writes that is not for the host: the checks and final
#: operations (the oracle compares every step), and the model-only layout
_MODEL_ONLY = ("check", "final", "description", "nodes", "split_ptlock")


def random_scenario_text(index: int) -> str:
    """Scenario ``index`` of the series, as TOML, under ``6.18``.  Beyond
    the generator's draft, which the DPOR test keeps small: a third of the
    scenarios are scaled up (lengths and the file 4 or 8 times larger, page
    offsets spread over the larger mappings), and a third of the mmaps ask
    for MAP_LOCKED and/or MAP_POPULATE."""
    rng = random.Random(f"{SEED}-{index}")
    doc = scenario_gen.small_scenario(rng, name=f"random{index}", max_interleavings=None)
    doc["semantics"] = "6.18"
    for key in _MODEL_ONLY:
        doc.pop(key, None)
    for process in doc.get("process", []):
        process.pop("node", None)
    _widen(doc, rng, rng.choice((1, 1, 4, 8)))
    return to_toml(doc)


def _widen(node: object, rng: random.Random, scale: int) -> None:
    if isinstance(node, list):
        for item in node:
            _widen(item, rng, scale)
        return
    if not isinstance(node, dict):
        return
    if node.get("op") == "mmap" and rng.random() < 1 / 3:
        extra = rng.choice((["locked"], ["populate"], ["locked", "populate"]))
        node["flags"] = [*node["flags"], *(f for f in extra if f not in node["flags"])]
    for key, value in node.items():
        if key in ("length", "size") and isinstance(value, int) and value % PAGE == 0:
            node[key] = value * scale
        elif key == "addr" and isinstance(value, str) and "+" in value:
            base, offset = value.split("+")
            if int(offset) % PAGE == 0:
                node[key] = f"{base}+{int(offset) * (1 + rng.randrange(scale))}"
        else:
            _widen(value, rng, scale)


def _params():
    for index in range(COUNT):
        bug = MODEL_BUGS.get(index)
        marks = [pytest.mark.xfail(reason=bug, strict=True)] if bug else []
        yield pytest.param(index, marks=marks, id=str(index))


def test_a_random_scenario_is_the_same_for_its_index_whatever_the_count():
    assert random_scenario_text(7) == random_scenario_text(7)
    assert random_scenario_text(7) != random_scenario_text(8)


@needs_host
@pytest.mark.parametrize("index", list(_params()))
def test_random_scenario_matches_the_host_under_6_18(index):
    text = random_scenario_text(index)
    report = run_oracle(parse_scenario(text, f"random{index}.toml"), "6.18")
    differ = [
        f"{step.label}: {row.observable}: model {row.model!r} host {row.host!r}"
        for step in report.steps
        for row in step.rows
        if row.verdict == MISMATCH or (row.verdict == ERA and row.rule not in RESIDUAL)
    ]
    assert not differ, "\n".join(differ[:8]) + "\n\n" + text
