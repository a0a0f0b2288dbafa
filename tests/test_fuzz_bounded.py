"""The fuzz benchmark (benchmarks/fuzz_scenarios.py) in small: 150 fuzzed
scenario files, run in-process through the command line's ``main``.  No
run may raise (a traceback), and every rejected file must be reported on one
line with exit status 2.  Every fifth case is explored (bounded) instead of
run.  The series is fixed; ``PAGEWALK_FUZZ_CASES`` / ``PAGEWALK_FUZZ_SEED``
run another."""

from __future__ import annotations

import os
import traceback

import pytest

from fuzz_cases import FINE_EXITS, arguments, command_for, draw_cases, judge
from pagewalk.cli import main

CASES = int(os.environ.get("PAGEWALK_FUZZ_CASES", "150"))
SEED = int(os.environ.get("PAGEWALK_FUZZ_SEED", "1"))
EXPLORE_EVERY = 5
MAX_EXECUTIONS = 20


@pytest.fixture(scope="module")
def cases():
    return draw_cases(CASES, SEED)


def run_in_process(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``pagewalk ARGV`` as ``python -m pagewalk`` would end: its status, and
    an escaping exception printed as a traceback."""
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    except Exception:
        traceback.print_exc()
        status = 1
    out, err = capsys.readouterr()
    return status, out, err


def test_fuzzed_files_never_crash_and_are_rejected_on_one_line(
    cases, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)  # explore's core files
    bad = []
    for case in cases:
        path = tmp_path / f"case-{case.index}.toml"
        path.write_bytes(case.data)
        command = command_for(case, EXPLORE_EVERY)
        argv = arguments(command, str(path), str(tmp_path), MAX_EXECUTIONS)
        status, out, err = run_in_process(argv, capsys)
        verdict = judge(command, status, err, out)
        if verdict.kind not in ("ok", "rejected"):
            bad.append(
                f"case {case.index} ({case.origin}, {command}): {verdict.kind}: "
                f"{verdict.detail}\n{case.data[:2000]!r}"
            )
    assert not bad, f"{len(bad)} of {len(cases)} cases:\n" + "\n\n".join(bad[:5])


def test_the_series_holds_valid_and_invalid_files(cases, tmp_path, capsys):
    """Not only rejections: enough files load and run for the test to mean something."""
    statuses = []
    for case in cases[:60]:
        path = tmp_path / f"case-{case.index}.toml"
        path.write_bytes(case.data)
        status, _, _ = run_in_process(arguments("run", str(path), str(tmp_path), 0), capsys)
        statuses.append(status)
    assert statuses.count(2) >= 10
    assert sum(s in FINE_EXITS["run"] for s in statuses) >= 5


def test_judge_flags_a_traceback_a_long_error_and_a_hang():
    tb = "Traceback (most recent call last):\n  ...\nKeyError: 'x'\n"
    assert judge("run", 1, tb).kind == "traceback"
    assert judge("run", 2, "pagewalk: error: a\nmore\n").kind == "bad-error"
    assert judge("explore", None, "").kind == "hang"
    assert judge("run", 3, "").kind == "unexpected-exit"
    assert judge("run", 2, "pagewalk: error: x.toml: name: missing\n").kind == "rejected"
