"""dfs split into time-sized tasks (explore/parallel.py): however short a
task's slice, the tasks together run every maximal schedule exactly once."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pagewalk.explore import explore, parallel
from pagewalk.scenario.loader import load_scenario

EXAMPLES = Path(__file__).parent.parent / "examples"
MLOCK = EXAMPLES / "concurrent" / "mlock_vs_read.toml"  # 209 executions under 2.6.14


def _drain(seconds: float) -> tuple[list[str], int]:
    """Every schedule the tasks ran, with the parent's loop done here in one
    process (each round deals the prefixes left to two tasks and pushes
    their leftovers back), and the number of tasks."""
    parallel._setup(load_scenario(MLOCK), "2.6.14", None, True, 10_000)
    stack: list[list[int]] = [[]]
    ran: list[str] = []
    tasks = 0
    while stack:
        hands = parallel.deal(stack, 2)
        stack = []
        for hand in hands:
            outcomes, leftover = parallel.dfs_task(hand, False, seconds)
            ran += [o.schedule for o in outcomes]
            stack.extend(reversed(leftover))
            tasks += 1
    return ran, tasks


def test_one_unbounded_task_runs_the_whole_tree_as_one_process_does() -> None:
    ran, tasks = _drain(math.inf)
    one = explore(load_scenario(MLOCK), "2.6.14", "dfs", stop_first=False, collect=True)
    assert tasks == 1
    assert len(ran) == one.executions == 209


def test_tasks_cut_after_each_execution_run_every_schedule_exactly_once() -> None:
    whole, _ = _drain(math.inf)
    ran, tasks = _drain(0.0)  # every task stops after its first execution
    assert tasks == len(ran)
    assert sorted(ran) == sorted(whole) and len(set(ran)) == len(ran)


def test_a_task_of_several_prefixes_hands_back_those_it_did_not_start() -> None:
    parallel._setup(load_scenario(MLOCK), "2.6.14", None, True, 10_000)
    _, leftover = parallel.dfs_task([[]], False, 0.0)
    outcomes, rest = parallel.dfs_task(leftover[:3], False, 0.0)
    assert len(outcomes) == 1  # the first prefix's first execution, then time is up
    assert rest[-2:] == leftover[1:3]


def test_dealing_spreads_the_shallow_prefixes_over_the_tasks() -> None:
    stack = [[0, 1, 1], [0, 1, 0], [0, 0], [1]]  # taken from the end: [1] is the biggest
    assert parallel.deal(stack, 2) == [[[1], [0, 1, 0]], [[0, 0], [0, 1, 1]]]
    assert parallel.deal(stack, 9) == [[[1]], [[0, 0]], [[0, 1, 0]], [[0, 1, 1]]]


@pytest.mark.parametrize(
    ("path", "profile"),
    [(MLOCK, "2.6.14"), (EXAMPLES / "races" / "ro_pin_after_fork.toml", "4.8.3")],
)
def test_two_workers_cut_after_each_execution_reach_the_result_of_one_process(
    monkeypatch, path: Path, profile: str
) -> None:
    sc = load_scenario(path)
    kw = {"stop_first": False, "collect": True, "shorten": False}
    one = explore(sc, profile, "dfs", **kw)
    monkeypatch.setattr(parallel, "SLICE", 0.0)
    monkeypatch.setattr(parallel, "SHORT_SLICE", 0.0)
    two = explore(sc, profile, "dfs", workers=2, **kw)
    assert (two.status, two.executions) == (one.status, one.executions)
    assert two.observations == one.observations
    assert sorted(v.schedule for v in two.violations) == sorted(v.schedule for v in one.violations)
