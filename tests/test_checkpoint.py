"""Interrupt, checkpoint and resume (explore --checkpoint / --resume): a
search stopped anywhere -- between executions, after one ran but before it
was counted, inside one -- and resumed from its checkpoint ends with the
result of a search never stopped; a checkpoint of another search is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pagewalk.cli import main
from pagewalk.explore import api, dpor, explore, pct
from pagewalk.explore.report import render_result
from pagewalk.scenario.loader import load_scenario, parse_scenario

EXAMPLES = Path(__file__).parent.parent / "examples"
DIRTY_COW = EXAMPLES / "dirty_cow.toml"
MLOCK_VS_READ = EXAMPLES / "concurrent" / "mlock_vs_read.toml"
RO_PIN = EXAMPLES / "races" / "ro_pin_after_fork.toml"


def outcome(res: api.ExploreResult) -> dict[str, Any]:
    """Everything a search found, without what depends on when it ran."""
    doc = res.as_json()
    for key in ("elapsed_s", "interrupted", "coverage"):
        doc.pop(key)
    doc["observations"] = sorted(res.observations.items())
    return doc


class InterruptAt:
    """Raise KeyboardInterrupt once, as Ctrl-C would, at the k-th call of a
    method (``where``: after an execution was counted, after it ran but
    before it was counted, or inside it, at a step of the scheduler)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, cls: type, name: str, k: int) -> None:
        original = getattr(cls, name)
        self.calls = 0

        def wrapper(*args: Any, **kw: Any) -> Any:
            self.calls += 1
            if self.calls == k:
                raise KeyboardInterrupt
            return original(*args, **kw)

        monkeypatch.setattr(cls, name, wrapper)
        self.undo = lambda: monkeypatch.setattr(cls, name, original)


def interrupted_then_resumed(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    where: tuple[type, str, int],
    path: Path,
    sem: str,
    strategy: str,
    **kw: Any,
) -> tuple[api.ExploreResult, api.ExploreResult]:
    scenario = load_scenario(path)
    ck = str(tmp_path / "search.json")
    hook = InterruptAt(monkeypatch, *where)
    first = explore(scenario, sem, strategy, checkpoint=ck, checkpoint_interval=0, **kw)
    hook.undo()
    assert first.interrupted == "SIGINT"
    return first, explore(scenario, sem, strategy, resume=ck, **kw)


CASES = [  # (scenario, profile, strategy, explore's keywords)
    (DIRTY_COW, "2.6.22", "dfs", {"stop_first": True}),
    (MLOCK_VS_READ, "2.6.15", "dfs", {"stop_first": False, "collect": True}),
    (RO_PIN, "4.8.3", "dfs", {"stop_first": False}),
    (DIRTY_COW, "2.6.22", "dpor", {"stop_first": False}),
    (DIRTY_COW, "2.6.22", "dpor", {"stop_first": True}),
    (MLOCK_VS_READ, "2.6.15", "dpor", {"stop_first": False, "collect": True}),
    (DIRTY_COW, "2.6.22", "random", {"stop_first": False, "max_executions": 60}),
    (DIRTY_COW, "2.6.22", "random", {"stop_first": True, "seed": 5}),
]
IDS = [f"{c[0].stem}-{c[1]}-{c[2]}-{'first' if c[3]['stop_first'] else 'all'}" for c in CASES]


@pytest.mark.parametrize(("path", "sem", "strategy", "kw"), CASES, ids=IDS)
@pytest.mark.parametrize("where", ["counted", "uncounted", "inside"])
def test_a_search_interrupted_and_resumed_ends_as_an_uninterrupted_one(
    monkeypatch, tmp_path, path, sem, strategy, kw, where
):
    straight = explore(load_scenario(path), sem, strategy, **kw)
    k = max(1, min(7, straight.executions - 1))
    chooser = pct.PCTChooser if strategy == "random" else dpor.TreeChooser
    at = {
        "counted": (api.Tally, "tick", k),
        "uncounted": (api.Tally, "record", k),
        "inside": (chooser, "choose", 10 * k + 3),
    }[where]
    first, resumed = interrupted_then_resumed(monkeypatch, tmp_path, at, path, sem, strategy, **kw)
    assert first.executions < straight.executions
    assert outcome(resumed) == outcome(straight)


