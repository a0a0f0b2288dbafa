"""The race analysis kept across executions (explore/races.py) must find
exactly what a from-scratch analysis of every execution finds: the same
executions, pruned ones, final states and verdicts, on generated
scenarios of every kind and profile and on the three-thread Dirty COW."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import scenario_gen
from pagewalk.explore import explore
from pagewalk.explore.dpor import TreeSearch
from pagewalk.explore.races import RaceState
from pagewalk.scenario.loader import load_scenario, parse_scenario
from pagewalk.sched.scheduler import Event, R, W
from scenario_mutations import to_toml

ROOT = Path(__file__).resolve().parents[1]


def _fresh_analyze():
    """TreeSearch.analyze, every execution analysed from its first step."""
    analyze = TreeSearch.analyze

    def fresh(self, ex):
        self.races = None
        analyze(self, ex)

    return fresh


def summary(scenario, sem):
    res = explore(
        scenario, sem, "dpor", max_executions=5000, stop_first=False, shorten=False, collect=True
    )
    return res.executions, res.pruned, res.status, frozenset(res.observations)


def generated(n: int, seed: int = 21):
    for index in range(n):
        rng = random.Random(seed * 1_000_003 + index)
        doc = scenario_gen.small_scenario(rng, f"incremental_{index}")
        yield parse_scenario(to_toml(doc), f"incremental_{index}.toml"), doc["semantics"]


def test_generated_scenarios_explore_the_same_with_the_analysis_kept(monkeypatch):
    cases = list(generated(150))
    kept = [summary(sc, sem) for sc, sem in cases]
    monkeypatch.setattr(TreeSearch, "analyze", _fresh_analyze())
    assert [summary(sc, sem) for sc, sem in cases] == kept


@pytest.mark.parametrize("sem", ["2.6.15", "2.6.22", "4.8.3", "6.18"])
def test_three_thread_dirty_cow_explores_the_same_with_the_analysis_kept(monkeypatch, sem):
    scenario = load_scenario(ROOT / "benchmarks" / "inputs" / "dirty_cow_reader.toml")
    kept = summary(scenario, sem)
    monkeypatch.setattr(TreeSearch, "analyze", _fresh_analyze())
    assert summary(scenario, sem) == kept


def test_rewinding_restores_the_state_of_a_shorter_prefix():
    steps = [
        (0, Event("access", None, (("x", W),))),
        (1, Event("access", None, (("x", R),))),
        (0, Event("access", None, (("y", W), ("x", R)))),
        (1, Event("access", None, (("y", R),))),
    ]
    whole = RaceState(2)
    for i, (p, ev) in enumerate(steps):
        whole.step(i, p, ev)
    prefix = RaceState(2)
    for i, (p, ev) in enumerate(steps[:2]):
        prefix.step(i, p, ev)
    whole.rewind(2)
    assert (whole.clocks, whole.task_clock, whole.accesses) == (
        prefix.clocks,
        prefix.task_clock,
        prefix.accesses,
    )


def test_a_step_races_with_the_latest_unordered_conflicting_steps_first():
    steps = [
        (0, Event("access", None, (("x", R),))),
        (1, Event("access", None, (("x", R),))),
        (2, Event("access", None, (("x", W),))),
    ]
    state = RaceState(3)
    races = [state.step(i, p, ev) for i, (p, ev) in enumerate(steps)]
    assert races == [[], [], [1, 0]]
