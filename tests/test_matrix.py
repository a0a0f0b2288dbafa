"""``pagewalk matrix``: every scenario under every profile, checked against
each scenario's ``[expect]``; and the loader's ``[expect]``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pagewalk.cli import main
from pagewalk.errors import InputError
from pagewalk.scenario.loader import parse_scenario

EXAMPLES = Path(__file__).parent.parent / "examples"

RACE = """
name = "race"
[[setup]]
op = "mmap"
length = 4096
prot = "rw"
as = "buf"
[[thread]]
name = "a"
ops = [{ op = "write", addr = "buf", data = "a" }]
[[thread]]
name = "b"
ops = [{ op = "write", addr = "buf", data = "b" }]
[[check]]
kind = "memory"
addr = "buf"
data = "b"
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_matrix_of_the_examples_is_as_every_example_expects(capsys) -> None:
    assert main(["matrix", str(EXAMPLES), "--semantics", "all"]) == 0
    assert "every cell as expected" in capsys.readouterr().out


def test_matrix_json_has_a_cell_per_scenario_and_profile(capsys) -> None:
    path = EXAMPLES / "dirty_cow.toml"
    assert main(["matrix", str(path), "--semantics", "2.6.15,2.6.22", "--json"]) == 0
    cells = json.loads(capsys.readouterr().out)["cells"]
    assert [(c["semantics"], c["status"], c["expected"]) for c in cells] == [
        ("2.6.15", "ok", "ok"),
        ("2.6.22", "violation", "violation"),
    ]
    assert set(cells[0]) >= {"scenario", "semantics", "status", "executions", "schedule"}
    assert cells[0]["schedule"] is None and cells[1]["schedule"]
    assert cells[1]["scenario"] == "dirty_cow"


def test_a_violation_where_none_is_expected_fails_the_matrix(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, "race.toml", RACE + '[expect]\nviolation = ["2.6.22"]\n')
    assert main(["matrix", str(path), "--semantics", "2.6.15,2.6.22", "--workers", "1"]) == 1
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.endswith("1 differ from [expect]: race under 2.6.15 is violation")


def test_no_violation_where_one_is_expected_fails_the_matrix(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, "cow.toml", (EXAMPLES / "dirty_cow.toml").read_text())
    text = path.read_text().replace('violation = ["2.6.22"]', 'violation = ["4.8.3"]')
    path.write_text(text)
    assert main(["matrix", str(path), "--semantics", "4.8.3", "--json"]) == 1
    cell = json.loads(capsys.readouterr().out)["cells"][0]
    assert (cell["status"], cell["expected"]) == ("ok", "violation")


def test_a_scenario_without_expect_never_fails_the_matrix(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, "race.toml", RACE)
    assert main(["matrix", str(path), "--semantics", "2.6.15", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cells"][0]["expected"] is None


def test_a_bounded_cell_differs_from_an_expected_complete_search(tmp_path: Path, capsys) -> None:
    no_race = RACE.split("[[check]]")[0] + '[[check]]\nkind = "no_leaks"\n'
    path = write(tmp_path, "race.toml", no_race + "[expect]\nviolation = []\n")
    args = ["matrix", str(path), "--semantics", "2.6.15", "--json", "--strategy", "dfs"]
    assert main([*args, "--max-executions", "1"]) == 1
    assert json.loads(capsys.readouterr().out)["cells"][0]["status"] == "incomplete"


def test_markdown_is_a_table_of_scenarios_by_profile(capsys) -> None:
    args = ["matrix", str(EXAMPLES / "dirty_cow.toml"), "--semantics", "2.6.22,4.8.3"]
    assert main([*args, "--markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| scenario | `2.6.22` | `4.8.3` |"
    assert lines[2].startswith("| dirty_cow | **violation** `file_unchanged`")


def test_an_unknown_profile_in_the_list_is_bad_input(capsys) -> None:
    assert main(["matrix", str(EXAMPLES), "--semantics", "2.6.15,9.9"]) == 2
    assert "unknown semantics profile '9.9'" in capsys.readouterr().err


def test_a_missing_path_is_bad_input(tmp_path: Path, capsys) -> None:
    assert main(["matrix", str(tmp_path / "nothing")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        ('[expect]\nviolation = ["9.9"]', "expect.violation[0]: unknown semantics profile"),
        ('[expect]\nviolations = ["2.6.22"]', "unknown key 'violations' in [expect]"),
        ('[expect]\nviolation = "2.6.22"', "expected an array of profile names"),
        ('[expect]\nviolation = ["2.6.22", "2.6.22"]', "'2.6.22' is listed twice"),
    ],
)
def test_a_bad_expect_section_is_an_input_error(expect: str, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_scenario(RACE + expect, "race.toml")


def test_expect_lists_the_profiles_that_must_find_a_violation() -> None:
    scenario = parse_scenario(RACE + '[expect]\nviolation = ["2.6.22", "2.6.14"]', "race.toml")
    assert scenario.expect_violation == ("2.6.22", "2.6.14")


def test_an_interrupted_cell_stops_the_matrix(monkeypatch, capsys) -> None:
    from pagewalk.explore import matrix
    from pagewalk.explore.api import ExploreResult

    calls = []

    def interrupted(scenario, sem, **kw):
        calls.append(sem)
        res = ExploreResult(scenario.name, sem, "dpor", "incomplete", 3, 0.1)
        res.interrupted = "SIGTERM"
        return res

    monkeypatch.setattr(matrix, "explore", interrupted)
    args = ["matrix", str(EXAMPLES / "dirty_cow.toml"), "--workers", "1"]
    assert main([*args, "--semantics", "2.6.15,2.6.22"]) == 143
    assert calls == ["2.6.15"]
    assert "interrupted by SIGTERM" in capsys.readouterr().err