def test_a_search_stopped_by_its_budget_resumes_with_a_larger_one(tmp_path):
    scenario = load_scenario(MLOCK_VS_READ)
    straight = explore(scenario, "2.6.15", "dfs")
    ck = str(tmp_path / "search.json")
    first = explore(scenario, "2.6.15", "dfs", max_executions=40, checkpoint=ck)
    assert first.status == "incomplete" and first.executions == 40
    resumed = explore(scenario, "2.6.15", "dfs", resume=ck)
    assert resumed.status == "ok" and outcome(resumed) == outcome(straight)


def test_max_executions_counts_the_executions_before_the_resume_too(tmp_path):
    scenario = load_scenario(MLOCK_VS_READ)
    ck = str(tmp_path / "search.json")
    explore(scenario, "2.6.15", "dfs", max_executions=40, checkpoint=ck)
    resumed = explore(scenario, "2.6.15", "dfs", max_executions=40, resume=ck)
    assert resumed.executions == 40 and resumed.status == "incomplete"


def test_resuming_a_finished_search_runs_nothing_and_reports_its_result(tmp_path, monkeypatch):
    scenario = load_scenario(DIRTY_COW)
    ck = str(tmp_path / "search.json")
    kw = {"stop_first": False, "shorten": False}  # shortening runs a search of its own
    done = explore(scenario, "2.6.22", "dpor", checkpoint=ck, **kw)
    ran = InterruptAt(monkeypatch, api.Tally, "record", 10**9)
    again = explore(scenario, "2.6.22", "dpor", resume=ck, **kw)
    assert ran.calls == 0 and outcome(again) == outcome(done)


def test_a_checkpoint_is_versioned_json_naming_its_search(tmp_path):
    ck = tmp_path / "search.json"
    explore(load_scenario(DIRTY_COW), "2.6.22", "dpor", checkpoint=str(ck))
    doc = json.loads(ck.read_text())
    assert doc["format"] == "pagewalk-explore-checkpoint" and doc["version"] == 1
    assert doc["strategy"] == "dpor" and doc["scenario"]["file"] == str(DIRTY_COW)
    assert len(doc["scenario"]["sha256"]) == 64 and doc["finished"] is True
    assert os.listdir(tmp_path) == ["search.json"]  # no temporary file left behind


def test_an_interrupted_tree_search_reports_how_much_of_the_tree_it_covered(monkeypatch):
    InterruptAt(monkeypatch, api.Tally, "tick", 5)
    res = explore(load_scenario(DIRTY_COW), "2.6.22", "dfs", stop_first=False)
    cov = res.coverage
    assert cov["pending"] > 0 and cov["levels"][0] == [0, 2]
    assert res.as_json()["coverage"] == cov
    assert "covered: branches finished at the first nodes that branch: 0/2 " in render_result(
        res, ["a", "b"], "x.toml"
    )


def test_a_complete_search_reports_no_coverage():
    res = explore(load_scenario(DIRTY_COW), "2.6.22", "dpor", stop_first=False)
    assert res.coverage is None


# -- the command line ----------------------------------------------------------------------------
def explore_cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(["explore", *args, "--no-progress"])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def checkpoint(tmp_path, capsys) -> Path:
    """A dpor checkpoint of dirty_cow under 2.6.22 with --preemption-bound 2."""
    ck = tmp_path / "search.json"
    args = [str(DIRTY_COW), "--semantics", "2.6.22", "--preemption-bound", "2"]
    assert explore_cli(capsys, *args, "--checkpoint", str(ck))[0] == 1
    return ck


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (["--semantics", "4.8.3"], "profile"),
        (["--semantics", "2.6.22", "--strategy", "dfs"], "strategy"),
        (["--semantics", "2.6.22", "--preemption-bound", "3"], "--preemption-bound"),
        (["--semantics", "2.6.22", "--preemption-bound", "2", "--all"], "--all"),
    ],
)
def test_resume_refuses_a_checkpoint_of_another_search(capsys, checkpoint, change, says):
    rc, out, err = explore_cli(capsys, str(DIRTY_COW), "--resume", str(checkpoint), *change)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and says in err and "checkpoint of a" in err


