"""examples/races: each bug of the GUP/COW family explored under every
profile -- the violation found where the kernel had the bug, the search
complete without one where it was fixed (the verdict table of
docs/profiles.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pagewalk.explore import explore, replay
from pagewalk.kernel.semantics import PROFILES
from pagewalk.scenario.loader import load_scenario

RACES = Path(__file__).parent.parent / "examples" / "races"

#: scenario -> the profiles under which it has a violation
BUGGY = {
    "cve_2020_29374": {"seed^-ptl-pushdown", "seed^", "seed", "seed+madvise-read", "seed+foll-cow"},
    "pinned_page_lost_on_fork": {
        "seed^-ptl-pushdown",
        "seed^",
        "seed",
        "seed+madvise-read",
        "seed+foll-cow",
        "seed+gup-cow-break",
        "seed+wp-page-count",
    },
    "ro_pin_after_fork": {
        "seed^-ptl-pushdown",
        "seed^",
        "seed",
        "seed+madvise-read",
        "seed+foll-cow",
        "seed+wp-page-count",
        "seed+fork-copy-pinned",
    },
    "dirty_cow": {"seed+madvise-read"},
    # v5.18's unsharing covers anonymous pages only; v6.2's (6.18) the rest
    "ro_pin_on_page_cache": set(PROFILES) - {"seed+gup-cow-break", "6.18"},
}
CASES = [(race, profile) for race in BUGGY for profile in PROFILES]


def test_every_race_scenario_has_a_verdict_row() -> None:
    assert {p.stem for p in RACES.glob("*.toml")} == set(BUGGY)


@pytest.mark.parametrize(("race", "profile"), CASES, ids=[f"{r}-{p}" for r, p in CASES])
def test_race_verdict(race: str, profile: str) -> None:
    res = explore(load_scenario(RACES / f"{race}.toml"), profile, "dpor")
    assert res.status == ("violation" if profile in BUGGY[race] else "ok")


@pytest.mark.parametrize("race", ["cve_2020_29374", "pinned_page_lost_on_fork"])
def test_violation_schedule_replays_to_the_same_failed_check(race: str) -> None:
    scenario = load_scenario(RACES / f"{race}.toml")
    res = explore(scenario, "seed", "dpor")
    again = replay(scenario, res.violation.schedule, "seed")
    failed = [c.kind for c in again.result.checks if not c.ok]
    assert failed == [res.violation.check]


def test_the_pinned_page_race_needs_the_other_order_under_the_seed() -> None:
    # The child exiting first leaves the page mapped once: the seed reuses it.
    res = explore(load_scenario(RACES / "pinned_page_lost_on_fork.toml"), "seed", "dpor")
    assert res.executions >= 2
