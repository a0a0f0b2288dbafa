"""An execution started from the snapshot taken after setup is the execution
setup would have led to: same verdicts, executions, final states, results."""

from __future__ import annotations

from pathlib import Path

import pytest

from pagewalk.explore import explore
from pagewalk.explore import snapshot as snap
from pagewalk.explore.api import ReplayChooser
from pagewalk.explore.engine import run_execution
from pagewalk.scenario.loader import load_scenario

EXAMPLES = Path(__file__).parent.parent / "examples"
CONCURRENT = [*sorted((EXAMPLES / "concurrent").glob("*.toml")), EXAMPLES / "dirty_cow.toml"]


def explore_from(
    restore: bool, path: Path, sem: str, monkeypatch: pytest.MonkeyPatch, strategy: str = "dpor"
):
    real = snap.Snapshot.__init__

    def forced(self, scenario, semantics, restore_=None):
        real(self, scenario, semantics, restore)

    monkeypatch.setattr(snap.Snapshot, "__init__", forced)
    # dpor: its race analysis sees lock names and events, and it stays small
    return explore(load_scenario(path), sem, strategy, collect=True, stop_first=False)


@pytest.mark.parametrize("sem", ["2.6.14", "2.6.15", "2.6.22", "4.8.3"])
@pytest.mark.parametrize("path", CONCURRENT, ids=lambda p: p.stem)
def test_restored_executions_reach_the_final_states_of_fresh_ones(
    path: Path, sem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = explore_from(False, path, sem, monkeypatch)
    restored = explore_from(True, path, sem, monkeypatch)
    assert (restored.status, restored.executions) == (fresh.status, fresh.executions)
    assert restored.observations == fresh.observations
    assert [v.message for v in restored.violations] == [v.message for v in fresh.violations]


def test_a_restored_dfs_finds_the_violations_of_a_fresh_one(monkeypatch) -> None:
    path = EXAMPLES / "dirty_cow.toml"
    fresh = explore_from(False, path, "2.6.22", monkeypatch, "dfs")
    restored = explore_from(True, path, "2.6.22", monkeypatch, "dfs")
    assert restored.executions == fresh.executions
    assert [v.schedule for v in restored.violations] == [v.schedule for v in fresh.violations]
    assert restored.observations == fresh.observations


def test_every_restore_starts_from_the_same_state() -> None:
    sc = load_scenario(EXAMPLES / "concurrent" / "gup_pin_vs_dontneed.toml")
    start = snap.Snapshot(sc, "2.6.15", restore=True)
    first, second = start.restore(), start.restore()
    assert first.k is not second.k
    assert sorted(first.k.tasks) == sorted(second.k.tasks)
    assert [t.pid for t in first.k.tasks.values()] == [t.pid for t in second.k.tasks.values()]
    assert len(first.k.alloc.mem_map) == len(second.k.alloc.mem_map)


def test_a_restored_kernel_has_its_own_frames() -> None:
    sc = load_scenario(EXAMPLES / "dirty_cow.toml")
    start = snap.Snapshot(sc, "2.6.22", restore=True)
    first, second = start.restore(), start.restore()
    a, b = first.k.alloc.mem_map[0], second.k.alloc.mem_map[0]
    assert a is not b and type(a) is not type(b)
    assert type(a)._allocator is first.k.alloc and first.result.kernel is first.k


@pytest.mark.parametrize("restore", [True, False])
def test_the_next_runner_takes_over_the_frames_class_of_the_one_before(restore: bool) -> None:
    sc = load_scenario(EXAMPLES / "dirty_cow.toml")
    start = snap.Snapshot(sc, "2.6.22", restore=restore)
    first = start.runner()
    page_class = type(first.k.alloc.mem_map[0])
    second = start.runner()
    assert type(second.k.alloc.mem_map[0]) is page_class
    assert page_class._allocator is second.k.alloc


def test_a_retired_runners_frames_no_longer_read_their_index() -> None:
    sc = load_scenario(EXAMPLES / "dirty_cow.toml")
    start = snap.Snapshot(sc, "2.6.22", restore=True)
    first = start.runner()
    start.runner()
    with pytest.raises(AttributeError):
        _ = first.k.alloc.mem_map[0].index


def test_setup_results_appear_in_a_restored_execution() -> None:
    sc = load_scenario(EXAMPLES / "dirty_cow.toml")
    start = snap.Snapshot(sc, "4.8.3", restore=True)
    ex = run_execution(sc, "4.8.3", ReplayChooser([]), start=start)
    steps = [r.step for r in ex.result.results]
    assert steps[0] == "map" and len(steps) == 3


def test_the_faster_path_is_chosen_after_timing_both() -> None:
    sc = load_scenario(EXAMPLES / "dirty_cow.toml")
    start = snap.Snapshot(sc, "4.8.3")
    for _ in range(2 * snap._TRIALS):
        assert start.restores is None
        start.runner()
    assert start.restores is not None
    assert len(start.times[True]) == len(start.times[False]) == snap._TRIALS


def test_the_two_paths_are_timed_in_turn() -> None:
    sc = load_scenario(EXAMPLES / "dirty_cow.toml")
    start = snap.Snapshot(sc, "4.8.3")
    counts = []
    for _ in range(5):
        start.runner()
        counts.append((len(start.times[False]), len(start.times[True])))
    assert counts == [(1, 0), (1, 1), (2, 1), (2, 2), (3, 2)]


def test_a_restored_execution_does_not_change_the_snapshot() -> None:
    sc = load_scenario(EXAMPLES / "dirty_cow.toml")
    start = snap.Snapshot(sc, "2.6.22", restore=True)
    start.restore()
    before = start.data
    ex = run_execution(sc, "2.6.22", ReplayChooser([0, 1, 1, 0]), start=start)
    assert start.data == before and ex.outcome in ("ok", "violation")
    assert start.restore().by_step.keys() == {"map"}


def test_a_state_that_cannot_be_pickled_is_set_up_afresh(monkeypatch) -> None:
    def refuse(self, obj):
        raise TypeError("cannot pickle 'function' object")

    monkeypatch.setattr(snap._Pickler, "dump", refuse)
    sc = load_scenario(EXAMPLES / "dirty_cow.toml")
    start = snap.Snapshot(sc, "2.6.22")
    first, second = start.runner(), start.runner()
    assert start.restores is False and first.k is not second.k
    assert explore(sc, "2.6.22", "dfs").status == "violation"
