"""`pagewalk profiles [--json]` and the profile names: every profile with
its base tree and switches (each with its commit), the old names as
aliases that scenario files and --semantics still accept."""

from __future__ import annotations

import json

import pytest

from pagewalk.cli import build_parser, main
from pagewalk.errors import InputError
from pagewalk.kernel.semantics import ALIASES, PROFILES, SWITCH_COMMITS, get_semantics
from pagewalk.scenario.loader import parse_scenario


def profiles_json(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    assert main(["profiles", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_profiles_json_lists_every_profile_in_order(capsys) -> None:
    assert [row["name"] for row in profiles_json(capsys)] == list(PROFILES)


def test_profiles_json_rows_have_the_spec_fields(capsys) -> None:
    for row in profiles_json(capsys):
        assert {"name", "base", "switches"} <= row.keys()
        for sw in row["switches"]:
            assert set(sw) == {"name", "commit", "summary"}


def test_every_switch_has_a_commit() -> None:
    names = {f for f in get_semantics("seed").describe()}
    assert names == set(SWITCH_COMMITS)


def test_the_seed_lists_no_switches_and_6_18_lists_the_family(capsys) -> None:
    rows = {row["name"]: row for row in profiles_json(capsys)}
    assert rows["seed"]["switches"] == []
    family = {sw["name"] for sw in rows["6.18"]["switches"]}
    assert {"foll_pin", "wp_reuse_page_count", "page_anon_exclusive"} <= family
    assert "gup_cow_break_on_read" not in family  # reverted in v5.9


def test_only_the_v5_8_step_breaks_cow_on_read(capsys) -> None:
    rows = profiles_json(capsys)
    with_it = [
        r["name"] for r in rows if any(s["name"] == "gup_cow_break_on_read" for s in r["switches"])
    ]
    assert with_it == ["seed+gup-cow-break"]


def test_old_names_are_shown_with_their_note(capsys) -> None:
    rows = {row["name"]: row for row in profiles_json(capsys)}
    assert [a["name"] for a in rows["seed"]["aliases"]] == ["2.6.15"]
    assert "v2.6.15-rc1" in rows["seed"]["aliases"][0]["note"]


def test_profiles_text_names_every_profile_and_old_name(capsys) -> None:
    assert main(["profiles"]) == 0
    out = capsys.readouterr().out
    for name in [*PROFILES, *ALIASES]:
        assert name in out


@pytest.mark.parametrize(("old", "new"), [(old, new) for old, (new, _) in ALIASES.items()])
def test_an_old_name_selects_its_profile(old: str, new: str) -> None:
    assert get_semantics(old) is PROFILES[new]


def test_a_scenario_naming_an_old_profile_still_loads() -> None:
    scenario = parse_scenario('name = "x"\nsemantics = "4.8.3"\n', "x.toml")
    assert get_semantics(scenario.semantics).name == "seed+foll-cow"


def test_run_accepts_an_old_name_on_the_command_line(tmp_path, capsys) -> None:
    path = tmp_path / "x.toml"
    path.write_text('name = "x"\n[[setup]]\nop = "mmap"\nlength = 4096\n')
    assert main(["run", "--json", "--semantics", "2.6.22", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["semantics"] == "2.6.22"


def test_semantics_help_points_at_pagewalk_profiles() -> None:
    text = build_parser()._subparsers._group_actions[0].choices["run"].format_help()
    assert "pagewalk profiles" in " ".join(text.split())


def test_unknown_profile_error_lists_profiles_and_old_names() -> None:
    with pytest.raises(InputError) as err:
        get_semantics("9.9")
    assert "seed+no-foll-cow" in str(err.value) and "2.6.14" in str(err.value)
