"""The ``pagewalk run`` command line (shared/spec/scenario.md, "Command line"
and "JSON output"): exit codes, the fixed JSON fields, the human report, input
errors, and a fuzz test of mutated example scenarios."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pagewalk.cli import main
from pagewalk.kernel.semantics import PROFILES

ROOT = Path(__file__).parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))
ERRNO_RE = re.compile(r"^E[A-Z0-9]+$")
SIGNALS = {"SIGSEGV", "SIGBUS"}

# --------------------------------------------------------------------------
# Scenarios

PASSING = """\
name = "passing"

[[setup]]
op = "mmap"
length = 8192
prot = "rw"
as = "buf"

[[setup]]
op = "write"
addr = "buf+16"
data = "hello"
as = "store"

[[setup]]
op = "read"
addr = "buf+16"
length = 5
expect = "hello"

[[check]]
kind = "memory"
addr = "buf+16"
data = "hello"

[[check]]
kind = "result"
step = "store"
value = 0

[[check]]
kind = "no_leaks"
"""

WRONG_EXPECT = """\
name = "wrong_expect"

[[setup]]
op = "mmap"
length = 4096
prot = "rw"
as = "buf"

[[setup]]
op = "write"
addr = "buf"
data = "actual"

[[setup]]
op = "read"
addr = "buf"
length = 6
expect = "wanted"
as = "load"
"""

FAILING_PAGE_CHECK = """\
name = "failing_page_check"

[[setup]]
op = "mmap"
length = 4096
prot = "rw"
as = "buf"

[[check]]
kind = "page"
addr = "buf"
present = true
"""

# Every kind of result: values, errno names and both signals.
ERRORS = """\
name = "errors"

[[file]]
path = "/ro"
content = "read-only file"
mode = "r"

[[setup]]
op = "mmap"
length = 4096
prot = "r"
as = "ro"

[[setup]]
op = "write"
addr = "ro"
data = "x"
as = "segv"

[[setup]]
op = "munmap"
addr = "ro+1"
length = 4096
as = "einval"

[[setup]]
op = "mmap"
file = "/ro"
length = 8192
prot = "r"
flags = ["private"]
as = "filemap"

[[setup]]
op = "read"
addr = "filemap+4096"
length = 1
as = "sigbus"

[[setup]]
op = "mmap"
file = "/ro"
length = 4096
prot = "rw"
flags = ["shared"]
as = "eacces"

[[setup]]
op = "gup"
addr = 4096
pages = 1
as = "efault"

[[setup]]
op = "mem_read"
addr = "filemap"
length = 4
as = "peek"

[[check]]
kind = "result"
step = "segv"
signal = "SIGSEGV"

[[check]]
kind = "result"
step = "sigbus"
signal = "SIGBUS"

[[check]]
kind = "result"
step = "einval"
errno = "EINVAL"

[[check]]
kind = "result"
step = "eacces"
errno = "EACCES"

[[check]]
kind = "result"
step = "efault"
errno = "EFAULT"

[[check]]
kind = "result"
step = "peek"
value = 4
"""

# The mmap fails (a shared writable mapping of a read-only file), and a later
# operation uses its address.
FAILED_MMAP_REFERENCE = """\
name = "failed_mmap_reference"

[[file]]
path = "/ro"
content = "abc"
mode = "r"

[[setup]]
op = "mmap"
file = "/ro"
length = 4096
prot = "rw"
flags = ["shared"]
as = "m"

[[setup]]
op = "write"
addr = "m+8"
data = "x"
"""


def write(tmp_path: Path, text: str, name: str = "s.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["run", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code, out, err = run(capsys, "--json", *argv)
    assert err == ""
    return code, json.loads(out)


def assert_one_line_error(err: str, *needles: str) -> None:
    assert err.startswith("pagewalk: error: "), err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)


# --------------------------------------------------------------------------
# Exit status


def test_passing_scenario_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, write(tmp_path, PASSING))
    assert (code, err) == (0, "")
    assert out.rstrip().endswith("result: ok")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_exits_0(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run_json(capsys, "--check", str(path))
    assert (code, doc["status"]) == (0, "ok")


def test_wrong_expect_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run_json(capsys, write(tmp_path, WRONG_EXPECT))
    assert code == 1
    assert doc["status"] == "violation"
    failed = [c for c in doc["checks"] if not c["ok"]]
    assert [c["kind"] for c in failed] == ["expect"]
    assert "load" in failed[0]["message"]


def test_wrong_expect_text_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, write(tmp_path, WRONG_EXPECT))
    assert (code, err) == (1, "")
    assert re.search(r"FAIL\s+expect", out)
    assert "result: violation" in out


def test_failing_page_check_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run_json(capsys, write(tmp_path, FAILING_PAGE_CHECK))
    assert code == 1
    assert doc["status"] == "violation"
    assert [(c["kind"], c["ok"]) for c in doc["checks"]] == [("page", False)]
    assert "present" in doc["checks"][0]["message"]


# A kernel BUG() the model reaches faithfully: in 2.6.15 find_extend_vma()
# calls make_pages_present() for a VM_LOCKED stack it grows, and that works on
# current->mm -- the tracer's address space, where the vma at the address ends
# below the tracee's old stack start: BUG_ON(end > vma->vm_end).
KERNEL_BUG = """\
name = "kernel_bug"