def test_resume_refuses_a_checkpoint_of_another_scenario_content(capsys, tmp_path, checkpoint):
    copy = tmp_path / "dirty_cow.toml"
    copy.write_text(DIRTY_COW.read_text() + "\n# edited\n")
    rc, _, err = explore_cli(
        capsys, str(copy), "--semantics", "2.6.22", "--resume", str(checkpoint)
    )
    assert rc == 2 and "checkpoint of another scenario" in err and err.count("\n") == 1


def test_resume_accepts_the_same_content_under_another_path(capsys, tmp_path, checkpoint):
    copy = tmp_path / "moved.toml"
    copy.write_bytes(DIRTY_COW.read_bytes())
    args = ["--semantics", "2.6.22", "--preemption-bound", "2", "--resume", str(checkpoint)]
    assert explore_cli(capsys, str(copy), *args)[0] == 1


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("not json", "not JSON"),
        ('{"format": "something else"}', "not a pagewalk explore checkpoint"),
        ('{"format": "pagewalk-explore-checkpoint", "version": 99}', "version 99"),
    ],
)
def test_resume_refuses_a_file_that_is_not_a_checkpoint(capsys, tmp_path, content, says):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    rc, _, err = explore_cli(capsys, str(DIRTY_COW), "--resume", str(bad))
    assert rc == 2 and says in err and err.count("\n") == 1


def test_resume_refuses_a_checkpoint_whose_fields_were_damaged(capsys, checkpoint):
    doc = json.loads(checkpoint.read_text())
    doc["search"]["tree"]["nodes"] = [{"enabled": "x"}]
    checkpoint.write_text(json.dumps(doc))
    args = ["--semantics", "2.6.22", "--preemption-bound", "2", "--resume", str(checkpoint)]
    rc, _, err = explore_cli(capsys, str(DIRTY_COW), *args)
    assert rc == 2 and "not a valid checkpoint" in err and err.count("\n") == 1


def test_a_checkpoint_that_cannot_be_written_is_bad_input_before_the_search(capsys, tmp_path):
    target = str(tmp_path / "no" / "such" / "dir" / "search.json")
    rc, out, err = explore_cli(capsys, str(DIRTY_COW), "--checkpoint", target)
    assert rc == 2 and out == "" and "cannot write" in err


