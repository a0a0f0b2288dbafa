"""The host-kernel oracle (``pagewalk oracle``, docs/oracle.md).

The suite in ``scenarios/`` runs on the model and on this machine's kernel;
every scenario must end with zero mismatches.  The host part needs root and
PFNs in /proc/self/pagemap; without them those tests are skipped with the
reason.  A scenario whose mismatch is a real model bug is listed in
MODEL_BUGS and marked xfail(strict=True).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from pagewalk.oracle import RULES, host_problem, run_oracle
from pagewalk.oracle.classify import MISMATCH, _fault_around_window
from pagewalk.oracle.model_side import VmaInfo
from pagewalk.scenario.loader import load_scenario
from pagewalk.scenario.runner import run_scenario

HERE = Path(__file__).parent
SCENARIOS = sorted((HERE / "scenarios").glob("*.toml"))
DOC = HERE.parents[1] / "docs" / "oracle.md"
PROBLEM = host_problem()
needs_host = pytest.mark.skipif(
    PROBLEM is not None, reason=f"host-kernel oracle unavailable: {PROBLEM}"
)

#: scenario stem -> why the model is wrong (the test is xfail(strict=True))
MODEL_BUGS: dict[str, str] = {}


def _params():
    for path in SCENARIOS:
        marks = []
        if path.stem in MODEL_BUGS:
            marks.append(pytest.mark.xfail(strict=True, reason=MODEL_BUGS[path.stem]))
        yield pytest.param(path, id=path.stem, marks=marks)


def _mismatches(report) -> list[str]:
    return [
        f"{s.label}: {r.observable}: model {r.model!r} host {r.host!r}"
        for s in report.steps
        for r in s.rows
        if r.verdict == MISMATCH
    ]


# --- without the host ---------------------------------------------------------------
def test_the_suite_has_at_least_30_scenarios():
    assert len(SCENARIOS) >= 30


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_suite_scenarios_run_on_the_model(path):
    result = run_scenario(load_scenario(str(path)), check_invariants=True)
    assert result.failure is None, result.failure


def test_fault_around_window_matches_the_measured_geometry():
    # host-kernel-observables.md item 4: a 64-page tmpfs vma starting 3 pages
    # after a 2 MiB boundary
    start = (1 << 21) * 0x100 + 3 * 4096
    vma = VmaInfo(start, start + 64 * 4096, 0, 0, "/f", 64 * 4096)

    def pages(index):
        return [(y - start) >> 12 for y in _fault_around_window(start + index * 4096, vma)]

    assert pages(17) == list(range(13, 29))
    assert pages(0) == list(range(0, 16))
    assert pages(63) == [61, 62, 63]
    short = VmaInfo(start, start + 64 * 4096, 0, 0, "/f", 5 * 4096 + 1)  # EOF in page 5
    assert [(y - start) >> 12 for y in _fault_around_window(start, short)] == list(range(6))


def test_every_rule_is_documented_with_its_commit():
    text = DOC.read_text()
    for rule in RULES.values():
        assert f"`{rule.id}`" in text, f"docs/oracle.md lacks rule {rule.id}"
        ids = re.findall(r"\b[0-9a-f]{12}\b", rule.commit)
        assert ids or "UNVERIFIED" in rule.commit, rule.id
        for commit in ids:
            assert commit in text, f"docs/oracle.md lacks commit {commit} of {rule.id}"


# --- on the host kernel ----------------------------------------------------------------
@needs_host
@pytest.mark.parametrize("path", list(_params()))
def test_scenario_has_no_mismatch(path):
    report = run_oracle(load_scenario(str(path)))
    assert report.status == "ok", "\n".join(report.notes + _mismatches(report))
    assert report.counts[MISMATCH] == 0


@needs_host
def test_the_oracle_is_deterministic():
    for name in (
        "fork_cow_child_writes_first",
        "private_file_read",
        "forced_write_readonly_shared",
    ):
        scenario = load_scenario(str(HERE / "scenarios" / f"{name}.toml"))
        first = run_oracle(scenario).as_json()
        second = run_oracle(scenario).as_json()
        assert first == second, name


@needs_host
def test_a_model_bug_is_a_mismatch(monkeypatch):
    """Negative control: a model whose do_wp_page never reuses a page."""
    from pagewalk.kernel import memory

    monkeypatch.setattr(memory, "can_share_swap_page", lambda page: False)
    report = run_oracle(load_scenario(str(HERE / "scenarios" / "mprotect_up_write.toml")))
    assert report.status == "mismatch"
    assert any("frame" in m for m in _mismatches(report))


@needs_host
def test_cli_json_and_exit_status(tmp_path, capsys):
    from pagewalk.cli import main

    path = HERE / "scenarios" / "anon_read_then_write.toml"
    assert main(["oracle", "--json", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "ok"
    assert set(out) >= {
        "scenario",
        "semantics",
        "host",
        "status",
        "counts",
        "rules",
        "notes",
        "steps",
    }
    assert out["counts"]["mismatch"] == 0
    assert "zero-page-mapcount" in out["rules"]
    row = out["steps"][1]["rows"][0]
    assert set(row) >= {"observable", "model", "host", "verdict"}
    assert main(["oracle", str(tmp_path / "missing.toml")]) == 2
    assert main(["oracle", "--semantics", "9.9", str(path)]) == 2
    capsys.readouterr()


@needs_host
def test_cli_human_output(capsys):
    from pagewalk.cli import main

    assert main(["oracle", str(HERE / "scenarios" / "private_file_read.toml")]) == 0
    text = capsys.readouterr().out
    assert "era difference [fault-around]" in text
    assert "8c6e50b0290c" in text
    assert text.rstrip().endswith("result: ok")


def _spy_runs(monkeypatch):
    """Record the directory and the worker pids of every host run."""
    from pagewalk.oracle import host

    runs = []
    orig_close = host.HostRun.close

    def close(self):
        runs.append((self.dir, [w.pid for w in self.workers.values()] + list(self.children)))
        orig_close(self)

    monkeypatch.setattr(host.HostRun, "close", close)
    return runs


def _gone(pid: int) -> bool:
    for _ in range(100):
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.02)
    return False


@needs_host
def test_cleanup_after_a_run(monkeypatch):
    runs = _spy_runs(monkeypatch)
    run_oracle(load_scenario(str(HERE / "scenarios" / "fork_grandchild_cow.toml")))
    ((directory, pids),) = runs
    assert not os.path.exists(directory)
    assert pids and all(_gone(pid) for pid in pids)


@needs_host
def test_cleanup_after_ctrl_c(monkeypatch):
    from pagewalk.oracle import host

    runs = _spy_runs(monkeypatch)
    calls = []
    orig = host.HostRun.snapshot

    def snapshot(self, order):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return orig(self, order)

    monkeypatch.setattr(host.HostRun, "snapshot", snapshot)
    with pytest.raises(KeyboardInterrupt):
        run_oracle(load_scenario(str(HERE / "scenarios" / "fork_cow_child_writes_first.toml")))
    ((directory, pids),) = runs
    assert not os.path.exists(directory)
    assert all(_gone(pid) for pid in pids)


@needs_host
def test_a_hanging_step_times_out(monkeypatch):
    """A worker that does not answer within the deadline is killed and the
    run reports an error (exit status 1), not a hang."""
    from pagewalk.oracle import host
    from pagewalk.oracle.worker import Worker

    runs = _spy_runs(monkeypatch)
    monkeypatch.setattr(host, "STEP_TIMEOUT", 0.5)
    monkeypatch.setattr(Worker, "do_write", lambda self, addr, data: time.sleep(30))
    start = time.monotonic()
    report = run_oracle(load_scenario(str(HERE / "scenarios" / "anon_write_new_page.toml")))
    assert time.monotonic() - start < 10
    assert report.status == "error" and report.exit_status == 1
    assert any("did not finish" in n for n in report.notes)
    ((directory, pids),) = runs
    assert not os.path.exists(directory)
    assert all(_gone(pid) for pid in pids)


@needs_host
def test_lost_perf_samples_are_a_host_error_not_a_mismatch(monkeypatch):
    """A PERF_RECORD_LOST during a step leaves its CPU faults unknown: the run
    stops with an error (exit status 1) instead of comparing a short list."""
    from pagewalk.oracle.worker import Worker

    write = Worker.do_write

    def do_write_losing_samples(self, addr, data):
        drain = self.log.drain

        def drain_and_lose():
            out = drain()
            if out:  # the step's own samples: pretend perf dropped one more
                self.log.lost += 1
            return out

        self.log.drain = drain_and_lose
        try:
            return write(self, addr, data)
        finally:
            del self.log.drain

    monkeypatch.setattr(Worker, "do_write", do_write_losing_samples)
    report = run_oracle(load_scenario(str(HERE / "scenarios" / "anon_write_new_page.toml")))
    assert report.status == "error" and report.exit_status == 1
    assert any("perf lost 1 page-fault sample" in n for n in report.notes)
    assert report.counts[MISMATCH] == 0
