"""The scheduler and the explorer: Dirty COW found where it lived, absent
where it was not reachable or was fixed; schedules replay exactly; deadlocks
and livelocks are reported; DPOR explores fewer executions than DFS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pagewalk.cli import main
from pagewalk.errors import InputError
from pagewalk.explore import explore, replay
from pagewalk.explore.compare import compare_profiles
from pagewalk.scenario.loader import load_scenario, parse_scenario
from pagewalk.sched import decode_schedule, encode_schedule

EXAMPLES = Path(__file__).parent.parent / "examples"
DIRTY_COW = EXAMPLES / "dirty_cow.toml"


@pytest.fixture(scope="module")
def dirty_cow():
    return load_scenario(DIRTY_COW)


def dirty_cow_variant(path: str = "/etc/shadow", offset: int = 0, extra: str = "") -> str:
    return f"""
name = "dirty_cow_variant"
[[file]]
path = "{path}"
size = 12288
fill = "secret:"
mode = "r"
[[setup]]
op = "mmap"
file = "{path}"
length = 8192
offset = {offset}
prot = "r"
as = "map"
[[thread]]
name = "poke"
ops = [{{ op = "mem_write", addr = "map+4100", data = "pwned" }}]
[[thread]]
name = "zap"
ops = [{{ op = "madvise", addr = "map", length = 8192, advice = "dontneed" }}]
{extra}
[[check]]
kind = "file_unchanged"
path = "{path}"
"""


@pytest.mark.parametrize("strategy", ["dpor", "dfs"])
def test_dirty_cow_is_found_under_2_6_22(dirty_cow, strategy: str) -> None:
    res = explore(dirty_cow, "2.6.22", strategy)
    assert res.status == "violation"
    assert res.violation.check == "file_unchanged"
    assert res.violation.preemptions == 1


@pytest.mark.parametrize("profile", ["2.6.15", "4.8.3", "2.6.14"])
@pytest.mark.parametrize("strategy", ["dpor", "dfs"])
def test_dirty_cow_search_completes_clean(dirty_cow, profile: str, strategy: str) -> None:
    res = explore(dirty_cow, profile, strategy)
    assert (res.status, res.violation) == ("ok", None)


def test_dirty_cow_violation_replays_exactly(dirty_cow) -> None:
    res = explore(dirty_cow, "2.6.22")
    ex = replay(dirty_cow, res.violation.schedule, "2.6.22")
    assert ex.violated
    assert encode_schedule(ex.choices) == res.violation.schedule
    data = dirty_cow.files[0]
    content = ex.result.kernel.files[data.path].content()
    assert content.startswith(b"owned")


def test_the_fix_profile_lands_the_same_schedule_in_an_anonymous_copy(dirty_cow) -> None:
    schedule = explore(dirty_cow, "2.6.22").violation.schedule
    ex = replay(dirty_cow, schedule, "4.8.3")
    assert not ex.violated


def test_dirty_cow_trace_shows_the_zap_between_the_cow_and_the_retry(dirty_cow) -> None:
    trace = explore(dirty_cow, "2.6.22").violation.trace
    events = [(e["task"], e["kind"], e["event"]) for e in trace]
    dropped = events.index(("poke", "note", "VM_FAULT_WRITE: COW resolved, FOLL_WRITE dropped"))
    zap = next(
        i
        for i, (t, kind, ev) in enumerate(events)
        if t == "madvise" and kind == "pte" and ev.endswith("-> none")
    )
    file_map = next(
        i
        for i, (t, kind, ev) in enumerate(events)
        if t == "poke" and kind == "pte" and "-> file" in ev
    )
    assert dropped < zap < file_map


@pytest.mark.parametrize(
    ("path", "offset", "profile", "status"),
    [
        ("/etc/shadow", 0, "2.6.22", "violation"),
        ("/srv/data", 4096, "2.6.22", "violation"),
        ("/etc/shadow", 0, "2.6.15", "ok"),
        ("/srv/data", 4096, "4.8.3", "ok"),
    ],
)
def test_variants_of_dirty_cow(path: str, offset: int, profile: str, status: str) -> None:
    scenario = parse_scenario(dirty_cow_variant(path, offset), "variant.toml")
    assert explore(scenario, profile).status == status


def test_a_third_thread_reading_does_not_hide_the_race() -> None:
    extra = """[[thread]]
