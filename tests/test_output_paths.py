"""Files a scenario writes (core dumps, issue 10 item 10): the name is checked
when the file is loaded, the file stays inside --output-dir whatever the
command, and an exploration writes none unless asked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pagewalk import Kernel, parse_scenario, run_scenario
from pagewalk.cli import main
from pagewalk.errors import InputError
from pagewalk.explore.api import explore, replay


def _value(result, step: str):
    return next(r.value for r in result.results if r.step == step)


def _dump(path: str) -> str:
    return f"""
name = "dump"
[[setup]]
op = "mmap"
length = 8192
as = "m"
[[setup]]
op = "write"
addr = "m"
data = "core"
[[setup]]
op = "core_dump"
path = {path}
as = "dump"
"""


# Two threads, one of them dumping; the result check fails in every
# execution, so an exploration always reports a violation.
RACE = """
name = "race"
[[setup]]
op = "mmap"
length = 8192
as = "m"
[[thread]]
name = "dumper"
ops = [{op = "core_dump", path = "race.core", as = "dump"}]
[[thread]]
name = "writer"
ops = [{op = "write", addr = "m", data = "w"}]
[[check]]
kind = "result"
step = "dump"
value = "another.core"
"""


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory, to see what lands there."""
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    return here


# --- the name, at load time ----------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "why"),
    [
        ('"\\u0000"', "control character"),
        ('"core\\nfile"', "control character"),
        ('"/tmp/x.core"', "absolute"),
        ('"../x.core"', "'..'"),
        ('"a/../../x.core"', "'..'"),
        ('""', "non-empty"),
        ('"dir/"', "empty component"),
        ('"a//b"', "empty component"),
        ('"."', "names a directory"),
        (f'"{"c" * 256}"', "longer than 255"),
        (f'"{"/".join(["d" * 200] * 21)}"', "longer than 4095"),
    ],
    ids=[
        "nul",
        "newline",
        "absolute",
        "dotdot",
        "inner-dotdot",
        "empty",
        "dir",
        "double-slash",
        "dot",
        "name-max",
        "path-max",
    ],
)
def test_a_bad_core_dump_path_is_an_input_error_naming_file_and_field(path, why):
    with pytest.raises(InputError) as err:
        parse_scenario(_dump(path), "d.toml")
    assert err.value.where == "d.toml: setup[2].path"
    assert why in err.value.detail and "\n" not in str(err.value)


@pytest.mark.parametrize("path", ["x.core", "./x.core", "x..core", "sub/x.core", "kärn.core"])
def test_a_relative_file_name_is_accepted(path):
    scenario = parse_scenario(_dump(f'"{path}"'), "d.toml")
    assert scenario.setup[2].args["path"] == path


# --- run and show ---------------------------------------------------------------------
def test_run_writes_the_core_under_the_output_dir_only(tmp_path, cwd):
    out = tmp_path / "out"
    out.mkdir()
    result = run_scenario(parse_scenario(_dump('"x.core"')), output_dir=str(out))
    assert _value(result, "dump") == "x.core"
    assert (out / "x.core").read_bytes().startswith(b"\x7fELF")
    assert list(cwd.iterdir()) == []


def test_a_symbolic_link_out_of_the_output_dir_is_refused(tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "link").symlink_to(elsewhere)
    with pytest.raises(InputError) as err:
        run_scenario(parse_scenario(_dump('"link/x.core"'), "d.toml"), output_dir=str(out))
    assert err.value.where == "d.toml: setup[2].path"
    assert "symbolic link" in err.value.detail
    assert list(elsewhere.iterdir()) == []


def test_a_symbolic_link_inside_the_output_dir_is_followed(tmp_path):
    out = tmp_path / "out"
    (out / "cores").mkdir(parents=True)
    (out / "link").symlink_to(out / "cores")
    run_scenario(parse_scenario(_dump('"link/x.core"')), output_dir=str(out))
    assert (out / "cores" / "x.core").exists()


def test_run_without_output_dir_dumps_into_nothing_with_the_same_result(tmp_path, cwd):
    scenario = parse_scenario(_dump('"x.core"'))
    quiet = run_scenario(scenario, output_dir=None)
    written = run_scenario(scenario, output_dir=str(tmp_path))
    assert _value(quiet, "dump") == _value(written, "dump") == "x.core"
    assert quiet.stats == written.stats
    assert list(cwd.iterdir()) == []


def test_a_dump_into_nothing_returns_the_size_of_the_written_core(tmp_path):
    def dump(path: str | None) -> int:
        k = Kernel()
        p = k.spawn("p")
        a = k.mmap(p, 1 << 30, "rw")
        k.write(p, a + (5 << 20), b"x")
        return k.core_dump(p, path)

    path = tmp_path / "c.core"
    assert dump(None) == dump(str(path)) == os.path.getsize(path)


# --- explore and replay -----------------------------------------------------------------
def test_explore_writes_no_file(cwd):
    res = explore(parse_scenario(RACE))
    assert res.status == "violation"
    assert list(cwd.iterdir()) == []


def test_explore_writes_the_reported_violations_files_when_given_an_output_dir(tmp_path, cwd):
    res = explore(parse_scenario(RACE), output_dir=str(tmp_path))
    assert res.status == "violation"
    assert (tmp_path / "race.core").read_bytes().startswith(b"\x7fELF")
    assert list(cwd.iterdir()) == []


def test_replay_writes_no_file_unless_given_an_output_dir(tmp_path, cwd):
    scenario = parse_scenario(RACE)
    assert _value(replay(scenario, "0.1").result, "dump") == "race.core"
    assert list(cwd.iterdir()) == []
    replay(scenario, "0.1", output_dir=str(tmp_path))
    assert (tmp_path / "race.core").exists()


def test_the_explore_command_writes_no_file(tmp_path, cwd, capsys):
    (tmp_path / "race.toml").write_text(RACE)
    assert main(["explore", "--no-progress", str(tmp_path / "race.toml")]) == 1
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize("command", ["explore", "replay"])
def test_explore_and_replay_commands_take_an_output_dir(tmp_path, cwd, capsys, command):
    (tmp_path / "race.toml").write_text(RACE)
    out = tmp_path / "out"
    out.mkdir()
    schedule = ["0.1"] if command == "replay" else ["--no-progress"]
    argv = [command, str(tmp_path / "race.toml"), *schedule, "--output-dir", str(out)]
    assert main(argv) == 1
    assert [p.name for p in out.iterdir()] == ["race.core"]
    assert list(cwd.iterdir()) == []


def test_run_with_a_schedule_writes_under_its_output_dir(tmp_path, cwd, capsys):
    (tmp_path / "race.toml").write_text(RACE)
    out = tmp_path / "out"
    out.mkdir()
    argv = ["run", str(tmp_path / "race.toml"), "--schedule", "1.0", "--output-dir", str(out)]
    assert main(argv) == 1
    assert [p.name for p in out.iterdir()] == ["race.core"]
    assert list(cwd.iterdir()) == []


def test_the_oracles_model_side_writes_no_file(cwd):
    from pagewalk.oracle.model_side import ModelRun

    run = ModelRun(parse_scenario(_dump('"x.core"')), None)
    steps = [run.run_op(op, label) for op, label in run.ops()]
    assert steps[-1].result.value == "x.core"
    assert list(cwd.iterdir()) == []