[[process]]
name = "tracee"

[[process]]
name = "debugger"

[[setup]]
op = "mmap"
process = "tracee"
addr = 0x10010000
length = 8192
prot = "rw"
flags = ["private", "fixed", "growsdown", "locked"]

[[setup]]
op = "mmap"
process = "debugger"
addr = 0x1000e000
length = 4096
prot = "rw"
flags = ["private", "fixed"]

[[setup]]
op = "mem_read"
process = "tracee"
by = "debugger"
addr = 0x1000e000
length = 1

[[check]]
kind = "no_leaks"
"""


def test_kernel_bug_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run_json(capsys, write(tmp_path, KERNEL_BUG))
    assert code == 1
    assert doc["status"] == "violation"
    bugs = [c for c in doc["checks"] if c["kind"] == "bug"]
    assert len(bugs) == 1 and not bugs[0]["ok"]
    assert "make_pages_present" in bugs[0]["message"]
    code, out, err = run(capsys, write(tmp_path, KERNEL_BUG))
    assert (code, err) == (1, "")
    assert re.search(r"FAIL\s+bug\s+kernel BUG at", out)


def test_unknown_key_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, PASSING + "bogus = 1\n")
    code, out, err = run(capsys, path)
    assert (code, out) == (2, "")
    assert_one_line_error(err, path, "bogus")


def test_toml_syntax_error_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, 'name = "x\n')
    code, out, err = run(capsys, path)
    assert (code, out) == (2, "")
    assert_one_line_error(err, path)


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / "does-not-exist.toml")
    code, out, err = run(capsys, path)
    assert (code, out) == (2, "")
    assert_one_line_error(err, path)


def test_unknown_semantics_exits_2_naming_the_profiles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--semantics", "9.9.9", write(tmp_path, PASSING))
    assert (code, out) == (2, "")
    assert_one_line_error(err, "9.9.9", *PROFILES)


def test_unknown_semantics_in_the_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path, PASSING.replace('name = "passing"', 'name = "passing"\nsemantics = "1.0"')
    )
    code, out, err = run(capsys, path)
    assert (code, out) == (2, "")
    assert_one_line_error(err, path, "semantics", "1.0", *PROFILES)


def test_every_known_semantics_is_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, PASSING)
    for name in PROFILES:
        code, doc = run_json(capsys, "--semantics", name, path)
        assert (code, doc["semantics"]) == (0, name)


def test_bad_schedule_exits_2_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before the explorer existed any --schedule was refused; with it, a
    schedule that is not one is.  Either way: exit 2, one line, no traceback."""
    code, out, err = run(capsys, "--schedule", "!!not a schedule!!", write(tmp_path, PASSING))
    assert (code, out) == (2, "")
    assert_one_line_error(err, "schedule")


def test_reference_to_a_failed_mmap_exits_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, FAILED_MMAP_REFERENCE)
    code, out, err = run(capsys, path)
    assert (code, out) == (2, "")
    assert_one_line_error(err, path, "setup[1].addr", "'m'")


@pytest.mark.parametrize("argv", [[], ["--json"], ["--semantics"], ["--bogus", "x.toml"]])
def test_bad_command_line_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", *argv])
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert_one_line_error(err)


# --------------------------------------------------------------------------
# JSON output


