"""Issue 10's wrong answers and bounds: a model defect is an internal error
(never a kernel bug), an interrupt ends a search with its summary, the step
bound grows with the work asked for, schedules and --workers are bounded,
output files the user asked for fail cleanly, and --help says what it must."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from greenlet import GreenletExit

from pagewalk.cli import main
from pagewalk.errors import EXIT_INTERNAL, InputError, InternalError
from pagewalk.explore import explore, replay
from pagewalk.explore.cli import Progress
from pagewalk.explore.program import World, explore_program
from pagewalk.kernel.kernel import Kernel
from pagewalk.scenario.loader import parse_scenario
from pagewalk.sched import decode_schedule, encode_schedule

EXAMPLES = Path(__file__).parent.parent / "examples"

TWO_THREADS = """
name = "two"
[[setup]]
op = "mmap"
length = 8192
as = "m"
[[thread]]
name = "a"
ops = [{op = "munmap", addr = "m", length = 4096}]
[[thread]]
name = "b"
ops = [{op = "write", addr = "m", data = "x"}]
"""


def write(tmp_path: Path, text: str, name: str = "s.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.fixture
def broken_munmap(monkeypatch):
    """A model defect: munmap raises a Python exception inside a thread."""

    def munmap(self, proc, addr, length):
        raise AttributeError("'NoneType' object has no attribute 'mmap_sem'")

    monkeypatch.setattr(Kernel, "munmap", munmap)


# -- a model defect is an internal error --------------------------------------------
def test_a_python_exception_in_a_thread_is_an_internal_error_with_its_schedule(broken_munmap):
    with pytest.raises(InternalError) as err:
        explore(parse_scenario(TWO_THREADS))
    assert err.value.task == "a" and err.value.schedule is not None
    assert "AttributeError" in err.value.traceback


def test_explore_exits_70_for_a_model_defect_and_reports_no_violation(
    broken_munmap, tmp_path, capsys
):
    code = main(["explore", write(tmp_path, TWO_THREADS)])
    out, err = capsys.readouterr()
    assert code == EXIT_INTERNAL == 70
    assert "VIOLATION" not in out and "internal error" in err
    assert "schedule:" in err and "Traceback" in err


def test_run_schedule_and_replay_report_a_model_defect_the_same_way(
    broken_munmap, tmp_path, capsys
):
    path = write(tmp_path, TWO_THREADS)
    assert main(["run", "--schedule", "0", path]) == EXIT_INTERNAL
    assert main(["replay", path, "0"]) == EXIT_INTERNAL
    assert "VIOLATION" not in capsys.readouterr().out


def test_a_model_defect_in_json_mode_is_an_error_object(broken_munmap, tmp_path, capsys):
    assert main(["explore", "--json", write(tmp_path, TWO_THREADS)]) == EXIT_INTERNAL
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == "error" and doc["internal"] is True and doc["schedule"] is not None


def test_a_kernel_bug_in_a_thread_stays_a_violation(monkeypatch, tmp_path):
    from pagewalk.errors import ModelFailure

    def munmap(self, proc, addr, length):
        raise ModelFailure("mm/mmap.c:do_munmap: BUG_ON(test)")

    monkeypatch.setattr(Kernel, "munmap", munmap)
    res = explore(parse_scenario(TWO_THREADS))
    assert res.status == "violation" and res.violation.check == "bug"


def test_bad_input_in_a_program_thread_propagates_as_in_a_scenario():
    def program(w: World) -> None:
        def bad() -> None:
            raise InputError("no such thing", "program")

        w.thread("a", bad)

    with pytest.raises(InputError, match="no such thing"):
        explore_program(program)


def test_an_exception_of_a_users_program_thread_is_a_panic_violation():
    def program(w: World) -> None:
        x = w.var("x", 0)

        def boom() -> None:
            x.read()
            raise ValueError("user code failed")

        w.thread("a", boom)

    res = explore_program(program)
    assert res.status == "violation" and res.violation.message.startswith("panic:")


# -- interrupts ------------------------------------------------------------------------
def _interrupted(tmp_path: Path, sig: int, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pagewalk", "explore", str(EXAMPLES / "dirty_cow.toml")]
    cmd += ["--strategy", "random", "--max-executions", "100000000", "--no-progress", *extra]
    # A shell without job control starts background jobs with SIGINT ignored,
    # and the child would inherit that: give it the default disposition back.
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        time.sleep(2.0)
        sent = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        assert time.monotonic() - sent < 5, "the search did not stop at once"
    finally:
        proc.kill()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_ctrl_c_ends_a_search_with_its_summary_and_exit_130(tmp_path):
    proc = _interrupted(tmp_path, signal.SIGINT, "--semantics", "4.8.3")
    assert proc.returncode == 130, proc.stderr
    assert "interrupted by SIGINT" in proc.stdout and "executions:" in proc.stdout
    assert "VIOLATION" not in proc.stdout


def test_sigterm_ends_a_search_with_its_json_summary_and_exit_143(tmp_path):
    proc = _interrupted(tmp_path, signal.SIGTERM, "--semantics", "4.8.3", "--json")
    assert proc.returncode == 143, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "incomplete" and doc["interrupted"] == "SIGTERM"
    assert doc["executions"] > 0 and doc["violation"] is None


# -- the step bound ------------------------------------------------------------------------
MLOCK_8M = """
name = "mlock-8m"
[[setup]]
op = "mmap"
length = 8388608
as = "m"
[[thread]]
name = "a"
ops = [{op = "mlock", addr = "m", length = 8388608}]
[[thread]]
name = "b"
ops = [{op = "read", addr = "m", length = 1}]
"""


def test_mlock_of_8_mib_is_not_a_livelock():
    ex = replay(parse_scenario(MLOCK_8M), "0")
    assert all(c.ok for c in ex.result.checks), [c.message for c in ex.result.checks]
    assert sum(1 for task, _ in ex.steps if task == 0) > 10_000


def test_a_task_that_loops_without_end_is_still_nontermination():
    def program(w: World) -> None:
        flag = w.var("flag", 0)

        def spin() -> None:
            while not flag.read():
                pass

        w.thread("a", spin)

    res = explore_program(program, max_steps=500)
    assert res.status == "violation" and res.violation.message.startswith("nontermination")


def test_max_steps_is_settable_on_the_command_line(tmp_path, capsys):
    path = write(tmp_path, MLOCK_8M)
    assert main(["run", "--schedule", "0", "--max-steps", "1", path]) == 0
    assert main(["replay", path, "0", "--max-steps", "1"]) == 0
    capsys.readouterr()


# -- schedules ------------------------------------------------------------------------
def test_a_huge_schedule_is_refused_before_it_is_expanded():
    start = time.monotonic()
    with pytest.raises(InputError, match="longer than"):
        decode_schedule("0*10000000000")
    assert time.monotonic() - start < 1


@pytest.mark.parametrize("text", ["\u0663", "0*\u0663", "0.1x", "0**2", "-1"])
def test_a_schedule_of_anything_but_ascii_digits_is_refused(text):
    with pytest.raises(InputError, match="ASCII digits"):
        decode_schedule(text)


def test_a_schedule_longer_than_its_execution_is_refused():
    sc = parse_scenario(TWO_THREADS)
    whole = encode_schedule(replay(sc, "").choices)
    assert replay(sc, whole).choices == decode_schedule(whole)
    with pytest.raises(InputError, match="ended after"):
        replay(sc, whole + ".0")


def test_replay_cli_refuses_a_huge_schedule_with_one_line(tmp_path, capsys):
    assert main(["replay", write(tmp_path, TWO_THREADS), "0*10000000000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "schedule" in err


# -- workers, timeout, output files, messages -------------------------------------------
def test_workers_past_the_cpu_count_is_bad_input(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["explore", "--workers", "100000", write(tmp_path, TWO_THREADS)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"at most {os.cpu_count()}" in err


def test_run_timeout_stops_a_long_run_with_exit_3(tmp_path, capsys):
    text = """
