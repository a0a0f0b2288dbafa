"""The modern profile against the host (docs/oracle.md, "Under 6.18").

Every era rule names the switch that models its change; under ``6.18``,
which has them all, no rule explains anything, so the suite and the races
must end with no era difference and no mismatch -- except what the model
cannot make equal (RESIDUAL, documented with its reason).  The host part
needs root and PFNs in /proc/self/pagemap; without them it is skipped with
the reason.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pagewalk.kernel import semantics
from pagewalk.oracle import RULES, host_problem, run_oracle
from pagewalk.oracle.classify import ERA, MISMATCH, Classifier, Row, active_rules
from pagewalk.scenario.loader import load_scenario

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
SCENARIOS = sorted((HERE / "scenarios").glob("*.toml"))
RACES = sorted((ROOT / "examples" / "races").glob("*.toml"))
PROBLEM = host_problem()
needs_host = pytest.mark.skipif(
    PROBLEM is not None, reason=f"host-kernel oracle unavailable: {PROBLEM}"
)

#: scenario stem -> the rule that may still explain a difference under 6.18
#: (the model has no per-CPU LRU batches, and on the host the difference comes
#: and goes with their state; docs/oracle.md, "Under 6.18")
RESIDUAL = {"cow_after_gup_reads": "cow-refcount"}


def _rows(report, verdict: str) -> list[str]:
    return [
        f"{s.label}: {r.observable}: model {r.model!r} host {r.host!r} {r.rule or ''}"
        for s in report.steps
        for r in s.rows
        if r.verdict == verdict
    ]


def _era_rules(report) -> set[str]:
    return {r.rule for s in report.steps for r in s.rows if r.verdict == ERA}


# --- without the host ---------------------------------------------------------------
def test_every_rule_but_the_residual_names_a_switch_that_6_18_has():
    sem = semantics.get_semantics("6.18")
    for rule in RULES.values():
        if rule.switch is None:
            assert rule.id in RESIDUAL.values(), rule.id
            continue
        assert hasattr(sem, rule.switch), rule.id
        assert getattr(sem, rule.switch), rule.id
    assert active_rules(sem) == set(RESIDUAL.values())


def test_every_rule_cites_the_commit_of_its_switch():
    # RULES and SWITCH_COMMITS describe the same changes for two readers
    # (the oracle's report, `pagewalk profiles`): they must not drift apart
    for rule in RULES.values():
        if rule.switch is not None:
            commit = semantics.SWITCH_COMMITS[rule.switch][0].split()[0]
            assert commit in rule.commit, rule.id


def test_the_seed_lacks_every_switch_so_every_rule_may_apply():
    assert active_rules(semantics.get_semantics("2.6.15")) == {
        r for r in RULES if r != "locked-zero-page"
    }


@pytest.mark.parametrize(("profile", "verdict"), [("2.6.15", ERA), ("6.18", MISMATCH)])
def test_an_era_row_stands_only_under_a_profile_without_the_rules_switch(profile, verdict):
    sem = semantics.get_semantics(profile)
    classifier = Classifier(list, str, lambda op: None)
    classifier.active = active_rules(sem)
    row = classifier._gate(Row("p buf: mapcount", "1", "0", ERA, "zero-page-mapcount"), sem)
    assert row.verdict == verdict
    assert (row.rule is None) == (verdict == MISMATCH)


def test_the_suite_has_at_least_60_scenarios():
    assert len(SCENARIOS) >= 60


# --- on the host kernel ----------------------------------------------------------------
@needs_host
@pytest.mark.parametrize("path", SCENARIOS + RACES, ids=lambda p: p.stem)
def test_6_18_has_no_era_difference_and_no_mismatch(path):
    report = run_oracle(load_scenario(str(path)), "6.18")
    assert report.status in ("ok", "not comparable"), report.notes + _rows(report, MISMATCH)
    assert report.counts[MISMATCH] == 0
    if path.stem in RESIDUAL:  # the host copies (an era row) or, at times, reuses (equal)
        assert _era_rules(report) <= {RESIDUAL[path.stem]}
    else:
        assert report.counts[ERA] == 0, _rows(report, ERA)


@needs_host
def test_a_profile_without_a_switch_shows_that_rules_era_difference(monkeypatch):
    """6.18 minus fault-around: the host's window is again an era difference."""
    sem = dataclasses.replace(
        semantics.PROFILES["6.18"], name="6.18-no-fault-around", fault_around=False
    )
    monkeypatch.setitem(semantics.PROFILES, sem.name, sem)
    path = HERE / "scenarios" / "private_file_read.toml"
    report = run_oracle(load_scenario(str(path)), sem.name)
    assert report.counts[MISMATCH] == 0
    assert _era_rules(report) == {"fault-around"}


@needs_host
def test_a_rule_explains_nothing_once_the_profile_has_its_switch(monkeypatch):
    """6.18 whose fault-around maps nothing: the switch is on, so the host's
    window is a mismatch, not an era difference."""
    from pagewalk.kernel import filemap

    monkeypatch.setattr(filemap.generic_file_vm_ops, "map_pages", lambda *a: False)
    path = HERE / "scenarios" / "private_file_read.toml"
    report = run_oracle(load_scenario(str(path)), "6.18")
    assert report.status == "mismatch"
    assert report.counts[ERA] == 0
    assert any(": state" in row for row in _rows(report, MISMATCH))