def test_json_has_the_fixed_fields_with_their_types(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = run_json(capsys, write(tmp_path, ERRORS))
    assert code == 0, doc["checks"]
    assert {"scenario", "semantics", "status", "results", "checks", "stats"} <= doc.keys()
    assert doc["scenario"] == "errors"
    assert doc["semantics"] == "2.6.15"
    assert doc["status"] == "ok"
    assert isinstance(doc["results"], list) and len(doc["results"]) == 8
    for res in doc["results"]:
        assert {"step", "op", "value", "errno", "signal"} <= res.keys()
        assert isinstance(res["step"], str) and isinstance(res["op"], str)
        assert res["value"] is None or (
            isinstance(res["value"], int | str) and not isinstance(res["value"], bool)
        )
        assert res["errno"] is None or ERRNO_RE.match(res["errno"])
        assert res["signal"] is None or res["signal"] in SIGNALS
    assert isinstance(doc["checks"], list) and len(doc["checks"]) == 6
    for check in doc["checks"]:
        assert {"kind", "ok", "message"} <= check.keys()
        assert isinstance(check["kind"], str) and isinstance(check["message"], str)
        assert check["ok"] is True
    stats = doc["stats"]
    for key in ("minor_faults", "major_faults", "page_tables", "pages_allocated"):
        assert isinstance(stats[key], int) and not isinstance(stats[key], bool), key
        assert stats[key] >= 0


def test_json_results_carry_errno_names_and_signals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, doc = run_json(capsys, write(tmp_path, ERRORS))
    by_step = {r["step"]: r for r in doc["results"]}
    assert list(by_step) == [
        "ro",
        "segv",
        "einval",
        "filemap",
        "sigbus",
        "eacces",
        "efault",
        "peek",
    ]
    assert [r["op"] for r in doc["results"]] == [
        "mmap",
        "write",
        "munmap",
        "mmap",
        "read",
        "mmap",
        "gup",
        "mem_read",
    ]
    assert by_step["segv"]["signal"] == "SIGSEGV"
    assert by_step["sigbus"]["signal"] == "SIGBUS"
    assert (by_step["einval"]["errno"], by_step["einval"]["value"]) == ("EINVAL", None)
    assert (by_step["eacces"]["errno"], by_step["eacces"]["value"]) == ("EACCES", None)
    assert (by_step["efault"]["errno"], by_step["efault"]["value"]) == ("EFAULT", None)
    assert (by_step["peek"]["value"], by_step["peek"]["errno"]) == (4, None)
    for step in ("ro", "filemap"):  # mmap results are addresses
        assert isinstance(by_step[step]["value"], int) and by_step[step]["value"] > 0
        assert by_step[step]["errno"] is None and by_step[step]["signal"] is None


def test_json_step_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A result's step is its `as` name, else setup[i] / THREAD[i] / final[i]."""
    text = (
        PASSING
        + """
[[thread]]
name = "t"
ops = [{ op = "read", addr = "buf", length = 1 }]

[[final]]
op = "munmap"
addr = "buf"
length = 8192
"""
    )
    _, doc = run_json(capsys, write(tmp_path, text))
    assert [r["step"] for r in doc["results"]] == ["buf", "store", "setup[2]", "t[0]", "final[0]"]


def test_json_violation_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, doc = run_json(capsys, write(tmp_path, FAILING_PAGE_CHECK))
    assert doc["status"] == "violation"


# --------------------------------------------------------------------------
# Human output


def test_text_report_has_steps_checks_and_stats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, write(tmp_path, ERRORS))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["step", "process"])
    for word in ("op", "arguments", "result"):
        assert word in lines[header].split()
    rows = lines[header + 1 : header + 9]
    steps = ["ro", "segv", "einval", "filemap", "sigbus", "eacces", "efault", "peek"]
    assert [row.split()[0] for row in rows] == steps
    assert rows[1].rstrip().endswith("SIGSEGV")
    assert rows[2].rstrip().endswith("EINVAL")
    assert rows[4].rstrip().endswith("SIGBUS")
    assert rows[5].rstrip().endswith("EACCES")
    assert rows[6].rstrip().endswith("EFAULT")
    checks = lines.index("checks:")
    check_rows = lines[checks + 1 : checks + 7]
    assert all(row.split()[:2] == ["ok", "result"] for row in check_rows), check_rows
    stats = next(line for line in lines if line.startswith("stats:"))
    for key in ("minor_faults", "major_faults", "page_tables", "pages_allocated"):
        assert re.search(rf"\b{key}=\d+\b", stats), stats
    assert lines[-1] == "result: ok"


# --------------------------------------------------------------------------
# The real executable