name = "long"
[[setup]]
op = "mmap"
length = 4294967296
flags = ["private", "locked"]
"""
    # in a process of its own, as a user runs it (SIGALRM is process-wide)
    cmd = [sys.executable, "-m", "pagewalk", "run", "--timeout", "0.3", "--json"]
    start = time.monotonic()
    proc = subprocess.run([*cmd, write(tmp_path, text)], capture_output=True, text=True)
    out, err = proc.stdout, proc.stderr
    assert proc.returncode == 3, (out, err)
    assert time.monotonic() - start < 30  # faulting 4 GiB in takes minutes
    assert json.loads(out)["status"] == "error" and "--timeout" in err


def test_trace_html_that_cannot_be_written_prints_the_result_first(tmp_path, capsys):
    target = str(tmp_path / "missing" / "t.html")
    code = main(["explore", str(EXAMPLES / "dirty_cow.toml"), "--trace-html", target])
    out, err = capsys.readouterr()
    assert code == 2 and "VIOLATION" in out
    assert err.count("\n") == 1 and "--trace-html" in err


def test_json_input_error_of_explore_is_an_error_object(tmp_path, capsys):
    assert main(["explore", "--json", write(tmp_path, "name = 1\n")]) == 2
    assert json.loads(capsys.readouterr().out)["status"] == "error"


def test_explore_all_counts_violations_and_lists_each_distinct_one(capsys):
    path = str(EXAMPLES / "dirty_cow.toml")
    assert main(["explore", path, "--all", "--strategy", "dfs", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "distinct" in out
    assert main(["explore", path, "--all", "--strategy", "dfs", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["violations"] > 1
    assert sum(d["count"] for d in doc["distinct_violations"]) == doc["violations"]


@pytest.mark.parametrize("command", ["run", "explore", "replay"])
def test_help_lists_exit_codes_and_profiles(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "exit status:" in out and "70" in out and "2.6.15" in out and "4.8.3" in out


def test_help_of_replay_describes_the_schedule_format(capsys):
    with pytest.raises(SystemExit):
        main(["replay", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "run-length encoded" in out.replace("run- length", "run-length")


def test_help_of_explore_explains_every_bound(capsys):
    with pytest.raises(SystemExit):
        main(["explore", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--max-executions N stop after N executions" in out
    assert "--timeout SEC stop starting executions" in out


def test_progress_prints_plain_lines_when_stderr_is_not_a_terminal(capsys):
    progress = Progress(True, every=0.0)
    progress(10, 0, 1.0)
    progress(20, 1, 2.0)
    err = capsys.readouterr().err
    assert err.count("pagewalk: progress:") == 2 and "\r" not in err


def test_ctrl_c_while_a_task_unwinds_ends_the_search():
    """Regression: a KeyboardInterrupt raised while the scheduler unwinds a
    suspended task (GreenletExit at the end of an execution) was caught by the
    task's body and dropped, and the search went on as if no Ctrl-C had come
    (`pagewalk explore` hung after SIGINT, about one time in two under load)."""

    def program(w: World) -> None:
        x = w.var("x", 0)

        def victim() -> None:
            try:
                x.read()
                x.read()
            except GreenletExit:  # the Ctrl-C lands here, during the unwind
                raise KeyboardInterrupt from None

        def boom() -> None:
            x.read()
            raise ValueError("ends the execution while victim is suspended")

        w.thread("victim", victim)
        w.thread("boom", boom)

    res = explore_program(program, strategy="dfs", stop_first=False)
    assert res.interrupted == "SIGINT" and res.executions == 1
