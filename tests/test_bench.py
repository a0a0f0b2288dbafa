"""``pagewalk bench``: the report's structure on a tiny size (no thresholds:
machines differ), the model-only fallback, and option errors."""

from __future__ import annotations

import argparse
import json

import pytest

from pagewalk.bench import OPERATIONS, host
from pagewalk.bench.cli import bench_command
from pagewalk.cli import main

ROW_KEYS = {"name", "pages", "kernel_ns_per_page", "model_ns_per_page", "ratio"}


def _bench_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["bench", "--quick", "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def _check_common(report: dict, names: list[str], pages: int) -> None:
    assert [r["name"] for r in report["results"]] == names
    for row in report["results"]:
        assert row.keys() >= ROW_KEYS
        assert row["pages"] == pages
        assert row["model_ns_per_page"] > 0
        assert len(row["model_runs"]) == 3  # --quick: 3 repetitions
    machine = report["machine"]
    assert {"kernel_release", "cpu_model", "cores", "python"} <= machine.keys()
    assert machine["cores"] >= 1
    mem = report["memory"]
    assert mem["model_bytes_per_page"] > 0 and mem["kernel_bytes_per_page"] == 72
    core = report["sparse_core"]
    assert core["model_seconds"] > 0
    assert core["page_tables_after"] == core["page_tables_before"] > 0
    assert core["core_apparent_bytes"] > 1 << 40 > core["core_disk_bytes"] > 0


def test_quick_json_both_sides(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        host.Libc()
    except host.HostUnavailable as err:
        pytest.skip(f"host kernel not measurable here: {err}")
    report = _bench_json(capsys, "--only", "write_fault", "gup", "--pages", "64")
    _check_common(report, ["write_fault", "gup"], 64)
    assert report["kernel_measured"] is True and report["kernel_note"] is None
    for row in report["results"]:
        assert row["kernel_ns_per_page"] > 0
        assert row["ratio"] > 0
        assert row["ratio"] == pytest.approx(
            row["model_ns_per_page"] / row["kernel_ns_per_page"], rel=0.01
        )


def test_host_unreachable_gives_model_figures_only(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: host.Libc) -> None:
        raise host.HostUnavailable("not Linux (simulated)")

    monkeypatch.setattr(host.Libc, "__init__", refuse)
    report = _bench_json(capsys, "--only", "dontneed", "--pages", "32")
    _check_common(report, ["dontneed"], 32)
    assert report["kernel_measured"] is False
    assert "not Linux (simulated)" in report["kernel_note"]
    (row,) = report["results"]
    assert row["kernel_ns_per_page"] is None and row["ratio"] is None


def test_text_output_and_bad_operation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick", "--only", "read_fault", "--pages", "16", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "read_fault" in out and "model/kernel" in out
    assert "memory per resident anonymous page" in out and "sparse core dump" in out
    assert out.rstrip().splitlines()[-1].startswith("machine: ")
    assert main(["bench", "--only", "nosuch"]) == 2
    assert "nosuch" in capsys.readouterr().err
    assert len(OPERATIONS) == 8


def test_profile_and_no_memory_fold_in_what_bench_model_py_had(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--profile TOP: cProfile over the model's timed regions, its table on
    stderr (stdout stays the report); --no-memory: no tracemalloc figures."""
    monkeypatch.setattr(host.Libc, "__init__", _refuse)
    args = argparse.Namespace(
        quick=True, pages=32, repeat=1, only=["write_fault"], json=True, profile=5, no_memory=True
    )
    assert bench_command(args) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert "memory" not in report and "profile" not in report
    assert "Ordered by: cumulative time" in err and "(write)" in err


def test_profile_of_zero_functions_is_an_input_error(capsys) -> None:
    from pagewalk.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--quick", "--profile", "0"])
    assert exit_.value.code == 2 and "--profile" in capsys.readouterr().err


def _refuse(self: host.Libc) -> None:
    raise host.HostUnavailable("not measured in this test")