def assert_json_error_or_nothing(out: str, err: str, as_json: bool) -> None:
    """Bad input: with --json, the spec's error object on stdout (the same
    message as stderr's line), else nothing on stdout."""
    if not as_json:
        assert out == ""
        return
    doc = json.loads(out)
    assert doc["status"] == "error"
    assert err.strip() == f"pagewalk: error: {doc['error']}"


@pytest.mark.parametrize(
    ("text", "want"),
    [(PASSING, 0), (WRONG_EXPECT, 1), (FAILING_PAGE_CHECK, 1), (PASSING + "x = 1\n", 2)],
    ids=["ok", "expect", "page", "bad-input"],
)
def test_subprocess_exit_status(tmp_path: Path, text: str, want: int) -> None:
    path = write(tmp_path, text)
    proc = subprocess.run(
        [sys.executable, "-m", "pagewalk", "run", "--json", path],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == want, proc.stderr
    if want == 2:
        assert_json_error_or_nothing(proc.stdout, proc.stderr, True)
        assert_one_line_error(proc.stderr, path)
    else:
        assert proc.stderr == ""
        doc = json.loads(proc.stdout)
        assert doc["status"] == ("ok" if want == 0 else "violation")


def test_subprocess_runs_an_example_as_text(tmp_path: Path) -> None:
    example = ROOT / "examples" / "zero_page_read.toml"
    proc = subprocess.run(
        [sys.executable, "-m", "pagewalk", "run", str(example)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert "checks:" in proc.stdout and "stats:" in proc.stdout
    assert proc.stdout.rstrip().endswith("result: ok")


# --------------------------------------------------------------------------
# Regressions


# Longer ones are refused by the loader (test_limits.py).
@pytest.mark.parametrize("length", [64 << 20])
def test_huge_mem_read_length_is_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], length: int
) -> None:
    text = f"""\
name = "huge_mem_read"

[[setup]]
op = "mmap"
length = 4096
prot = "rw"
as = "buf"

[[setup]]
op = "mem_read"
addr = "buf"
length = {length}
as = "peek"

[[check]]
kind = "result"
step = "peek"
value = 4096
"""
    code, doc = run_json(capsys, write(tmp_path, text))
    assert code == 0, doc["checks"]


# --------------------------------------------------------------------------
# Fuzzing: mutated examples never crash the command


CHARS = st.sampled_from(list("\"'[]{}=,.+#\\\n \t0123456789-_xabcdefoprsw")) | st.characters()
MUTATION = st.one_of(
    st.tuples(st.just("delete"), st.integers(0, 10**6)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), CHARS),
    st.tuples(st.just("replace"), st.integers(0, 10**6), CHARS),
    st.tuples(st.just("drop_line"), st.integers(0, 10**6)),
    st.tuples(st.just("dup_line"), st.integers(0, 10**6)),
)


def mutate(text: str, mutations: list[tuple]) -> str:
    for kind, pos, *rest in mutations:
        if kind in ("drop_line", "dup_line"):
            lines = text.splitlines(keepends=True)
            if not lines:
                continue
            i = pos % len(lines)
            lines[i : i + 1] = [] if kind == "drop_line" else [lines[i], lines[i]]
            text = "".join(lines)
        elif not text:
            text = rest[0] if kind == "insert" else text
        else:
            i = pos % (len(text) + (kind == "insert"))
            if kind == "delete":
                text = text[:i] + text[i + 1 :]
            elif kind == "insert":
                text = text[:i] + rest[0] + text[i:]
            else:
                text = text[:i] + rest[0] + text[i + 1 :]
    return text


FUZZ = settings(
    max_examples=250,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
@FUZZ
@given(
    mutations=st.lists(MUTATION, min_size=1, max_size=4), check=st.booleans(), as_json=st.booleans()
)
def test_mutated_examples_never_crash(
    example: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mutations: list[tuple],
    check: bool,
    as_json: bool,
) -> None:
    text = mutate(example.read_text(), mutations)
    path = tmp_path / example.name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    argv = ["run", "--output-dir", str(tmp_path), str(path)]
    argv += ["--check"] * check + ["--json"] * as_json
    code = main(argv)  # any exception escaping main fails the test
    out, err = capsys.readouterr()
    assert code in (0, 1, 2)
    event(f"exit {code}")
    if code == 2:
        assert_json_error_or_nothing(out, err, as_json)
        assert_one_line_error(err)
    else:
        assert err == ""
        if as_json:
            assert json.loads(out)["status"] == ("ok" if code == 0 else "violation")
        else:
            assert out.rstrip().endswith("result: ok" if code == 0 else ")")