name = "reader"
ops = [{ op = "read", addr = "map", length = 4 }]"""
    scenario = parse_scenario(dirty_cow_variant(extra=extra), "variant.toml")
    assert explore(scenario, "2.6.22").status == "violation"
    assert explore(scenario, "4.8.3").status == "ok"


def test_dpor_needs_fewer_executions_than_dfs(dirty_cow) -> None:
    dpor = explore(dirty_cow, "4.8.3", "dpor")
    dfs = explore(dirty_cow, "4.8.3", "dfs")
    assert dpor.executions < dfs.executions


def test_random_strategy_finds_dirty_cow_with_a_seed(dirty_cow) -> None:
    res = explore(dirty_cow, "2.6.22", "random", max_executions=300, seed=1)
    assert res.status == "violation"


def test_max_executions_makes_the_search_incomplete(dirty_cow) -> None:
    res = explore(dirty_cow, "4.8.3", "dfs", max_executions=3)
    assert (res.status, res.executions) == ("incomplete", 3)


def test_preemption_bound_zero_misses_dirty_cow_and_says_incomplete(dirty_cow) -> None:
    res = explore(dirty_cow, "2.6.22", preemption_bound=0)
    assert res.status == "incomplete"


FORK_AND_WRITE = """
name = "fork_and_write"
[[file]]
path = "/f"
size = 4096
[[process]]
name = "a"
[[process]]
name = "b"
[[setup]]
op = "mmap"
process = "a"
length = 4096
as = "m"
[[thread]]
name = "forker"
process = "a"
ops = [{ op = "fork", as = "child" }]
[[thread]]
name = "writer"
process = "a"
ops = [{ op = "write", addr = "m", data = "x" }]
"""


def test_fork_racing_a_write_fault_completes_without_violation() -> None:
    scenario = parse_scenario(FORK_AND_WRITE, "fork_and_write.toml")
    assert explore(scenario, "2.6.15").status == "ok"


def test_schedule_strings_round_trip() -> None:
    choices = [0, 0, 0, 1, 1, 0, 2]
    assert encode_schedule(choices) == "0*3.1*2.0.2"
    assert decode_schedule("0*3.1*2.0.2") == choices


def test_bad_schedule_is_an_input_error(dirty_cow) -> None:
    with pytest.raises(InputError, match="TASK"):
        replay(dirty_cow, "0*x", "2.6.22")
    with pytest.raises(InputError, match="has 2 thread"):
        replay(dirty_cow, "5", "2.6.22")


def test_compare_shows_the_state_only_the_racy_profile_reaches(dirty_cow) -> None:
    cmp = compare_profiles(dirty_cow, "2.6.22", "4.8.3")
    assert len(cmp["only"]["2.6.22"]) == 1
    assert cmp["only"]["4.8.3"] == []


def test_cli_explore_exit_codes_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", str(DIRTY_COW), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "violation"
    assert {"scenario", "semantics", "executions", "elapsed_s", "violation"} <= out.keys()
    v = out["violation"]
    assert {"check", "message", "schedule", "trace"} <= v.keys()
    assert all({"task", "event"} <= e.keys() for e in v["trace"])
    assert main(["explore", str(DIRTY_COW), "--semantics", "4.8.3", "--json"]) == 0
    capsys.readouterr()
    assert (
        main(
            [
                "explore",
                str(DIRTY_COW),
                "--semantics",
                "4.8.3",
                "--strategy",
                "dfs",
                "--max-executions",
                "2",
            ]
        )
        == 3
    )


def test_cli_run_with_schedule_reproduces_the_violation(
    capsys: pytest.CaptureFixture[str], dirty_cow
) -> None:
    schedule = explore(dirty_cow, "2.6.22").violation.schedule
    assert main(["run", str(DIRTY_COW), "--schedule", schedule, "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert not next(c for c in out["checks"] if c["kind"] == "file_unchanged")["ok"]


def test_cli_replay_prints_the_trace_and_writes_html(
    tmp_path: Path, dirty_cow, capsys: pytest.CaptureFixture[str]
) -> None:
    schedule = explore(dirty_cow, "2.6.22").violation.schedule
    page = tmp_path / "trace.html"
    assert main(["replay", str(DIRTY_COW), schedule, "--trace-html", str(page)]) == 1
    out = capsys.readouterr().out
    assert "zap_pte_range" in out and "FOLL_WRITE dropped" in out
    assert "<table>" in page.read_text()


def _observations(scenario, profile: str, strategy: str, workers: int):
    return explore(
        scenario, profile, strategy, stop_first=False, collect=True, shorten=False, workers=workers
    )


@pytest.mark.parametrize("strategy", ["dfs", "random"])
def test_two_workers_explore_the_same_interleavings_as_one(dirty_cow, strategy: str) -> None:
    one = _observations(dirty_cow, "4.8.3", strategy, 1)
    two = _observations(dirty_cow, "4.8.3", strategy, 2)
    assert (two.executions, two.status) == (one.executions, one.status)
    assert two.observations == one.observations


def test_two_workers_reach_the_same_verdict_on_dirty_cow(dirty_cow) -> None:
    res = explore(dirty_cow, "2.6.22", "dfs", workers=2)
    assert res.status == "violation"
    assert res.violation.schedule == explore(dirty_cow, "2.6.22", "dfs").violation.schedule


def test_mlock_before_the_patch_maps_only_where_tables_exist() -> None:
    """Before deceb6cd, untouched_anonymous_page decided: mlock mapped the zero
    page only if a racing reader had already allocated the page tables."""
    scenario = load_scenario(EXAMPLES / "concurrent" / "mlock_vs_read.toml")
    cmp = compare_profiles(scenario, "2.6.14", "2.6.15")
    assert len(cmp["only"]["2.6.14"]) == 1 and cmp["only"]["2.6.15"] == []
    ((state, _schedule),) = cmp["only"]["2.6.14"]
    assert any(entry[2] == "absent" for entry in state[2])


@pytest.mark.parametrize("name", ["gup_vs_fault", "gup_pin_vs_dontneed"])
def test_the_patch_changes_no_final_state_of_these_races(name: str) -> None:
    scenario = load_scenario(EXAMPLES / "concurrent" / f"{name}.toml")
    cmp = compare_profiles(scenario, "2.6.14", "2.6.15")
    assert cmp["only"] == {"2.6.14": [], "2.6.15": []}