@pytest.mark.parametrize(
    ("path", "sem", "strategy", "kw"),
    [
        (RO_PIN, "4.8.3", "dfs", {"stop_first": False}),
        (DIRTY_COW, "2.6.22", "random", {"stop_first": False, "max_executions": 150}),
        (DIRTY_COW, "2.6.22", "random", {"stop_first": True, "seed": 5}),
    ],
    ids=["dfs-all", "random-all", "random-first"],
)
def test_a_search_in_two_processes_interrupted_and_resumed_ends_as_an_uninterrupted_one(
    monkeypatch, tmp_path, path, sem, strategy, kw
):
    kw = {**kw, "workers": 2}
    straight = explore(load_scenario(path), sem, strategy, **kw)
    at = (api.Tally, "tick", min(70, straight.executions // 2))  # amid a batch of outcomes
    first, resumed = interrupted_then_resumed(monkeypatch, tmp_path, at, path, sem, strategy, **kw)
    assert first.executions < straight.executions
    assert outcome(resumed) == outcome(straight)


def test_a_dfs_checkpoint_of_one_process_resumes_in_two(tmp_path):
    scenario = load_scenario(RO_PIN)
    straight = explore(scenario, "4.8.3", "dfs", stop_first=False)
    ck = str(tmp_path / "search.json")
    explore(scenario, "4.8.3", "dfs", max_executions=30, stop_first=False, checkpoint=ck)
    resumed = explore(scenario, "4.8.3", "dfs", stop_first=False, resume=ck, workers=2)
    assert outcome(resumed) == outcome(straight)


def test_a_dfs_checkpoint_of_two_processes_does_not_resume_in_one(capsys, tmp_path):
    ck = str(tmp_path / "search.json")
    args = [str(RO_PIN), "--semantics", "4.8.3", "--strategy", "dfs", "--all"]
    rc, out, _ = explore_cli(
        capsys, *args, "--max-executions", "30", "--workers", "2", "--checkpoint", ck
    )
    assert rc == 1 and "subtree(s) of the tree left to explore" in out
    rc, _, err = explore_cli(capsys, *args, "--resume", ck)
    assert rc == 2 and "resume it with --workers" in err


def test_a_checkpoint_over_the_scenario_file_is_refused(capsys, tmp_path):
    scenario = tmp_path / "dirty_cow.toml"
    scenario.write_bytes(DIRTY_COW.read_bytes())
    rc, _, err = explore_cli(capsys, str(scenario), "--checkpoint", str(scenario))
    assert rc == 2 and "is the scenario file itself" in err
    assert scenario.read_bytes() == DIRTY_COW.read_bytes()


def test_checkpoint_with_compare_is_refused(capsys, tmp_path):
    ck = str(tmp_path / "search.json")
    rc, _, err = explore_cli(
        capsys, str(DIRTY_COW), "--compare", "2.6.14", "2.6.15", "--resume", ck
    )
    assert rc == 2 and "--compare" in err


def test_dpor_with_workers_checkpoints_in_its_one_process(capsys, tmp_path):
    ck = tmp_path / "search.json"
    args = [str(DIRTY_COW), "--semantics", "2.6.22", "--workers", "2", "--checkpoint", str(ck)]
    assert explore_cli(capsys, *args)[0] == 1 and json.loads(ck.read_text())["finished"]


ONE_THREAD = """
name = "one"
[[setup]]
op = "mmap"
length = 4096
as = "m"
[[thread]]
name = "a"
ops = [{op = "write", addr = "m", data = "x"}]
"""


def test_a_single_thread_random_search_resumes_without_running_again(tmp_path):
    one = parse_scenario(ONE_THREAD)
    ck = str(tmp_path / "search.json")
    first = explore(one, strategy="random", checkpoint=ck)
    again = explore(one, strategy="random", resume=ck)
    assert first.executions == again.executions == 1 and outcome(first) == outcome(again)


def test_ctrl_c_writes_a_checkpoint_that_resumes_to_the_uninterrupted_result(tmp_path):
    """The whole way through the command line: SIGINT while a dfs runs
    (exit 130, the checkpoint written), then --resume to the end."""
    ck = tmp_path / "search.json"
    base = [sys.executable, "-m", "pagewalk", "explore", str(DIRTY_COW), "--semantics", "2.6.22"]
    base += ["--strategy", "dfs", "--all", "--max-executions", "1500", "--no-progress", "--json"]
    proc = subprocess.Popen(
        [*base, "--checkpoint", str(ck)],
        stdout=subprocess.PIPE,
        text=True,
        # a shell without job control starts background jobs with SIGINT
        # ignored, and Python then never raises KeyboardInterrupt: undo that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 60
        while not ck.exists() and time.monotonic() < deadline:  # written as the search starts
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()  # never left running, whatever failed
    assert proc.returncode == 130 and json.loads(out)["interrupted"] == "SIGINT"
    assert json.loads(out)["coverage"]["pending"] > 0
    resumed = subprocess.run([*base, "--resume", str(ck)], capture_output=True, text=True)
    straight = subprocess.run(base, capture_output=True, text=True)
    assert resumed.returncode == straight.returncode == 1
    docs = [json.loads(p.stdout) for p in (resumed, straight)]
    for doc in docs:
        doc.pop("elapsed_s")
    assert docs[0] == docs[1]
